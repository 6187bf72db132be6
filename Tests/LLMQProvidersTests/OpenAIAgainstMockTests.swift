import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// The OpenAI adapter over the real transport against the fake provider: what a
/// worker will see, including every injected fault.
@Suite(.serialized) struct OpenAIAgainstMockTests {
    static let transport = CurlTransport()

    func withMock<T>(
        _ configure: (inout MockProviderServer.Configuration) -> Void = { _ in },
        _ body: (MockProviderServer, OpenAIAdapter) async throws -> T
    ) async throws -> T {
        var configuration = MockProviderServer.Configuration()
        configure(&configuration)
        return try await MockProviderServer.with(configuration) { server in
            try await body(server, OpenAIAdapter(baseURL: server.openAIBaseURL))
        }
    }

    func request(_ prompt: String = "What is 2+2?", maxTokens: Int? = nil) throws -> SubmittedRequest {
        var line = #"{"model":"gpt-4o-mini","prompt":"\#(prompt)","seed":7"#
        if let maxTokens { line += #","max_tokens":\#(maxTokens)"# }
        return try RequestParser().parse(line: line + "}", number: 1).get()
    }

    func send(_ submitted: SubmittedRequest, _ adapter: OpenAIAdapter, stream: Bool = false) async throws
        -> HTTPRequest
    {
        try adapter.makeRequest(
            try JSONParser.parse(submitted.canonical), route: submitted.route, key: "sk-test", stream: stream)
    }

    @Test func aRoundTripGetsTheRightAnswerAndUsage() async throws {
        try await withMock { server, adapter in
            let submitted = try request()
            let response = try await Self.transport.send(try await send(submitted, adapter))
            let answer = try adapter.parse(response).get()
            let messages = try JSONParser.parse(submitted.canonical)["messages"]!
            #expect(answer.text == MockReplies.text(forMessages: messages, seed: 7))
            #expect(answer.finishReason == "stop")
            #expect(answer.usage.outputTokens == MockReplies.defaultTokens)
            #expect(answer.usage.inputTokens > 0)
            #expect(server.stats.count("POST /v1/chat/completions", status: 200) == 1)
        }
    }

    @Test func aStreamReassemblesToTheSameAnswer() async throws {
        try await withMock { _, adapter in
            let submitted = try request(maxTokens: 5)
            let plain = try adapter.parse(try await Self.transport.send(try await send(submitted, adapter))).get()
            let response = try await Self.transport.stream(try await send(submitted, adapter, stream: true))
            #expect(response.status == 200)
            var accumulator = adapter.makeStreamAccumulator()
            for try await event in response.body.serverSentEvents {
                if try accumulator.consume(event) { break }
            }
            let streamed = try accumulator.answer()
            #expect(streamed.text == plain.text)
            #expect(streamed.finishReason == "length")
            #expect(streamed.usage == plain.usage)
        }
    }

    @Test func aRateLimitIsA429WithHeadersTheAdapterReads() async throws {
        try await withMock({
            $0.rateLimit.requestsPerSecond = 0.5; $0.rateLimit.burst = 1
        }) { _, adapter in
            let submitted = try request()
            let first = try await Self.transport.send(try await send(submitted, adapter))
            #expect(first.status == 200)
            let second = try await Self.transport.send(try await send(submitted, adapter))
            #expect(second.status == 429)
            guard case .failure(let failure) = adapter.parse(second) else {
                Issue.record("a 429 parsed as an answer")
                return
            }
            #expect(failure.type == "rate_limit_exceeded")
            #expect((failure.retryAfterMilliseconds ?? 0) > 0)
            let limits = adapter.rateLimits(second)
            #expect(limits.remainingRequests == 0)
            #expect((limits.resetRequestsMilliseconds ?? 0) > 0)
            #expect((limits.pauseMilliseconds ?? 0) > 0)
            #expect(failure.status == 429)
        }
    }

    @Test func injectedServerErrorsAreProviderFailures() async throws {
        try await withMock({ $0.faults.serverErrors = 1 }) { _, adapter in
            let response = try await Self.transport.send(try await send(try request(), adapter))
            #expect(response.status == 500)
            guard case .failure(let failure) = adapter.parse(response) else {
                Issue.record("a 500 parsed as an answer")
                return
            }
            #expect(failure.status == 500)
        }
        try await withMock({ $0.faults.overloaded = 1 }) { _, adapter in
            let response = try await Self.transport.send(try await send(try request(), adapter))
            #expect(response.status == 503)
        }
    }

    @Test func aResetMidBodyIsAConnectionClosedError() async throws {
        try await withMock({ $0.faults.resets = 1 }) { _, adapter in
            let error = await #expect(throws: TransportError.self) {
                _ = try await Self.transport.send(try await send(try request(), adapter))
            }
            guard case .connectionClosed? = error else {
                Issue.record("expected connectionClosed, got \(String(describing: error))")
                return
            }
        }
    }

    @Test func aTruncatedBodyArrivesWholeButIsNotAnAnswer() async throws {
        try await withMock({ $0.faults.truncatedBodies = 1 }) { _, adapter in
            let response = try await Self.transport.send(try await send(try request(), adapter))
            #expect(response.status == 200)
            guard case .failure(let failure) = adapter.parse(response) else {
                Issue.record("a truncated body parsed as an answer")
                return
            }
            #expect(failure.type == "invalid_response")
        }
    }

    @Test func aStalledStreamHitsTheIdleTimeout() async throws {
        try await withMock({ $0.faults.stalls = 1 }) { _, adapter in
            var options = HTTPRequestOptions()
            options.idleTimeout = .seconds(1)
            let response = try await Self.transport.stream(
                try await send(try request(), adapter, stream: true), options: options)
            let error = await #expect(throws: TransportError.self) {
                for try await _ in response.body {}
            }
            #expect(error == .timeout(.idle))
        }
    }
}
