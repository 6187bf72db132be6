import Foundation
import LLMQCore
import LLMQEngine
import LLMQProviders
import LLMQStore
import LLMQTransport
import MockProvider
import Testing

/// ProviderRunner against the fake provider in-process: retries, congestion, keys,
/// the cache. Backoffs are shortened so the tests do not wait long.
@Suite(.serialized) struct ProviderRunnerTests {
    static let transport = CurlTransport()

    func request(_ prompt: String) throws -> SubmittedRequest {
        try RequestParser().parse(line: #"{"model":"gpt-4o-mini","prompt":"\#(prompt)"}"#, number: 1).get()
    }

    func withRunner<T>(
        keys: String = "sk-1", cache: (any ResponseCache)? = nil,
        configure: (inout MockProviderServer.Configuration) -> Void = { _ in },
        _ body: (MockProviderServer, ProviderRunner) async throws -> T
    ) async throws -> T {
        var mockConfiguration = MockProviderServer.Configuration()
        configure(&mockConfiguration)
        return try await MockProviderServer.with(mockConfiguration) { server in
            var configuration = ProviderRunner.Configuration()
            configuration.retry = RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 10, maxDelayMilliseconds: 50)
            let runner = ProviderRunner(
                transport: Self.transport,
                environment: ["OPENAI_BASE_URL": server.openAIBaseURL, "OPENAI_API_KEY": keys],
                prices: PriceTable(prices: [
                    ModelPrice(
                        model: "gpt-4o-mini", provider: .openai, input: 0.15, cachedInput: 0.075, cacheWrite: 0,
                        output: 0.6,
                        batchDiscount: 0.5)
                ]), cache: cache, configuration: configuration)
            return try await body(server, runner)
        }
    }

    @Test func answersAndPricesARequest() async throws {
        try await withRunner { server, runner in
            let result = try await runner.run(try request("hello"))
            #expect(result.attempts == 1)
            #expect(!result.cached)
            #expect(result.answer.usage.outputTokens == MockReplies.defaultTokens)
            let expected = 0.15 * Double(result.answer.usage.inputTokens) / 1e6 + 0.6 * 16 / 1e6
            #expect(abs((result.costUSD ?? -1) - expected) < 1e-12)
            #expect(server.stats.totalRequests == 1)
        }
    }

    @Test func serverErrorsAreRetriedUpToTheLimit() async throws {
        try await withRunner(configure: { $0.faults.serverErrors = 1 }) { server, runner in
            let error = await #expect(throws: RunFailure.self) { try await runner.run(try request("x")) }
            #expect(error?.attempts == 3)
            #expect(error?.failure.status == 500)
            #expect(server.stats.count("POST /v1/chat/completions", status: 500) == 3)
        }
    }

    @Test func resetsAreTransportFailuresAndRetried() async throws {
        try await withRunner(configure: { $0.faults.resets = 1 }) { server, runner in
            let error = await #expect(throws: RunFailure.self) { try await runner.run(try request("x")) }
            #expect(error?.attempts == 3)
            #expect(error?.failure.status == nil)
            #expect(error?.failure.type == "transport")
        }
    }

    @Test func aRateLimitSnoozesWithoutBurningAttemptsAndHalvesTheWindow() async throws {
        try await withRunner(configure: {
            $0.rateLimit.requestsPerSecond = 20; $0.rateLimit.burst = 2
        }) {
            server, runner in
            let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
                for index in 0..<8 {
                    group.addTask { try await runner.run(try request("prompt \(index)")) }
                }
                var results: [RunResult] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(results.count == 8)
            #expect(results.allSatisfy { $0.attempts == 1 })
            #expect(server.stats.rateLimited >= 1)
            let stats = await runner.lanes()[0].stats
            #expect(stats.congestions >= 1)
            #expect(stats.decreases >= 1)
        }
    }

    @Test func severalKeysAreUsedRoundRobinEachItsOwnLane() async throws {
        try await withRunner(keys: "sk-1, sk-2") { _, runner in
            for index in 0..<4 { _ = try await runner.run(try request("p\(index)")) }
            #expect(runner.lanes().map(\.name) == ["openai#1", "openai#2"])
        }
    }

    @Test func theCacheIsHitMissedAndBypassed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-runner-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cache = try SQLiteResponseCache(url: directory.appendingPathComponent("cache.sqlite"))
        try await withRunner(cache: cache) { server, runner in
            let first = try await runner.run(try request("same"))
            let second = try await runner.run(try request("same"))
            #expect(!first.cached)
            #expect(second.cached)
            #expect(second.costUSD == 0)
            #expect(second.savedUSD == first.costUSD)
            #expect(second.answer.text == first.answer.text)
            #expect(server.stats.totalRequests == 1)
            let bypassed = try await runner.run(try request("same"), useCache: false)
            #expect(!bypassed.cached)
            #expect(server.stats.totalRequests == 2)
            #expect(try cache.stats().hits == 1)
        }
    }
}
