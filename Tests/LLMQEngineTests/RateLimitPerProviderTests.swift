import Dispatch
import Foundation
import LLMQCore
import LLMQEngine
import LLMQProviders
import LLMQTransport
import MockProvider
import Synchronization
import Testing

/// Rate limits for every provider, through ProviderRunner, its lanes and the real
/// transport: a 429 with the provider's own hint (OpenAI `retry-after-ms` and
/// `x-ratelimit-*`, Anthropic `retry-after` and `anthropic-ratelimit-*`, Gemini
/// `RetryInfo.retryDelay`, Together `retry-after` or `x-ratelimit-reset`, a local
/// server with none), the lane's wait, AIMD, retries and their limits, 429s that
/// waiting cannot cure, key round-robin.
///
/// The fake provider gives the answers, its own 429s and its faults. The fake cannot
/// give a burst of 429s on cue, nor a hint under a second for Anthropic or Gemini, so
/// where a test needs those a `ScriptedTransport` in front of it answers chosen
/// requests with the provider's documented 429 (PROVIDERS.md) and passes the rest on.
/// The runner waits in real time: hints stay at a second or less, and waits are only
/// checked from below.
@Suite struct RateLimitPerProviderTests {
    static let transport = CurlTransport()

    // MARK: - 429s and the lane's wait

    @Test(arguments: RateLimitedProvider.all)
    func aBurstOf429sIsWaitedOutAsToldBurnsNoAttemptAndHalvesTheWindowOnce(_ target: RateLimitedProvider)
        async throws
    {
        let burst = 4
        try await withRunner(target, burst: burst, script: { index, _ in index < burst ? target.rateLimited() : nil }) {
            server, runner, transport in
            let prompts = (0..<burst).map { "burst \($0)" }
            let results = try await runAll(runner, try prompts.map { try target.request($0) })
            #expect(results.map(\.answer.text) == prompts.map(expectedText))
            #expect(results.map(\.attempts) == Array(repeating: 1, count: burst))
            let exchanges = transport.exchanges
            #expect(
                exchanges.map(\.status).sorted() == Array(repeating: 200, count: burst)
                    + Array(repeating: 429, count: burst))
            // Only the retries reached the fake provider, and none of them too early.
            #expect(server.stats.totalRequests == burst)
            #expect(server.stats.rateLimited == 0)
            if let hint = target.hintMilliseconds {
                let firstAnswer = try #require(exchanges.filter(\.scripted).map(\.answeredAt).min())
                for retry in exchanges where !retry.scripted {
                    #expect(milliseconds(from: firstAnswer, to: retry.sentAt) >= Double(hint) - tolerance)
                }
            }
            let stats = try #require(await runner.lanes().first?.stats)
            #expect(stats.congestions == burst)
            #expect(stats.decreases == 1)
        }
    }

    @Test(arguments: RateLimitedProvider.all)
    func theFakeProvidersOwn429IsWaitedOutAsTold(_ target: RateLimitedProvider) async throws {
        // One request every 10 s, none saved up: of two sent together, one gets a
        // 429. At one every 2.5 s, a CI run with the whole suite in parallel on two
        // cores once had the two reach the fake provider more than 2.5 s apart (no
        // 429 at all); the retry waits the hint, so the wider window costs ~10 s of a
        // test that runs beside the others. A runner that ignores the hint keeps
        // getting 429s: stop it.
        try await withRunner(
            target, mock: { $0.rateLimit = .init(requestsPerSecond: 0.1, burst: 1) }, burst: 2, giveUpAfter: 10
        ) { server, runner, transport in
            let prompts = ["first", "second"]
            let outcome: Result<[RunResult], any Error>
            do {
                outcome = .success(try await runAll(runner, try prompts.map { try target.request($0) }))
            } catch {
                outcome = .failure(error)
            }
            let exchanges = transport.exchanges
            let limited = try #require(exchanges.first { $0.status == 429 })
            let hint = try #require(target.hint(in: limited.response))
            #expect(hint > 0)
            let results = try outcome.get()
            #expect(results.map(\.answer.text) == prompts.map(expectedText))
            #expect(results.map(\.attempts) == [1, 1])
            #expect(server.stats.rateLimited == 1)
            #expect(exchanges.map(\.status).sorted() == [200, 200, 429])
            for later in exchanges where later.sentAt > limited.answeredAt {
                #expect(milliseconds(from: limited.answeredAt, to: later.sentAt) >= Double(hint) - tolerance)
            }
            let stats = try #require(await runner.lanes().first?.stats)
            #expect(stats.congestions == 1)
            #expect(stats.decreases == 1)
        }
    }

    // MARK: - AIMD

    @Test(arguments: RateLimitedProvider.all)
    func afterABurstTheWindowRecoversToItsMaximumAndNeverPassesIt(_ target: RateLimitedProvider) async throws {
        let burst = 4
        try await withRunner(
            target, mock: { $0.latency.fixed = .milliseconds(20) }, burst: burst,
            script: { index, _ in index < burst ? target.rateLimited() : nil }
        ) { server, runner, _ in
            _ = try await runAll(runner, try (0..<burst).map { try target.request("burst \($0)") })
            let lane = try #require(runner.lanes().first)
            // Halved from 4 to 2, then 1/window more per success: 2.5, 2.9, 3.2, 3.6.
            var stats = await lane.stats
            #expect(stats.window == 3)
            #expect(stats.decreases == 1)
            let prompts = (0..<16).map { "after \($0)" }
            let results = try await runAll(runner, try prompts.map { try target.request($0) })
            #expect(results.map(\.answer.text) == prompts.map(expectedText))
            stats = await lane.stats
            // Twenty successes from 2 would pass 6 without the cap.
            #expect(stats.window == Self.maximumWindow)
            #expect(stats.decreases == 1)
            #expect(server.stats.peakInFlight <= Self.maximumWindow)
        }
    }

    // MARK: - Retries and their limit

    @Test(arguments: RateLimitedProvider.all)
    func serverErrorsBurnAttemptsUpToTheLimitWhileA429BurnsNone(_ target: RateLimitedProvider) async throws {
        try await withRunner(
            target, mock: { $0.faults.serverErrors = 1 },
            script: { index, _ in index == 0 ? target.rateLimited() : nil }
        ) { server, runner, transport in
            let failure = await #expect(throws: RunFailure.self) { try await runner.run(try target.request("x")) }
            #expect(failure?.attempts == Self.maxAttempts)
            #expect(failure?.failure.status == 500)
            #expect(failure?.failure.message.isEmpty == false)
            // Had the 429 counted, only two 500s would have been tried.
            #expect(transport.exchanges.map(\.status) == [429, 500, 500, 500])
            #expect(server.stats.totalRequests == Self.maxAttempts)
            let stats = try #require(await runner.lanes().first?.stats)
            #expect(stats.congestions == 1)
            #expect(stats.decreases == 1)
        }
    }

    @Test(arguments: RateLimitedProvider.all)
    func otherClientErrorsFailAtOnceWithTheProvidersMessage(_ target: RateLimitedProvider) async throws {
        try await withRunner(target, mock: { $0.models = ["a-model-nobody-asks-for"] }) { server, runner, transport in
            let failure = await #expect(throws: RunFailure.self) { try await runner.run(try target.request("x")) }
            #expect(failure?.attempts == 1)
            #expect(failure?.failure.status == 404)
            #expect(failure?.failure.message.isEmpty == false)
            #expect(transport.exchanges.map(\.status) == [404])
            #expect(await runner.lanes().first?.stats.congestions == 0)
        }
    }

    // MARK: - Keys

    @Test(arguments: RateLimitedProvider.all)
    func keysTakeTurnsAndA429PausesOnlyItsOwnKeysLane(_ target: RateLimitedProvider) async throws {
        try await withRunner(
            target, keys: "key-1, key-2", script: { index, _ in index == 0 ? target.rateLimited() : nil }
        ) { _, runner, transport in
            // The first goes out on key 1 and gets a 429; its retry takes key 2; the
            // second request's turn is key 1 again, which waits out the 429's hint.
            let prompts = ["first", "second", "third"]
            var results: [RunResult] = []
            for prompt in prompts { results.append(try await runner.run(try target.request(prompt))) }
            #expect(results.map(\.answer.text) == prompts.map(expectedText))
            #expect(results.map(\.attempts) == [1, 1, 1])
            let exchanges = transport.exchanges
            #expect(exchanges.map(\.key) == ["key-1", "key-2", "key-1", "key-2"])
            #expect(exchanges.map(\.status) == [429, 200, 200, 200])
            if let hint = target.hintMilliseconds, exchanges.count == 4 {
                #expect(
                    milliseconds(from: exchanges[0].answeredAt, to: exchanges[2].sentAt) >= Double(hint) - tolerance)
            }
            let lanes = runner.lanes()
            #expect(lanes.map(\.name) == ["\(target.provider.rawValue)#1", "\(target.provider.rawValue)#2"])
            guard lanes.count == 2 else { return }
            let first = await lanes[0].stats
            let second = await lanes[1].stats
            #expect(first.congestions == 1)
            #expect(first.decreases == 1)
            #expect(second.congestions == 0)
            #expect(second.decreases == 0)
            #expect(second.pausedUntil == 0)
        }
    }

    // MARK: - Budget resets

    /// A 429 whose only hint is the rate-limit headers (the request budget is used up
    /// until its reset, no `retry-after`: OpenAI's `x-ratelimit-*-requests`,
    /// Together's `x-ratelimit-reset`, Anthropic's `anthropic-ratelimit-requests-*`)
    /// pauses the lane until the reset, as the runner does for those headers on a 200.
    @Test(arguments: RateLimitedProvider.all.filter { [.openai, .together, .anthropic].contains($0.provider) })
    func a429WithOnlyABudgetResetIsWaitedOutUntilTheReset(_ target: RateLimitedProvider) async throws {
        // Made when answered: Anthropic's reset is a time, which must not pass while the fake starts.
        let wait = target.rateLimitedUntilReset().wait
        let script: ScriptedTransport.Script = { index, _ in index == 0 ? target.rateLimitedUntilReset().response : nil
        }
        try await withRunner(target, script: script) { _, runner, transport in
            let result = try await runner.run(try target.request("x"))
            #expect(result.answer.text == expectedText("x"))
            #expect(result.attempts == 1)
            let exchanges = transport.exchanges
            #expect(exchanges.map(\.status) == [429, 200])
            guard exchanges.count == 2 else { return }
            #expect(milliseconds(from: exchanges[0].answeredAt, to: exchanges[1].sentAt) >= Double(wait))
            #expect(await runner.lanes().first?.stats.congestions == 1)
        }
    }

    /// A streamed answer whose headers say the request budget is now used up pauses
    /// the lane until the reset, as a whole answer does: the next request waits.
    @Test(arguments: RateLimitedProvider.all.filter { [.openai, .together, .anthropic].contains($0.provider) })
    func aStreamedAnswerThatUsesUpTheBudgetHoldsTheNextRequestUntilTheReset(_ target: RateLimitedProvider)
        async throws
    {
        // Made when answered: Anthropic's reset is a time, which must not pass while the fake starts.
        let wait = target.budgetUsedUp().wait
        let headers: ScriptedTransport.StreamHeaders = { index in index == 0 ? target.budgetUsedUp().headers : nil }
        try await withRunner(target, streamHeaders: headers) { server, runner, transport in
            let prompts = ["first", "second"]
            var results: [RunResult] = []
            for prompt in prompts {
                results.append(try await runner.run(try target.request(prompt), onText: { _ in }))
            }
            #expect(results.map(\.answer.text) == prompts.map(expectedText))
            #expect(results.map(\.attempts) == [1, 1])
            let exchanges = transport.exchanges
            #expect(exchanges.map(\.status) == [200, 200])
            guard exchanges.count == 2 else { return }
            #expect(milliseconds(from: exchanges[0].answeredAt, to: exchanges[1].sentAt) >= Double(wait))
            #expect(server.stats.rateLimited == 0)
            #expect(await runner.lanes().first?.stats.congestions == 0)
        }
    }

    /// `retry-after: 0` (Gemini: `retryDelay: "0s"`) is no hint, as in openai-python:
    /// the runner backs off on its own rather than pausing the lane for nothing and
    /// retrying at once, again and again.
    @Test(arguments: RateLimitedProvider.all)
    func aZeroRetryAfterIsNoHintAndTheBackoffApplies(_ target: RateLimitedProvider) async throws {
        try await withRunner(target, script: { index, _ in index == 0 ? target.rateLimitedWithAZeroWait() : nil }) {
            _, runner, transport in
            let result = try await runner.run(try target.request("x"))
            #expect(result.answer.text == expectedText("x"))
            #expect(result.attempts == 1)
            #expect(transport.exchanges.map(\.status) == [429, 200])
            let stats = try #require(await runner.lanes().first?.stats)
            #expect(stats.congestions == 1)
            // A wait of 0 taken as a hint pauses the lane (until then) and skips the backoff.
            #expect(stats.pausedUntil == 0)
        }
    }

    // MARK: - 429s that waiting cannot cure

    /// A 429 that retrying cannot cure (OpenAI's `insufficient_quota`: the account has
    /// no credit) fails the request at once with the provider's message; the lane does
    /// not take it for congestion.
    @Test func aQuotaExhausted429FailsInsteadOfBeingRetriedForever() async throws {
        let target = RateLimitedProvider(provider: .openai, model: "gpt-4o-mini")
        try await withRunner(target, giveUpAfter: 5, script: { _, _ in target.quotaExhausted() }) {
            _, runner, transport in
            let failure = await #expect(throws: RunFailure.self) { try await runner.run(try target.request("x")) }
            #expect(failure?.failure.status == 429)
            #expect(failure?.failure.type == "insufficient_quota")
            #expect(failure?.failure.message.hasPrefix("You exceeded your current quota") == true)
            #expect(failure?.attempts == 1)
            #expect(transport.exchanges.count == 1)
            let stats = try #require(await runner.lanes().first?.stats)
            #expect(stats.congestions == 0)
            #expect(stats.decreases == 0)
        }
    }

    /// The fake provider's 429 for a request larger than the whole token budget says
    /// `x-should-retry: false`, as OpenAI and Anthropic do: the request fails at once.
    @Test(arguments: RateLimitedProvider.all.filter { [.openai, .anthropic, .together].contains($0.provider) })
    func a429ThatSaysDoNotRetryFailsInsteadOfBeingRetriedForever(_ target: RateLimitedProvider) async throws {
        try await withRunner(target, mock: { $0.rateLimit = .init(tokensPerMinute: 10) }, giveUpAfter: 5) {
            _, runner, transport in
            let failure = await #expect(throws: RunFailure.self) { try await runner.run(try target.request("x")) }
            #expect(failure?.failure.status == 429)
            #expect(failure?.failure.message.isEmpty == false)
            #expect(failure?.attempts == 1)
            #expect(transport.exchanges.count == 1)
            #expect(transport.exchanges.first?.response.headers["x-should-retry"] == "false")
            #expect(await runner.lanes().first?.stats.congestions == 0)
        }
    }

    /// A provider that answers 429 for ever without saying retrying cannot help: after
    /// `maxRateLimitSnoozes` waits the request fails, naming the provider and the 429s.
    @Test(arguments: RateLimitedProvider.all)
    func endless429sFailAfterTheSnoozeLimitNamingTheProviderAndThe429s(_ target: RateLimitedProvider) async throws {
        try await withRunner(target, snoozes: 2, giveUpAfter: 10, script: { _, _ in target.rateLimited() }) {
            server, runner, transport in
            let failure = await #expect(throws: RunFailure.self) { try await runner.run(try target.request("x")) }
            #expect(failure?.attempts == 1)
            #expect(failure?.snoozes == 2)
            #expect(failure?.failure.status == 429)
            let message = failure?.failure.message ?? ""
            #expect(message.hasPrefix("\(target.provider.rawValue) answered 3 times in a row"))
            #expect(message.contains("(HTTP 429 ×3)"))
            #expect(message.contains("The last answer said: "))
            #expect(transport.exchanges.map(\.status) == [429, 429, 429])
            #expect(server.stats.totalRequests == 0)
            #expect(await runner.lanes().first?.stats.congestions == 3)
        }
    }

    // MARK: - Helpers

    static let maxAttempts = 3
    static let maximumWindow = 4

    /// The lane and these tests read the same clock; comparing differences of doubles
    /// (the lane) with differences of integers (here) can differ by a few nanoseconds.
    let tolerance = 0.001

    /// Runs `body` with a fresh fake provider, a runner sending `target`'s requests to
    /// it through a `ScriptedTransport` (`burst`, `giveUpAfter`, `script` and
    /// `streamHeaders` are its), retries shortened, at most `snoozes` congestion
    /// snoozes in a row, and the window 4 at most.
    func withRunner<T>(
        _ target: RateLimitedProvider, keys: String = "key-1",
        mock configure: (inout MockProviderServer.Configuration) -> Void = { _ in }, burst: Int = 1,
        snoozes: Int = RetryPolicy().maxRateLimitSnoozes, giveUpAfter: Int = .max,
        script: @escaping ScriptedTransport.Script = { _, _ in nil },
        streamHeaders: @escaping ScriptedTransport.StreamHeaders = { _ in nil },
        _ body: (MockProviderServer, ProviderRunner, ScriptedTransport) async throws -> T
    ) async throws -> T {
        var mockConfiguration = MockProviderServer.Configuration()
        mockConfiguration.threads = 1
        configure(&mockConfiguration)
        return try await MockProviderServer.with(mockConfiguration) { server in
            let transport = ScriptedTransport(
                upstream: Self.transport, key: target.key, burst: burst, giveUpAfter: giveUpAfter, script: script,
                streamHeaders: streamHeaders)
            var configuration = ProviderRunner.Configuration()
            configuration.retry = RetryPolicy(
                maxAttempts: Self.maxAttempts, baseDelayMilliseconds: 10, maxDelayMilliseconds: 50,
                maxRateLimitSnoozes: snoozes)
            configuration.window = AIMDWindow.Configuration(
                initial: Double(Self.maximumWindow), floor: 1, maximum: Double(Self.maximumWindow))
            // A burst is the 429s that come back within one round trip; a long assumed
            // round trip keeps a loaded machine from splitting one burst into two.
            configuration.window.initialRoundTripMilliseconds = 60_000
            let runner = ProviderRunner(
                transport: transport, environment: target.environment(server, keys: keys), prices: nil, cache: nil,
                configuration: configuration)
            return try await body(server, runner, transport)
        }
    }

    /// Runs the requests at once; the results in the requests' order.
    func runAll(_ runner: ProviderRunner, _ requests: [SubmittedRequest]) async throws -> [RunResult] {
        try await withThrowingTaskGroup(of: (Int, RunResult).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, try await runner.run(request)) }
            }
            var results: [RunResult?] = Array(repeating: nil, count: requests.count)
            for try await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    /// The fake provider's answer to a single user message.
    func expectedText(_ prompt: String) -> String {
        MockReplies.text(for: [.init(role: "user", content: prompt)])
    }

    func milliseconds(from start: UInt64, to end: UInt64) -> Double {
        end >= start ? Double(end - start) / 1e6 : -Double(start - end) / 1e6
    }
}

/// One provider as these tests drive it: its model, where its requests go, how its
/// key is sent, and the 429 it answers when rate limited.
struct RateLimitedProvider: Sendable, CustomTestStringConvertible {
    var provider: Provider
    var model: String

    static let all = [
        RateLimitedProvider(provider: .openai, model: "gpt-4o-mini"),
        RateLimitedProvider(provider: .anthropic, model: "claude-haiku-4-5"),
        RateLimitedProvider(provider: .gemini, model: "gemini-2.5-flash"),
        RateLimitedProvider(provider: .together, model: "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        RateLimitedProvider(provider: .openaiCompatible, model: "openai/qwen2.5-7b-instruct"),
    ]

    var testDescription: String { provider.rawValue }

    func request(_ prompt: String) throws -> SubmittedRequest {
        try RequestParser().parse(line: #"{"model":"\#(model)","prompt":"\#(prompt)"}"#, number: 1).get()
    }

    func environment(_ server: MockProviderServer, keys: String) -> [String: String] {
        switch provider {
        case .openai, .openaiCompatible: ["OPENAI_BASE_URL": server.openAIBaseURL, "OPENAI_API_KEY": keys]
        case .together: ["TOGETHER_BASE_URL": server.openAIBaseURL, "TOGETHER_API_KEY": keys]
        case .anthropic: ["ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": keys]
        case .gemini: ["GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": keys]
        }
    }

    /// The API key a request carries, read where this provider sends it.
    func key(_ request: HTTPRequest) -> String? {
        switch provider {
        case .anthropic: request.headers["x-api-key"]
        case .gemini: request.headers["x-goog-api-key"]
        case .openai, .together, .openaiCompatible:
            request.headers["authorization"].map { String($0.dropFirst("Bearer ".count)) }
        }
    }

    /// The wait `rateLimited()` asks for; nil when it gives no hint and the runner
    /// backs off on its own.
    var hintMilliseconds: Int64? {
        switch provider {
        case .openai: 300  // retry-after-ms, read before retry-after
        case .anthropic, .together: 1_000  // retry-after, in whole seconds
        case .gemini: 400  // RetryInfo.retryDelay "0.400s"
        case .openaiCompatible: nil
        }
    }

    /// The provider's 429 for a used-up request budget, as PROVIDERS.md gives it.
    func rateLimited() -> HTTPResponse {
        switch provider {
        case .openai:
            response(
                headers: [
                    "retry-after": "1", "retry-after-ms": "300", "x-ratelimit-limit-requests": "60",
                    "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms",
                ],
                body: #"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests "#
                    + #"per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 300ms.","#
                    + #""type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)
        case .together:
            response(
                headers: ["retry-after": "1"],
                body: #"{"error":{"message":"You have reached the rate limit for this model.","#
                    + #""type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}"#)
        case .openaiCompatible:
            // vLLM's shape: an integer code, no hint at all.
            response(
                headers: [:],
                body: #"{"error":{"message":"Too many requests","type":"TooManyRequests","param":null,"code":429}}"#)
        case .anthropic:
            response(
                headers: [
                    "retry-after": "1", "request-id": "req_011CV", "anthropic-ratelimit-requests-limit": "50",
                    "anthropic-ratelimit-requests-remaining": "0",
                    "anthropic-ratelimit-requests-reset": Self.rfc3339(secondsFromNow: 1),
                ],
                body: #"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed "#
                    + #"the rate limit for your organization of 50 requests per minute."},"request_id":"req_011CV"}"#)
        case .gemini:
            response(
                headers: ["content-type": "application/json; charset=UTF-8"],
                body: #"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan "#
                    + #"and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"#
                    + #""type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"#
                    + #""generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"#
                    + #""GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"#
                    + #""type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.400s"}]}}"#)
        }
    }

    /// The rate-limit headers of a used-up request budget (OpenAI, Anthropic and
    /// Together name them differently), and the least time until its reset, in
    /// milliseconds.
    func budgetUsedUp() -> (headers: HTTPHeaders, wait: Int64) {
        switch provider {
        case .anthropic:
            // The reset is a whole second, two to three seconds ahead.
            let headers: HTTPHeaders = [
                "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": Self.rfc3339(secondsFromNow: 3),
            ]
            return (headers, 1_500)
        case .together:
            // Together's own names: the reset in whole seconds.
            let headers: HTTPHeaders = [
                "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1",
            ]
            return (headers, 1_000)
        default:
            let headers: HTTPHeaders = [
                "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "300ms",
            ]
            return (headers, 300)
        }
    }

    /// A 429 whose only hint is a used-up request budget and its reset (no
    /// `retry-after`), and the least time until that reset, in milliseconds.
    func rateLimitedUntilReset() -> (response: HTTPResponse, wait: Int64) {
        let (headers, wait) = budgetUsedUp()
        switch provider {
        case .anthropic:
            return (
                response(
                    headers: headers,
                    body: #"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited."}}"#),
                wait
            )
        case .together:
            return (
                response(
                    headers: headers,
                    body: #"{"id":"oFx3kLp-2j8zVX-9f3a1c","error":{"message":"You have exceeded your request "#
                        + #"rate limit.","type":"dynamic_request_limited","param":null,"code":null}}"#),
                wait
            )
        default:
            return (
                response(
                    headers: headers,
                    body: #"{"error":{"message":"Rate limit reached.","type":"requests","param":null,"#
                        + #""code":"rate_limit_exceeded"}}"#),
                wait
            )
        }
    }

    /// The provider's 429 with a wait of 0: `retry-after: 0` (and OpenAI's
    /// `retry-after-ms: 0`, Together's `x-ratelimit-reset: 0`), Gemini's
    /// `retryDelay: "0s"`.
    func rateLimitedWithAZeroWait() -> HTTPResponse {
        var limited = rateLimited()
        switch provider {
        case .gemini:
            limited.body = Array(limited.bodyText.replacingOccurrences(of: "0.400s", with: "0s").utf8)
        case .openai:
            limited.headers = [
                "content-type": "application/json", "retry-after": "0", "retry-after-ms": "0",
            ]
        case .together:
            limited.headers = ["content-type": "application/json", "retry-after": "0", "x-ratelimit-reset": "0"]
        case .anthropic, .openaiCompatible:
            limited.headers = ["content-type": "application/json", "retry-after": "0"]
        }
        return limited
    }

    /// OpenAI's 429 for an account out of credit.
    func quotaExhausted() -> HTTPResponse {
        response(
            headers: [:],
            body: #"{"error":{"message":"You exceeded your current quota, please check your plan and billing "#
                + #"details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#)
    }

    /// The wait a 429 from the fake provider asks for, in milliseconds, read as the
    /// provider's SDK or documentation has it (independently of the adapters under
    /// test): a `retry-after`, else the reset of a used-up budget.
    func hint(in response: HTTPResponse) -> Int64? {
        let headers = response.headers
        if provider == .gemini {
            let details = (try? JSONParser.parse(response.body))?["error"]?["details"]?.arrayValue ?? []
            let delay = details.lazy.compactMap { $0["retryDelay"]?.stringValue }.first
            return delay.flatMap(GoDuration.nanoseconds).map { ($0 + 999_999) / 1_000_000 }
        }
        if let milliseconds = headers["retry-after-ms"].flatMap({ Int64($0) }) { return milliseconds }
        if let seconds = headers["retry-after"].flatMap({ Int64($0) }) { return seconds * 1_000 }
        // Together's reset is whole seconds; on a 429, until the request would pass.
        if let seconds = headers["x-ratelimit-reset"].flatMap({ Int64($0) }) { return seconds * 1_000 }
        if let reset = headers["x-ratelimit-reset-requests"].flatMap(GoDuration.nanoseconds) {
            return (reset + 999_999) / 1_000_000
        }
        return nil
    }

    private func response(headers: HTTPHeaders, body: String) -> HTTPResponse {
        var headers = headers
        if !headers.contains("content-type") { headers.add(name: "content-type", value: "application/json") }
        return HTTPResponse(status: 429, headers: headers, body: Array(body.utf8))
    }

    /// `2025-08-21T12:40:59Z`, `seconds` whole seconds after the current one.
    private static func rfc3339(secondsFromNow seconds: Int) -> String {
        let now = Date().timeIntervalSince1970.rounded(.down)
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: now + Double(seconds)))
    }
}

/// A transport in front of the real one that answers chosen requests itself and
/// records every exchange with the lane's clock.
///
/// The first `burst` requests are held until all of them have been sent, then
/// answered (or passed on) together: one burst, however the tasks were scheduled.
/// After `giveUpAfter` requests it throws `CancellationError`, so a runner that
/// would retry forever ends the test. Streamed requests always go on to the real
/// transport; `streamHeaders` can set headers on the answer.
final class ScriptedTransport: HTTPTransport {
    /// The answer to the request with this index (from 0) and key, or nil to pass
    /// the request on.
    typealias Script = @Sendable (_ index: Int, _ key: String?) -> HTTPResponse?
    /// Headers to set on the streamed answer to the request with this index, if any.
    typealias StreamHeaders = @Sendable (_ index: Int) -> HTTPHeaders?

    struct Exchange: Sendable {
        var key: String?
        var scripted: Bool
        var status: Int
        /// Nanoseconds on the clock the lanes use.
        var sentAt: UInt64
        var answeredAt: UInt64
        var response: HTTPResponse
    }

    private struct State {
        var sent = 0
        var exchanges: [Exchange] = []
        var burstWaiting: [CheckedContinuation<Void, Never>] = []
    }

    let upstream: any HTTPTransport
    let key: @Sendable (HTTPRequest) -> String?
    let burst: Int
    let giveUpAfter: Int
    let script: Script
    let streamHeaders: StreamHeaders
    private let state = Mutex(State())

    init(
        upstream: any HTTPTransport, key: @escaping @Sendable (HTTPRequest) -> String?, burst: Int,
        giveUpAfter: Int, script: @escaping Script, streamHeaders: @escaping StreamHeaders = { _ in nil }
    ) {
        self.upstream = upstream
        self.key = key
        self.burst = burst
        self.giveUpAfter = giveUpAfter
        self.script = script
        self.streamHeaders = streamHeaders
    }

    /// Every exchange so far, in the order the requests were sent.
    var exchanges: [Exchange] {
        state.withLock { $0.exchanges }.sorted { $0.sentAt < $1.sentAt }
    }

    func send(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPResponse {
        let sentAt = DispatchTime.now().uptimeNanoseconds
        let key = key(request)
        let index = nextIndex()
        guard index < giveUpAfter else { throw CancellationError() }
        if index < burst { await joinBurst() }
        let scripted = script(index, key)
        let response: HTTPResponse
        if let scripted {
            response = scripted
        } else {
            response = try await upstream.send(request, options: options)
        }
        let exchange = Exchange(
            key: key, scripted: scripted != nil, status: response.status, sentAt: sentAt,
            answeredAt: DispatchTime.now().uptimeNanoseconds, response: response)
        state.withLock { $0.exchanges.append(exchange) }
        return response
    }

    /// Records the exchange when the answer's head arrives (its body is not kept).
    func stream(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPStreamingResponse {
        let sentAt = DispatchTime.now().uptimeNanoseconds
        let index = nextIndex()
        guard index < giveUpAfter else { throw CancellationError() }
        var response = try await upstream.stream(request, options: options)
        for (name, value) in streamHeaders(index) ?? [:] { response.headers.replaceOrAdd(name: name, value: value) }
        let exchange = Exchange(
            key: key(request), scripted: false, status: response.status, sentAt: sentAt,
            answeredAt: DispatchTime.now().uptimeNanoseconds,
            response: HTTPResponse(status: response.status, headers: response.headers))
        state.withLock { $0.exchanges.append(exchange) }
        return response
    }

    private func nextIndex() -> Int {
        state.withLock { state in
            defer { state.sent += 1 }
            return state.sent
        }
    }

    /// Waits until the first `burst` requests are all waiting, then lets them all go.
    private func joinBurst() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.burstWaiting.append(continuation)
                guard state.burstWaiting.count == burst else { return [] }
                defer { state.burstWaiting = [] }
                return state.burstWaiting
            }
            for waiter in ready { waiter.resume() }
        }
    }
}
