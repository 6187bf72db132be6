import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// The Anthropic adapter over the real transport against the fake provider's
/// Messages surface.
@Suite(.serialized) struct AnthropicAgainstMockTests {
    static let transport = CurlTransport()
    static let route = ModelRouter.route("sonnet")!
    static let canonical =
        #"{"messages":[{"content":"Be terse.","role":"system"},{"content":"What is 2+2?","role":"user"}],"#
        + #""model":"sonnet","temperature":0}"#

    func withMock<T>(
        _ configure: (inout MockProviderServer.Configuration) -> Void = { _ in },
        _ body: (MockProviderServer, AnthropicAdapter) async throws -> T
    ) async throws -> T {
        var configuration = MockProviderServer.Configuration()
        configure(&configuration)
        return try await MockProviderServer.with(configuration) { server in
            try await body(server, AnthropicAdapter(baseURL: server.url))
        }
    }

    func send(_ adapter: AnthropicAdapter, maxTokens: Int? = nil, stream: Bool = false) throws -> HTTPRequest {
        var adapter = adapter
        if let maxTokens { adapter.defaultMaxTokens = maxTokens }
        return try adapter.makeRequest(
            try JSONParser.parse(Self.canonical), route: Self.route, key: "sk-ant-test", stream: stream)
    }

    /// The system prompt goes first, as a `system` message.
    static let messages: [MockReplies.Message] = [
        .init(role: "system", content: "Be terse."), .init(role: "user", content: "What is 2+2?"),
    ]

    @Test func aRoundTripGetsTheRightAnswerAndUsage() async throws {
        try await withMock { server, adapter in
            let response = try await Self.transport.send(try send(adapter))
            let answer = try adapter.parse(response).get()
            #expect(answer.text == MockReplies.text(for: Self.messages))
            #expect(answer.finishReason == "stop")
            #expect(answer.usage.outputTokens == MockReplies.defaultTokens)
            #expect(answer.usage.inputTokens == MockReplies.promptTokens(for: Self.messages))
            #expect(answer.model == Self.route.providerModel)
            #expect(server.stats.count("POST /v1/messages", status: 200) == 1)
        }
    }

    @Test func aStreamReassemblesToTheSameAnswer() async throws {
        try await withMock { _, adapter in
            let plain = try adapter.parse(try await Self.transport.send(try send(adapter, maxTokens: 5))).get()
            #expect(plain.finishReason == "length")
            let response = try await Self.transport.stream(try send(adapter, maxTokens: 5, stream: true))
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
            #expect(try await Self.transport.send(try send(adapter)).status == 200)
            let second = try await Self.transport.send(try send(adapter))
            #expect(second.status == 429)
            guard case .failure(let failure) = adapter.parse(second) else {
                Issue.record("a 429 parsed as an answer")
                return
            }
            #expect(failure.type == "rate_limit_error")
            #expect((failure.retryAfterMilliseconds ?? 0) > 0)
            let limits = adapter.rateLimits(second)
            #expect(limits.remainingRequests == 0)
            #expect((limits.resetRequestsMilliseconds ?? 0) > 0)
        }
    }

    @Test func overloadIsA529FailureAndMidStreamErrorsThrow() async throws {
        try await withMock({ $0.faults.overloaded = 1 }) { _, adapter in
            let response = try await Self.transport.send(try send(adapter))
            #expect(response.status == 529)
            guard case .failure(let failure) = adapter.parse(response) else {
                Issue.record("a 529 parsed as an answer")
                return
            }
            #expect(failure.type == "overloaded_error")
        }
        try await withMock({ $0.faults.streamErrors = 1 }) { _, adapter in
            let response = try await Self.transport.stream(try send(adapter, stream: true))
            #expect(response.status == 200)
            var accumulator = adapter.makeStreamAccumulator()
            let failure = await #expect(throws: ProviderFailure.self) {
                for try await event in response.body.serverSentEvents {
                    if try accumulator.consume(event) { break }
                }
            }
            #expect(failure?.type == "overloaded_error")
        }
    }
}
