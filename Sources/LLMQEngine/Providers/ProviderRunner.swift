import Foundation
import LLMQCore
import LLMQProviders
import LLMQStore
import LLMQTransport
import Synchronization

/// What a request cost and how it went.
public struct RunResult: Sendable {
    public var answer: ProviderAnswer
    public var provider: Provider
    public var model: String
    /// The cost paid; 0 for a cache hit; nil when the model has no price.
    public var costUSD: Double?
    /// Served from the response cache: nothing was paid.
    public var cached: Bool
    /// For a cache hit, what the answer cost when it was paid for.
    public var savedUSD: Double?
    /// Attempts counted (congestion snoozes are not).
    public var attempts: Int
    public var latencyMilliseconds: Double
    public var firstTokenMilliseconds: Double?
}

/// Why a request failed for good.
public struct RunFailure: Error, Sendable, CustomStringConvertible {
    public var failure: ProviderFailure
    public var attempts: Int
    /// Congestion snoozes taken in a row just before it failed
    /// (`RetryPolicy.maxRateLimitSnoozes` when that is why).
    public var snoozes = 0
    public var description: String { failure.description }
}

/// Sends requests: response cache first, then a lane of the provider (keys used
/// round-robin, each its own lane), the adapter and the transport, with retries.
public final class ProviderRunner: Sendable {
    public struct Configuration: Sendable {
        public var retry = RetryPolicy()
        /// Each lane's AIMD window (its maximum is the lane's share of concurrency).
        public var window = AIMDWindow.Configuration()
        /// A certificate authority file for TLS (tests with a self-signed server).
        public var caFile: String?
        /// Longest silence on a connection before it is given up.
        public var idleTimeout: Duration = .seconds(120)

        public init() {}
    }

    let transport: any HTTPTransport
    let environment: [String: String]
    let prices: PriceTable?
    let cache: (any ResponseCache)?
    let configuration: Configuration
    private let state = Mutex(State())

    struct State {
        var endpoints: [Provider: ProviderEndpoint] = [:]
        var lanes: [String: Lane] = [:]
        var nextKey: [Provider: Int] = [:]
    }

    public init(
        transport: any HTTPTransport, environment: [String: String] = ProcessInfo.processInfo.environment,
        prices: PriceTable?, cache: (any ResponseCache)?, configuration: Configuration = Configuration()
    ) {
        self.transport = transport
        self.environment = environment
        self.prices = prices
        self.cache = cache
        self.configuration = configuration
    }

    static func milliseconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1_000_000 }

    /// Every lane so far, for progress displays.
    public func lanes() -> [Lane] {
        state.withLock { Array($0.lanes.values) }.sorted { $0.name < $1.name }
    }

    /// The endpoint of a provider, checked once (a missing key is an error naming
    /// the variable).
    public func endpoint(for provider: Provider) throws(ProviderSetupError) -> ProviderEndpoint {
        if let known = state.withLock({ $0.endpoints[provider] }) { return known }
        let endpoint = try ProviderDirectory.endpoint(for: provider, environment: environment)
        state.withLock { $0.endpoints[provider] = endpoint }
        return endpoint
    }

    /// The next key's lane of a provider, round-robin.
    func nextLane(_ endpoint: ProviderEndpoint) -> (lane: Lane, key: String) {
        state.withLock { state in
            let index = state.nextKey[endpoint.provider, default: 0] % endpoint.keys.count
            state.nextKey[endpoint.provider] = index + 1
            let name = "\(endpoint.provider.rawValue)#\(index + 1)"
            if let lane = state.lanes[name] { return (lane, endpoint.keys[index]) }
            let lane = Lane(
                name: name, window: configuration.window, clock: { ProviderRunner.milliseconds() },
                sleep: { try? await Task.sleep(for: .milliseconds($0)) })
            state.lanes[name] = lane
            return (lane, endpoint.keys[index])
        }
    }

    /// Runs one request to completion (answered, or failed for good). With
    /// `onText`, the answer is streamed and `onText` gets each new piece of text.
    public func run(
        _ request: SubmittedRequest, useCache: Bool = true, onText: (@Sendable (String) -> Void)? = nil
    ) async throws -> RunResult {
        let started = Self.milliseconds()
        if useCache, let hit = try cachedResult(request, started: started) {
            onText?(hit.answer.text)
            return hit
        }
        let endpoint = try endpoint(for: request.route.provider)
        let adapter = endpoint.adapter
        let canonical = try JSONParser.parse(request.canonical)
        var options = HTTPRequestOptions(version: endpoint.httpVersion)
        options.idleTimeout = configuration.idleTimeout
        options.caFile = configuration.caFile
        var attempt = 1
        // Congestion answers in a row, by status, for the snooze cap and its message.
        var congestion: [Int: Int] = [:]
        while true {
            try Task.checkCancellation()
            let (lane, key) = nextLane(endpoint)
            try await lane.acquire()
            let sent = Self.milliseconds()
            var firstToken: Double?
            do {
                let httpRequest = try adapter.makeRequest(
                    canonical, route: request.route, key: key, stream: onText != nil)
                let answer: ProviderAnswer
                if let onText {
                    let response = try await transport.stream(httpRequest, options: options)
                    guard response.isSuccess else {
                        let body = try await response.body.collect(upTo: 1 << 20)
                        let whole = HTTPResponse(status: response.status, headers: response.headers, body: body)
                        throw Self.failure(of: adapter.parse(whole))
                    }
                    var accumulator = adapter.makeStreamAccumulator()
                    for try await event in response.body.serverSentEvents {
                        // Compare UTF-8 lengths: deltas append whole strings, and a
                        // combining mark may join the previous delta's last character.
                        let before = accumulator.text.utf8.count
                        let complete = try accumulator.consume(event)
                        let text = accumulator.text
                        if text.utf8.count > before {
                            firstToken = firstToken ?? Self.milliseconds() - started
                            onText(String(decoding: text.utf8.dropFirst(before), as: UTF8.self))
                        }
                        if complete { break }
                    }
                    answer = try accumulator.answer()
                    // The budget headers came before the stream: obey them as for a
                    // whole response.
                    let head = HTTPResponse(status: response.status, headers: response.headers)
                    if let pause = adapter.rateLimits(head).pauseMilliseconds {
                        await lane.pause(forMilliseconds: pause)
                    }
                } else {
                    let response = try await transport.send(httpRequest, options: options)
                    answer = try adapter.parse(response).get()
                    if let pause = adapter.rateLimits(response).pauseMilliseconds {
                        await lane.pause(forMilliseconds: pause)
                    }
                }
                let latency = Self.milliseconds() - sent
                await lane.release(.success(latencyMilliseconds: latency))
                let cost = prices?.cost(of: answer.usage, model: request.route.model)
                try storeInCache(request, answer: answer, costUSD: cost)
                return RunResult(
                    answer: answer, provider: request.route.provider, model: request.route.model, costUSD: cost,
                    cached: false, savedUSD: nil, attempts: attempt,
                    latencyMilliseconds: Self.milliseconds() - started, firstTokenMilliseconds: firstToken)
            } catch let error as CancellationError {
                await lane.release(.failure)
                throw error
            } catch {
                let failure = Self.providerFailure(error)
                // A 429 that waiting cannot cure is not the provider being busy.
                let congested = !failure.permanent && (failure.status.map(RetryPolicy.isCongestion) ?? false)
                let hint = RetryPolicy.hint(failure.retryAfterMilliseconds)
                await lane.release(congested ? .congestion(pauseMilliseconds: hint) : .failure)
                let reason: RetryPolicy.Failure =
                    failure.permanent
                    ? .permanent : failure.status.map { .status($0, retryAfterMilliseconds: hint) } ?? .transport
                let snoozes = congestion.values.reduce(0, +)
                if congested, let status = failure.status {
                    congestion[status, default: 0] += 1
                } else {
                    congestion = [:]
                }
                switch configuration.retry.decide(
                    reason, attempt: attempt, snoozes: snoozes, random: { Double.random(in: 0..<1) })
                {
                case .fail:
                    guard congested else { throw RunFailure(failure: failure, attempts: attempt) }
                    throw RunFailure(
                        failure: Self.tooManySnoozes(failure, congestion, provider: request.route.provider),
                        attempts: attempt, snoozes: snoozes)
                case .retry(let delay, let refund):
                    // A congestion pause is the lane's to wait; other backoffs are ours.
                    if !congested || hint == nil {
                        try await Task.sleep(for: .milliseconds(delay))
                    }
                    if !refund { attempt += 1 }
                }
            }
        }
    }

    /// The last of too many congestion answers in a row, its message saying so:
    /// `openai answered 51 times in a row with a rate limit or overload (HTTP 429 ×51); …`.
    static func tooManySnoozes(_ last: ProviderFailure, _ congestion: [Int: Int], provider: Provider)
        -> ProviderFailure
    {
        let total = congestion.values.reduce(0, +)
        let statuses = congestion.sorted { $0.key < $1.key }.map { "HTTP \($0.key) ×\($0.value)" }
        var failure = last
        failure.message =
            "\(provider.rawValue) answered \(total == 1 ? "once" : "\(total) times") in a row with a rate limit or overload ("
            + statuses.joined(separator: ", ") + "); llmq gives up after \(total - 1) waits for one request. "
            + "Check the account's quota and limits, or lower the concurrency. The last answer said: " + last.message
        return failure
    }

    static func failure(of result: Result<ProviderAnswer, ProviderFailure>) -> ProviderFailure {
        if case .failure(let failure) = result { return failure }
        return ProviderFailure(status: nil, type: "invalid_response", message: "an error status with an answer")
    }

    /// A transport or provider error as a provider failure (transport: no status).
    static func providerFailure(_ error: any Error) -> ProviderFailure {
        if let failure = error as? ProviderFailure { return failure }
        if let transport = error as? TransportError {
            return ProviderFailure(status: nil, type: "transport", message: transport.description)
        }
        if let setup = error as? ProviderSetupError {
            return ProviderFailure(status: nil, type: "setup", message: setup.description)
        }
        return ProviderFailure(status: nil, type: "error", message: String(describing: error))
    }

    /// What the cache keeps of an answer.
    static func cachedAnswer(_ answer: ProviderAnswer) -> JSONValue {
        var object: JSONObject = ["text": .string(answer.text)]
        if let reason = answer.finishReason { object["finish_reason"] = .string(reason) }
        if let model = answer.model { object["model"] = .string(model) }
        return .object(object)
    }

    static func answer(fromCached hit: CachedResponse) throws -> ProviderAnswer? {
        let json = try JSONParser.parse(hit.response)
        guard let text = json["text"]?.stringValue else { return nil }
        return ProviderAnswer(
            text: text, finishReason: json["finish_reason"]?.stringValue,
            usage: Usage(json: try JSONParser.parse(hit.usage)) ?? Usage(), model: json["model"]?.stringValue,
            raw: Array(hit.response.utf8))
    }
}
