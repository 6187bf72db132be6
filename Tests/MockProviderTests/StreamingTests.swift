import LLMQCore
import MockProvider
import Testing

@Suite struct StreamingTests {
    /// The parsed JSON chunks of a stream, which must end with `[DONE]`.
    func chunks(_ response: RawHTTPResponse) throws -> [JSONValue] {
        let events = response.events
        #expect(events.last == "[DONE]")
        return try events.dropLast().map { try JSONParser.parse($0) }
    }

    @Test func streamFramesComeInOrderWithRoleContentFinishAndDone() async throws {
        try await withMockServer({ $0.replyTokens = 4 }) { server in
            let response = try RawHTTPConnection(port: server.port).request(
                body: chatBody("stream me", extra: ",\"stream\":true,\"seed\":3"))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/event-stream")
            #expect(response.header("transfer-encoding") == "chunked")
            #expect(response.header("x-request-id")?.hasPrefix("req_") == true)
            // Only `data:` lines, each event ended by a blank line, no `event:` lines.
            #expect(!response.text.contains("event:"))
            #expect(response.text.hasSuffix("data: [DONE]\n\n"))

            let chunks = try chunks(response)
            #expect(chunks.count == 1 + 4 + 1)
            let id = try #require(chunks.first?["id"]?.stringValue)
            #expect(id.hasPrefix("chatcmpl-"))
            for chunk in chunks {
                #expect(chunk["id"] == .string(id))
                #expect(chunk["object"] == .string("chat.completion.chunk"))
                #expect(chunk["created"] == chunks[0]["created"])
                #expect(chunk["model"] == .string("gpt-4o-mini"))
                #expect(chunk["usage"] == nil)  // no include_usage: no usage key at all
                #expect(chunk["choices"]?.arrayValue?.count == 1)
                #expect(chunk["choices"]?[0]?["logprobs"] == .null)
                #expect(chunk["obfuscation"]?.stringValue?.isEmpty == false)
            }
            #expect(
                chunks[0]["choices"]?[0]?["delta"]
                    == .object(["role": .string("assistant"), "content": .string(""), "refusal": .null]))
            #expect(chunks[0]["choices"]?[0]?["finish_reason"] == .null)
            let pieces = chunks[1...4].map { $0["choices"]?[0]?["delta"]?["content"]?.stringValue ?? "?" }
            #expect(
                pieces.joined()
                    == MockReplies.text(for: [.init(role: "user", content: "stream me")], seed: 3, tokens: 4))
            #expect(chunks[1...4].allSatisfy { $0["choices"]?[0]?["finish_reason"] == .null })
            #expect(chunks[5]["choices"]?[0]?["delta"] == .object([:]))
            #expect(chunks[5]["choices"]?[0]?["finish_reason"] == .string("stop"))
        }
    }

    @Test func includeUsageAddsNullUsageToEveryChunkAndAFinalUsageChunk() async throws {
        try await withMockServer({ $0.replyTokens = 3 }) { server in
            let response = try RawHTTPConnection(port: server.port).request(
                body: chatBody(
                    "usage please",
                    extra: ",\"stream\":true,\"max_tokens\":2,\"stream_options\":{\"include_usage\":true}"))
            let chunks = try chunks(response)
            #expect(chunks.count == 1 + 2 + 1 + 1)
            for chunk in chunks.dropLast() {
                #expect(chunk["usage"] == .null)
                #expect(chunk["choices"]?.arrayValue?.count == 1)
            }
            #expect(chunks[3]["choices"]?[0]?["finish_reason"] == .string("length"))
            let last = try #require(chunks.last)
            #expect(last["choices"] == .array([]))
            let promptTokens = MockReplies.promptTokens(for: [.init(role: "user", content: "usage please")])
            #expect(last["usage"]?["prompt_tokens"] == .int(Int64(promptTokens)))
            #expect(last["usage"]?["completion_tokens"] == .int(2))
            #expect(last["usage"]?["total_tokens"] == .int(Int64(promptTokens + 2)))
            #expect(last["usage"]?["prompt_tokens_details"]?["cached_tokens"] == .int(0))
        }
    }

    @Test func obfuscationCanBeTurnedOff() async throws {
        try await withMockServer { server in
            let response = try RawHTTPConnection(port: server.port).request(
                body: chatBody("x", extra: ",\"stream\":true,\"stream_options\":{\"include_obfuscation\":false}"))
            #expect(try chunks(response).allSatisfy { $0["obfuscation"] == nil })
        }
    }

    @Test func streamsWithSeveralChoicesInterleaveThem() async throws {
        try await withMockServer({ $0.replyTokens = 2 }) { server in
            let response = try RawHTTPConnection(port: server.port).request(
                body: chatBody("two", extra: ",\"stream\":true,\"n\":2"))
            let chunks = try chunks(response)
            #expect(chunks.count == 2 * (1 + 2 + 1))
            for choice in 0..<2 {
                let mine = chunks.filter { $0["choices"]?[0]?["index"] == .int(Int64(choice)) }
                let text = mine.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
                #expect(text == MockReplies.text(for: [.init(role: "user", content: "two")], tokens: 2, choice: choice))
                #expect(mine.last?["choices"]?[0]?["finish_reason"] == .string("stop"))
            }
        }
    }
}
