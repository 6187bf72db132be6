import NIOCore
import Synchronization

/// Everything the connections of one server share: knobs, routes, counters, limits.
final class MockServerState: Sendable {
    let configuration: MockProviderServer.Configuration
    let router: MockRouter
    /// Answers unrouted paths and oversized bodies.
    let fallback: OpenAISurface
    let stats: MockStatsRecorder
    let limiter: RateLimiter?
    let faults: FaultInjector?
    /// The batch APIs' files and batches.
    let batches: MockBatchStore
    /// Mixed into every connection's id generator, so two servers give different ids.
    let nonce: UInt64
    private let connections = Atomic<UInt64>(0)

    init(configuration: MockProviderServer.Configuration, loops: [any EventLoop], now: UInt64) {
        self.configuration = configuration
        let promptCache = configuration.promptCaching ? PromptCache() : nil
        let openAI = OpenAISurface(configuration: configuration, promptCache: promptCache)
        fallback = openAI
        let anthropic = AnthropicSurface(configuration: configuration, promptCache: promptCache)
        let gemini = GeminiSurface(configuration: configuration)
        let batches = MockBatchStore(configuration: configuration.batches, seed: configuration.seed)
        self.batches = batches
        // Gemini's and Together's batch surfaces come before OpenAI's: all have
        // `/v1/batches` and `/v1/files`; Gemini's claims them only for a Gemini
        // credential, Together's only for its own files and jobs.
        router = MockRouter(surfaces: [
            openAI, anthropic, gemini, MockControlSurface(),
            GeminiBatchSurface(online: gemini, store: batches),
            TogetherBatchSurface(online: openAI.together, store: batches),
            OpenAIBatchSurface(online: openAI, store: batches),
            AnthropicBatchSurface(online: anthropic, store: batches), TogetherPrefixSurface(online: openAI.together),
        ])
        stats = MockStatsRecorder(loops: loops)
        limiter = configuration.rateLimit.hasBuckets ? RateLimiter(configuration.rateLimit, now: now) : nil
        let needsDraws = configuration.faults.isEnabled || configuration.latency.jitter > .zero
        faults = needsDraws ? FaultInjector(faults: configuration.faults, seed: configuration.seed) : nil
        nonce = SplitMix64.mix(now ^ configuration.seed ^ 0x6C6C_6D71)
    }

    /// A number for a new connection, to seed its id generator.
    func nextConnectionNumber() -> UInt64 {
        connections.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func snapshot() -> MockStats {
        stats.snapshot(endpointNames: router.endpointNames)
    }
}
