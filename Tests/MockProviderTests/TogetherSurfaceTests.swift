import LLMQCore
import Testing

@testable import MockProvider

@Suite struct TogetherSurfaceTests {
    static let model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"

    func post(
        _ server: MockProviderServer, _ body: String, headers: [(String, String)] = RawHTTPConnection.defaultHeaders
    )
        throws -> RawHTTPResponse
    {
        try RawHTTPConnection(port: server.port).request(body: body, headers: headers)
    }

    /// `ogzjdpL-6Ng1vN-9f391a08f8af75e1`: 7 and 6 base-62 digits, then 16 hex digits.
    func isTogetherID(_ id: String?) -> Bool {
        guard let parts = id?.split(separator: "-", omittingEmptySubsequences: false), parts.count == 3 else {
            return false
        }
        return parts.map(\.count) == [7, 6, 16] && parts[2].allSatisfy(\.isHexDigit)
    }

    @Test func modelsNamedOrgSlashNameAreTogethers() {
        #expect(TogetherSurface.serves(model: Self.model))
        #expect(TogetherSurface.serves(model: "deepseek-ai/DeepSeek-V3"))
        #expect(!TogetherSurface.serves(model: "gpt-4o-mini"))
        #expect(!TogetherSurface.serves(model: "o3"))
    }

    @Test func anAnswerHasTogethersShape() async throws {
        try await withMockServer({ $0.replyTokens = 5 }) { server in
            let response = try post(server, chatBody("Say hi.", model: Self.model, extra: ",\"seed\":7,\"n\":2"))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json; charset=utf-8")
            let json = try response.json()
            let object = try #require(json.objectValue)
            #expect(object.keys == ["id", "object", "created", "model", "prompt", "choices", "usage"])
            #expect(isTogetherID(json["id"]?.stringValue))
            #expect(response.header("x-request-id") == json["id"]?.stringValue)
            #expect(json["object"] == .string("chat.completion"))
            #expect(json["model"] == .string(Self.model))
            #expect(json["prompt"] == .array([]))
            let choices = try #require(json["choices"]?.arrayValue)
            #expect(choices.count == 2)
            for (index, choice) in choices.enumerated() {
                #expect(choice.objectValue?.keys == ["finish_reason", "seed", "logprobs", "index", "message"])
                #expect(choice["index"] == .int(Int64(index)))
                #expect(choice["seed"] == .int(7))
                #expect(choice["finish_reason"] == .string("stop"))
                #expect(choice["message"]?.objectValue?.keys == ["role", "content", "tool_calls"])
                #expect(choice["message"]?["tool_calls"] == .array([]))
                let expected = MockReplies.text(
                    for: [.init(role: "user", content: "Say hi.")], seed: 7, tokens: 5, choice: index)
                #expect(choice["message"]?["content"] == .string(expected))
            }
            let prompt = Int64(MockReplies.promptTokens(for: [.init(role: "user", content: "Say hi.")]))
            #expect(
                json["usage"]
                    == .object([
                        "prompt_tokens": .int(prompt), "completion_tokens": .int(10), "total_tokens": .int(prompt + 10),
                        "cached_tokens": .int(0),
                    ]))
        }
    }

    @Test func withoutASeedEachChoiceGetsADrawnOne() async throws {
        try await withMockServer { server in
            let json = try post(server, chatBody(model: Self.model)).json()
            // Drawn seeds are unsigned 64-bit: above Int64.max they parse as doubles.
            let seed = try #require(json["choices"]?[0]?["seed"])
            #expect(seed.doubleValue != nil)
        }
    }

    @Test func openAIModelsKeepOpenAIsShape() async throws {
        try await withMockServer { server in
            let json = try post(server, chatBody()).json()
            #expect(json["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
            #expect(json["prompt"] == nil)
            #expect(json["system_fingerprint"] != nil)
        }
    }

    @Test func aStreamCarriesUsageOnTheFinishChunkWhetherAskedOrNot() async throws {
        for extra in [",\"stream\":true", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"] {
            try await withMockServer({ $0.replyTokens = 3 }) { server in
                let response = try post(server, chatBody("stream me", model: Self.model, extra: extra))
                #expect(response.status == 200)
                #expect(response.header("content-type") == "text/event-stream;charset=utf-8")
                let events = response.events
                #expect(events.last == "[DONE]")
                let chunks = try events.dropLast().map { try JSONParser.parse($0) }
                #expect(chunks.count == 3 + 1)
                let words = MockReplies.text(for: [.init(role: "user", content: "stream me")], tokens: 3)
                var text = ""
                for (index, chunk) in chunks.enumerated() {
                    #expect(
                        chunk.objectValue?.keys == ["id", "object", "created", "choices", "model", "usage"])
                    #expect(isTogetherID(chunk["id"]?.stringValue) && chunk["id"] == chunks[0]["id"])
                    let choice = try #require(chunk["choices"]?[0])
                    #expect(
                        choice.objectValue?.keys == ["index", "text", "logprobs", "finish_reason", "seed", "delta"])
                    #expect(choice["delta"]?["role"] == .string("assistant"))
                    #expect(choice["delta"]?["token_id"]?.intValue != nil)
                    #expect(choice["text"] == choice["delta"]?["content"])
                    text += choice["text"]?.stringValue ?? "?"
                    let last = index == chunks.count - 1
                    #expect((choice["finish_reason"] == .string("stop")) == last)
                    #expect((choice["seed"] == .null) == !last)
                    #expect((chunk["usage"] == .null) == !last)
                }
                #expect(text == words)
                #expect(chunks.last?["usage"]?["completion_tokens"] == .int(3))
                #expect(chunks.last?["usage"]?["cached_tokens"] == .int(0))
            }
        }
    }

    @Test func togetherFieldsAreAcceptedWhereOpenAIRefusesThem() async throws {
        try await withMockServer { server in
            let extra =
                ",\"top_k\":40,\"repetition_penalty\":1.1,\"min_p\":0.05,\"stream_options\":{\"include_usage\":true}"
            let together = try post(server, chatBody(model: Self.model, extra: extra))
            let openAI = try post(server, chatBody(extra: extra))
            #expect(together.status == 200)
            #expect(openAI.status == 400)
        }
    }

    @Test func errorsHaveTogethersEnvelope() async throws {
        try await withMockServer({
            $0.apiKey = "tg-key"
            $0.models = [Self.model]
        }) { server in
            let right = [("authorization", "Bearer tg-key")]
            let wrong = try post(server, chatBody(model: Self.model), headers: [("authorization", "Bearer nope")])
            #expect(wrong.status == 401)
            let wrongJSON = try wrong.json()
            #expect(wrongJSON.objectValue?.keys == ["id", "error"])
            #expect(isTogetherID(wrongJSON["id"]?.stringValue))
            #expect(wrongJSON["error"]?["code"] == .string("invalid_api_key"))
            #expect(wrongJSON["error"]?["type"] == .string("invalid_request_error"))
            #expect(wrongJSON["error"]?["message"]?.stringValue?.contains("api.together.xyz") == true)
            #expect(try post(server, chatBody(model: Self.model), headers: []).status == 401)

            let missing = try post(server, "{\"model\":\"\(Self.model)\"}", headers: right)
            #expect(missing.status == 400)
            #expect(try missing.json()["error"]?["param"] == .string("messages"))
            #expect(try missing.json()["id"] != nil)

            let unknown = try post(server, chatBody(model: "org/unknown-model"), headers: right)
            #expect(unknown.status == 404)
            #expect(try unknown.json()["error"]?["code"] == .string("model_not_found"))
            #expect(try post(server, chatBody(model: Self.model), headers: right).status == 200)
        }
    }

    @Test func rateLimitsUseTogethersHeadersAndTypes() async throws {
        try await withMockServer({ $0.rateLimit = .init(requestsPerSecond: 0.01, burst: 1) }) { server in
            let first = try post(server, chatBody(model: Self.model))
            #expect(first.status == 200)
            #expect(first.header("x-ratelimit-limit") == "1")
            #expect(first.header("x-ratelimit-remaining") == "0")
            #expect(Int(first.header("x-ratelimit-reset") ?? "") ?? 0 >= 1)
            #expect(first.header("x-ratelimit-limit-requests") == nil)
            let limited = try post(server, chatBody(model: Self.model))
            #expect(limited.status == 429)
            let json = try limited.json()
            #expect(json["error"]?["type"] == .string("dynamic_request_limited"))
            #expect(json["error"]?["code"] == .null)
            #expect(Int(limited.header("x-ratelimit-reset") ?? "") ?? 0 >= 90)
            #expect(limited.header("retry-after") == nil && limited.header("retry-after-ms") == nil)
            #expect(limited.headers.filter { $0.0 == "x-ratelimit-reset" }.count == 1)
        }
        try await withMockServer({ $0.rateLimit = .init(tokensPerMinute: 30) }) { server in
            let first = try post(server, chatBody(model: Self.model))
            #expect(first.status == 200)
            #expect(first.header("x-tokenlimit-limit") == "30")
            #expect(first.header("x-tokenlimit-remaining").flatMap { Int($0) } ?? 99 < 30)
            let limited = try post(server, chatBody(model: Self.model))
            #expect(limited.status == 429)
            #expect(try limited.json()["error"]?["type"] == .string("dynamic_token_limited"))
        }
    }

    @Test func faultsAndStreamErrorsHaveTogethersEnvelope() async throws {
        try await withMockServer({ $0.faults.serverErrors = 1 }) { server in
            let response = try post(server, chatBody(model: Self.model))
            #expect(response.status == 500)
            let json = try response.json()
            #expect(isTogetherID(json["id"]?.stringValue))
            #expect(json["error"]?["type"] == .string("server_error"))
        }
        try await withMockServer({ $0.faults.overloaded = 1 }) { server in
            let response = try post(server, chatBody(model: Self.model))
            #expect(response.status == 503)
        }
        try await withMockServer({ $0.faults.streamErrors = 1 }) { server in
            let response = try post(server, chatBody(model: Self.model, extra: ",\"stream\":true"))
            #expect(response.status == 200)
            let last = try JSONParser.parse(try #require(response.events.last))
            #expect(last.objectValue?.keys == ["id", "error"])
            #expect(last["error"]?["type"] == .string("server_error"))
        }
    }

    @Test func togethersOwnResponseFormatGivesJSONThatFits() async throws {
        try await withMockServer { server in
            let schema =
                #"{"type":"object","properties":{"city":{"type":"string"},"rank":{"type":"integer"}},"required":["city","rank"]}"#
            for format in [
                #"{"type":"json_schema","schema":\#(schema)}"#, #"{"type":"json_object","schema":\#(schema)}"#,
                #"{"type":"json_schema","json_schema":{"name":"x","schema":\#(schema)}}"#,
            ] {
                let json = try post(server, chatBody(model: Self.model, extra: ",\"response_format\":\(format)")).json()
                let content = try #require(json["choices"]?[0]?["message"]?["content"]?.stringValue)
                let value = try JSONParser.parse(content)
                #expect(value["city"]?.stringValue != nil)
                #expect(value["rank"]?.intValue != nil)
            }
            // `regex` (not modelled) is answered in words.
            let regex = try post(
                server, chatBody(model: Self.model, extra: #","response_format":{"type":"regex","pattern":"[a-z]+"}"#))
            #expect(regex.status == 200)
        }
    }
}
