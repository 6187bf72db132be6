import LLMQCore
import MockProvider
import Testing

@Suite struct RateLimitTests {
    @Test func requestBucketAnswers429WithEveryHeader() async throws {
        // One request per 100 s refill: the bucket cannot refill during the test.
        try await withMockServer({ $0.rateLimit = .init(requestsPerSecond: 0.01, burst: 2) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let first = try connection.request(body: chatBody())
            #expect(first.status == 200)
            #expect(first.header("x-ratelimit-limit-requests") == "2")
            #expect(first.header("x-ratelimit-remaining-requests") == "1")
            let firstReset = try #require(first.header("x-ratelimit-reset-requests").flatMap(GoDuration.nanoseconds))
            #expect(firstReset > 0 && firstReset <= 100_000_000_000)
            #expect(first.header("x-ratelimit-limit-tokens") == nil)
            #expect(first.header("retry-after") == nil)

            #expect(try connection.request(body: chatBody()).header("x-ratelimit-remaining-requests") == "0")

            let limited = try connection.request(body: chatBody())
            #expect(limited.status == 429)
            let error = try errorObject(limited)
            #expect(error["type"] == .string("requests"))
            #expect(error["code"] == .string("rate_limit_exceeded"))
            #expect(error["param"] == .null)
            #expect(error["message"]?.stringValue?.hasPrefix("Rate limit reached for gpt-4o-mini") == true)
            #expect(limited.header("x-ratelimit-limit-requests") == "2")
            #expect(limited.header("x-ratelimit-remaining-requests") == "0")
            let reset = try #require(limited.header("x-ratelimit-reset-requests").flatMap(GoDuration.nanoseconds))
            #expect(reset > 100_000_000_000 && reset <= 200_000_000_000)  // both requests back: ~200 s
            let retryAfter = try #require(limited.header("retry-after").flatMap { Int($0) })
            let retryAfterMS = try #require(limited.header("retry-after-ms").flatMap { Int($0) })
            #expect((1...100).contains(retryAfter))
            #expect((1...100_000).contains(retryAfterMS))
            #expect(retryAfter == (retryAfterMS + 999) / 1000)
            #expect(server.stats.rateLimited == 1)
            #expect(server.stats.count("POST /v1/chat/completions", status: 429) == 1)
        }
    }

    @Test func tokenBucketAnswers429OfTypeTokens() async throws {
        // Each request costs prompt (4 + 2) + 16 completion = 22 tokens; 50 fit twice.
        try await withMockServer({ $0.rateLimit = .init(tokensPerMinute: 50) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let first = try connection.request(body: chatBody("Say hi."))
            #expect(first.status == 200)
            #expect(first.header("x-ratelimit-limit-tokens") == "50")
            #expect(first.header("x-ratelimit-remaining-tokens") == "28")
            #expect(first.header("x-ratelimit-reset-tokens").flatMap(GoDuration.nanoseconds) != nil)
            #expect(first.header("x-ratelimit-limit-requests") == nil)
            #expect(try connection.request(body: chatBody("Say hi.")).status == 200)
            let limited = try connection.request(body: chatBody("Say hi."))
            #expect(limited.status == 429)
            let error = try errorObject(limited)
            #expect(error["type"] == .string("tokens"))
            #expect(error["code"] == .string("rate_limit_exceeded"))
            #expect(error["message"]?.stringValue?.contains("tokens per min (TPM): Limit 50") == true)
            #expect(limited.header("x-ratelimit-remaining-tokens").flatMap { Int($0) }.map { $0 < 22 } == true)
            let retryAfterMS = try #require(limited.header("retry-after-ms").flatMap { Int($0) })
            #expect(retryAfterMS > 0 && retryAfterMS <= 60_000)
            #expect(limited.header("retry-after") != nil)
        }
    }

    @Test func requestLargerThanTheTokenBucketIsRefusedForGood() async throws {
        try await withMockServer({ $0.rateLimit = .init(tokensPerMinute: 10) }) { server in
            let limited = try RawHTTPConnection(port: server.port).request(body: chatBody())
            #expect(limited.status == 429)
            let error = try errorObject(limited)
            #expect(error["type"] == .string("tokens"))
            #expect(error["message"]?.stringValue?.hasPrefix("Request too large for gpt-4o-mini") == true)
            #expect(limited.header("x-should-retry") == "false")
            #expect(limited.header("retry-after") == nil)
        }
    }

    @Test func maxInFlightRefusesTheCallBeyondTheCap() async throws {
        // Stalled answers stay in flight until their connection closes: a way to hold
        // calls open without depending on timing.
        try await withMockServer({
            $0.rateLimit = .init(maxInFlight: 2)
            $0.faults = .init(stalls: 1)
        }) { server in
            let held = try (0..<2).map { _ in try RawHTTPConnection(port: server.port, readTimeout: .seconds(5)) }
            for connection in held {
                try connection.send(RawHTTPConnection.requestBytes(path: "/v1/chat/completions", body: chatBody()))
            }
            #expect(try await eventually { server.stats.inFlight == 2 })
            let third = try RawHTTPConnection(port: server.port).request(body: chatBody())
            #expect(third.status == 429)
            let error = try errorObject(third)
            #expect(error["type"] == .string("requests"))
            #expect(error["code"] == .string("rate_limit_exceeded"))
            #expect(error["message"]?.stringValue?.contains("limit 2 in flight") == true)
            #expect(third.header("retry-after-ms").flatMap { Int($0) }.map { $0 >= 1 } == true)
            #expect(third.header("retry-after") != nil)
            #expect(server.stats.peakInFlight == 2)
            #expect(server.stats.rateLimited == 1)
            #expect(server.stats.inFlight == 2)
        }
    }

    @Test func headersAppearOnlyWhenALimitIsConfigured() async throws {
        try await withMockServer { server in
            let response = try RawHTTPConnection(port: server.port).request(body: chatBody())
            #expect(!response.headers.contains { $0.0.hasPrefix("x-ratelimit-") })
        }
    }
}
