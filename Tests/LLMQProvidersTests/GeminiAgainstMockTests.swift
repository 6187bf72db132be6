import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// The Gemini adapter over the real transport against the fake provider.
@Suite(.serialized) struct GeminiAgainstMockTests {
    static let transport = CurlTransport()

    func send(_ adapter: GeminiAdapter, route: Route, stream: Bool = false) throws -> HTTPRequest {
        try adapter.makeRequest(
            try JSONParser.parse(#"{"messages":[{"content":"What is 2+2?","role":"user"}],"max_tokens":5}"#),
            route: route, key: "g-key", stream: stream)
    }

    @Test func aRoundTripAndAStreamGiveTheSameAnswer() async throws {
        let server = try await MockProviderServer.start(MockProviderServer.Configuration())
        do {
            let adapter = GeminiAdapter(baseURL: server.url)
            let route = Route(provider: .gemini, model: "gemini-2.5-flash", providerModel: "gemini-2.5-flash")
            let plain = try adapter.parse(try await Self.transport.send(try send(adapter, route: route))).get()
            #expect(plain.text == MockReplies.text(for: [.init(role: "user", content: "What is 2+2?")], tokens: 5))
            #expect(plain.finishReason == "length")
            #expect(plain.usage.outputTokens == 5)
            let response = try await Self.transport.stream(try send(adapter, route: route, stream: true))
            #expect(response.status == 200)
            var accumulator = adapter.makeStreamAccumulator()
            for try await event in response.body.serverSentEvents {
                if try accumulator.consume(event) { break }
            }
            let streamed = try accumulator.answer()
            #expect(streamed.text == plain.text)
            #expect(streamed.usage == plain.usage)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}
