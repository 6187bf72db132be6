import LLMQCore
import Testing

@testable import MockProvider

@Suite struct GoDurationTests {
    @Test(
        arguments: [
            (0, "0s"), (1, "1ms"), (12_000_000, "12ms"), (999_000_000, "999ms"), (1_000_000_000, "1s"),
            (8_640_000_000, "8.64s"), (360_000_000_000, "6m0s"), (3_723_500_000_000, "1h2m3.5s"),
        ] as [(Int64, String)])
    func formatsAsGoDoes(nanoseconds: Int64, text: String) {
        #expect(GoDuration.string(nanoseconds: nanoseconds) == text)
    }

    @Test func parsesWhatItFormatsAndFlagSpellings() {
        #expect(GoDuration.nanoseconds("6m0s") == 360_000_000_000)
        #expect(GoDuration.nanoseconds("1h2m3.5s") == 3_723_500_000_000)
        #expect(GoDuration.nanoseconds("250ms") == 250_000_000)
        #expect(GoDuration.nanoseconds("1.5s") == 1_500_000_000)
        #expect(GoDuration.nanoseconds("20us") == 20_000)
        #expect(GoDuration.nanoseconds("0") == 0)
        #expect(GoDuration.nanoseconds("12") == nil)
        #expect(GoDuration.nanoseconds("ms") == nil)
        #expect(GoDuration.nanoseconds("1d") == nil)
    }
}

@Suite struct RateLimiterTests {
    let second: UInt64 = 1_000_000_000

    @Test func requestBucketRefillsAtItsRate() {
        let limiter = RateLimiter(.init(requestsPerSecond: 2, burst: 3), now: 0)
        for remaining in [2, 1, 0] {
            guard case .allowed(let report) = limiter.acquire(tokens: 1, now: 0) else {
                Issue.record("refused while the bucket had room")
                return
            }
            #expect(
                report.requests
                    == .init(limit: 3, remaining: remaining, resetNanoseconds: Int64(3 - remaining) * 500_000_000))
            #expect(report.tokens == nil)
        }
        guard case .rejected(let rejection) = limiter.acquire(tokens: 1, now: 0) else {
            Issue.record("not refused when empty")
            return
        }
        #expect(rejection.limit == .requests)
        #expect(rejection.retryAfterNanoseconds == 500_000_000)
        // Half a second later one request is back.
        guard case .allowed = limiter.acquire(tokens: 1, now: second / 2) else {
            Issue.record("no refill")
            return
        }
    }

    @Test func tokenBucketChargesTheRequestsTokensAndRefusesWithoutTakingAnything() {
        let limiter = RateLimiter(.init(requestsPerSecond: 100, tokensPerMinute: 600), now: 0)
        guard case .allowed(let report) = limiter.acquire(tokens: 500, now: 0) else {
            Issue.record("refused")
            return
        }
        #expect(report.tokens?.remaining == 100)
        guard case .rejected(let rejection) = limiter.acquire(tokens: 200, now: 0) else {
            Issue.record("not refused")
            return
        }
        #expect(rejection.limit == .tokens)
        #expect(rejection.retryAfterNanoseconds == 10 * Int64(second))  // 100 missing at 10 tokens/s
        #expect(limiter.report(now: 0).requests?.remaining == 99)  // the refused call took no request
        guard case .rejected(let tooLarge) = limiter.acquire(tokens: 601, now: 0) else {
            Issue.record("not refused")
            return
        }
        #expect(tooLarge.limit == .requestTooLarge)
    }
}

@Suite struct ConfigurationTests {
    @Test func badKnobsAreRefusedAtStart() async {
        var configuration = MockProviderServer.Configuration()
        configuration.faults = .init(serverErrors: 0.6, overloaded: 0.6)
        await #expect(throws: MockProviderServer.ConfigurationError.self) {
            _ = try await MockProviderServer.start(configuration)
        }
        configuration.faults = .init()
        configuration.rateLimit = .init(requestsPerSecond: 0)
        #expect(throws: MockProviderServer.ConfigurationError.self) { try configuration.validate() }
        configuration.rateLimit = .init(burst: 3)
        #expect(throws: MockProviderServer.ConfigurationError.self) { try configuration.validate() }
        configuration.rateLimit = .init()
        configuration.apiKey = ""
        #expect(throws: MockProviderServer.ConfigurationError.self) { try configuration.validate() }
    }

    @Test func aPortInUseFailsToStart() async throws {
        try await withMockServer { server in
            var configuration = MockProviderServer.Configuration()
            configuration.port = server.port
            configuration.threads = 1
            await #expect(throws: (any Error).self) { _ = try await MockProviderServer.start(configuration) }
        }
    }
}

@Suite struct MockRepliesTests {
    @Test func shorterRepliesArePrefixesOfLongerOnes() {
        let messages: [MockReplies.Message] = [.init(role: "user", content: "hello")]
        let long = MockReplies.text(for: messages, tokens: 20)
        #expect(long.hasPrefix(MockReplies.text(for: messages, tokens: 7) + " "))
        #expect(long.split(separator: " ").allSatisfy { MockReplies.words.contains(String($0)) })
    }

    @Test func promptTokensFollowTheDocumentedRule() {
        #expect(MockReplies.promptTokens(for: [.init(role: "user", content: "")]) == 4)
        #expect(MockReplies.promptTokens(for: [.init(role: "user", content: "abcd")]) == 5)
        #expect(MockReplies.promptTokens(for: [.init(role: "user", content: "abcde")]) == 6)
        #expect(
            MockReplies.promptTokens(for: [.init(role: "system", content: "é"), .init(role: "user", content: "x")])
                == 10)
    }

    @Test func roleAndContentShapeMatter() throws {
        let plain = try JSONParser.parse("[{\"role\":\"user\",\"content\":\"ab\"}]")
        let parts = try JSONParser.parse(
            "[{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],\"role\":\"user\"}]")
        #expect(MockReplies.text(forMessages: plain) == MockReplies.text(forMessages: parts))
        #expect(MockReplies.text(for: [.init(role: "system", content: "ab")]) != MockReplies.text(forMessages: plain))
        #expect(MockReplies.text(forMessages: .string("no")) == nil)
    }
}
