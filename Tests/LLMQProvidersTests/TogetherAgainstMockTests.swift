import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// The OpenAI-shaped adapter as Together over the real transport against the fake
/// provider's Together surface: its own answer shape, stream chunks and errors.
@Suite(.serialized) struct TogetherAgainstMockTests {
    static let transport = CurlTransport()

    func request(maxTokens: Int? = nil) throws -> SubmittedRequest {
        var line = #"{"model":"together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo","prompt":"Name a colour","seed":3"#
        if let maxTokens { line += #","max_tokens":\#(maxTokens)"# }
        return try RequestParser().parse(line: line + "}", number: 1).get()
    }

    @Test func aRoundTripAndAStreamGiveTheSameAnswerAndUsage() async throws {
        try await MockProviderServer.with(MockProviderServer.Configuration()) { server in
            let adapter = OpenAIAdapter(provider: .together, baseURL: server.openAIBaseURL)
            let submitted = try request(maxTokens: 6)
            let canonical = try JSONParser.parse(submitted.canonical)
            let plain = try adapter.parse(
                try await Self.transport.send(
                    try adapter.makeRequest(canonical, route: submitted.route, key: "t", stream: false))
            ).get()
            #expect(plain.text == MockReplies.text(forMessages: canonical["messages"]!, seed: 3, tokens: 6))
            #expect(plain.usage.outputTokens == 6)
            #expect(plain.usage.inputTokens > 0)
            // Together's own body: the `prompt` array and top-level cached_tokens.
            let body = try JSONParser.parse(plain.raw)
            #expect(body["prompt"] != nil)
            #expect(body["usage"]?["cached_tokens"] != nil)

            let response = try await Self.transport.stream(
                try adapter.makeRequest(canonical, route: submitted.route, key: "t", stream: true))
            var accumulator = adapter.makeStreamAccumulator()
            for try await event in response.body.serverSentEvents {
                if try accumulator.consume(event) { break }
            }
            let streamed = try accumulator.answer()
            #expect(streamed.text == plain.text)
            #expect(streamed.usage == plain.usage)
        }
    }

    @Test func aMissingKeyIsAnAuthenticationError() async throws {
        try await MockProviderServer.with(MockProviderServer.Configuration()) { server in
            let adapter = OpenAIAdapter(provider: .together, baseURL: server.openAIBaseURL)
            let submitted = try request()
            let response = try await Self.transport.send(
                try adapter.makeRequest(
                    try JSONParser.parse(submitted.canonical), route: submitted.route, key: "", stream: false))
            let failure = try #require(
                {
                    if case .failure(let failure) = adapter.parse(response) { return failure }
                    return nil
                }())
            #expect(failure.status == 401)
            #expect(!failure.message.isEmpty)
        }
    }
}
