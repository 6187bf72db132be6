import LLMQCore
import MockProvider
import Testing

@Suite struct ChatCompletionsTests {
    @Test func nonStreamingAnswerHasTheFullShape() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(body: chatBody("Say hi.", extra: ",\"seed\":7"))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            #expect(response.header("x-request-id")?.hasPrefix("req_") == true)
            #expect(response.header("content-length") == String(response.body.count))

            let json = try response.json()
            let object = try #require(json.objectValue)
            #expect(
                object.keys == [
                    "id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint",
                ])
            let id = try #require(json["id"]?.stringValue)
            #expect(id.hasPrefix("chatcmpl-") && id.count == 38)
            #expect(json["object"] == .string("chat.completion"))
            #expect((json["created"]?.intValue ?? 0) > 1_600_000_000)
            #expect(json["model"] == .string("gpt-4o-mini"))
            #expect(json["service_tier"] == .string("default"))
            #expect(json["system_fingerprint"]?.stringValue?.hasPrefix("fp_") == true)

            let choices = try #require(json["choices"]?.arrayValue)
            #expect(choices.count == 1)
            let choice = try #require(choices.first?.objectValue)
            #expect(choice.keys == ["index", "message", "logprobs", "finish_reason"])
            #expect(choice["index"] == .int(0))
            #expect(choice["logprobs"] == .null)
            #expect(choice["finish_reason"] == .string("stop"))
            let message = try #require(choice["message"]?.objectValue)
            #expect(message.keys == ["role", "content", "refusal", "annotations"])
            #expect(message["role"] == .string("assistant"))
            #expect(message["refusal"] == .null)
            #expect(message["annotations"] == .array([]))
            let expected = MockReplies.text(for: [.init(role: "user", content: "Say hi.")], seed: 7, tokens: 16)
            #expect(message["content"] == .string(expected))
            #expect(expected.split(separator: " ").count == 16)

            let usage = try #require(json["usage"])
            let promptTokens = MockReplies.promptTokens(for: [.init(role: "user", content: "Say hi.")])
            #expect(promptTokens == 4 + 2)  // 7 bytes → 2 tokens, plus 4 for the message
            #expect(usage["prompt_tokens"] == .int(Int64(promptTokens)))
            #expect(usage["completion_tokens"] == .int(16))
            #expect(usage["total_tokens"] == .int(Int64(promptTokens + 16)))
            #expect(usage["prompt_tokens_details"] == .object(["cached_tokens": .int(0), "audio_tokens": .int(0)]))
            #expect(
                usage["completion_tokens_details"]
                    == .object([
                        "reasoning_tokens": .int(0), "audio_tokens": .int(0), "accepted_prediction_tokens": .int(0),
                        "rejected_prediction_tokens": .int(0),
                    ]))
        }
    }

    @Test func replyIsADeterministicFunctionOfMessagesAndSeed() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            func content(_ body: String) throws -> String? {
                try connection.request(body: body).json()["choices"]?[0]?["message"]?["content"]?.stringValue
            }
            let body = """
                {"model":"gpt-4o-mini","seed":42,"messages":[{"role":"system","content":"Be terse."},\
                {"role":"user","content":[{"type":"text","text":"2+"},{"type":"text","text":"2?"}]}]}
                """
            let first = try content(body)
            #expect(first == (try content(body)))
            let messages: [MockReplies.Message] = [
                .init(role: "system", content: "Be terse."), .init(role: "user", content: "2+2?"),
            ]
            #expect(first == MockReplies.text(for: messages, seed: 42))
            #expect(first == MockReplies.text(forMessages: try JSONParser.parse(body)["messages"]!, seed: 42))
            // Another seed, another prompt, or no seed give other replies.
            #expect(first != MockReplies.text(for: messages, seed: 43))
            #expect(first != MockReplies.text(for: messages))
            #expect(try content(chatBody("one")) != (try content(chatBody("two"))))
        }
    }

    @Test func replyLengthIsConfigurable() async throws {
        try await withMockServer({ $0.replyTokens = 3 }) { server in
            let json = try RawHTTPConnection(port: server.port).request(body: chatBody("x")).json()
            let content = try #require(json["choices"]?[0]?["message"]?["content"]?.stringValue)
            #expect(content == MockReplies.text(for: [.init(role: "user", content: "x")], tokens: 3))
            #expect(content.split(separator: " ").count == 3)
            #expect(json["usage"]?["completion_tokens"] == .int(3))
        }
    }

    @Test(arguments: ["max_tokens", "max_completion_tokens"])
    func capCutsTheReplyWithFinishReasonLength(field: String) async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let cut = try connection.request(body: chatBody("cap me", extra: ",\"\(field)\":5")).json()
            let full = MockReplies.text(for: [.init(role: "user", content: "cap me")])
            let expected = full.split(separator: " ").prefix(5).joined(separator: " ")
            #expect(cut["choices"]?[0]?["message"]?["content"] == .string(expected))
            #expect(cut["choices"]?[0]?["finish_reason"] == .string("length"))
            #expect(cut["usage"]?["completion_tokens"] == .int(5))
            // A cap at or above the reply's length does not cut it.
            let uncut = try connection.request(body: chatBody("cap me", extra: ",\"\(field)\":16")).json()
            #expect(uncut["choices"]?[0]?["finish_reason"] == .string("stop"))
            #expect(uncut["choices"]?[0]?["message"]?["content"] == .string(full))
        }
    }

    @Test func nGivesOneChoicePerIndex() async throws {
        try await withMockServer { server in
            let json = try RawHTTPConnection(port: server.port).request(body: chatBody("many", extra: ",\"n\":3"))
                .json()
            let choices = try #require(json["choices"]?.arrayValue)
            #expect(choices.map { $0["index"] } == [.int(0), .int(1), .int(2)])
            let messages = [MockReplies.Message(role: "user", content: "many")]
            for (index, choice) in choices.enumerated() {
                #expect(choice["message"]?["content"] == .string(MockReplies.text(for: messages, choice: index)))
            }
            #expect(Set(choices.map { $0["message"]?["content"] }).count == 3)
            #expect(json["usage"]?["completion_tokens"] == .int(48))
        }
    }

    @Test func keepAliveAndPipelinedRequestsAnswerInOrder() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let prompts = (0..<5).map { "prompt \($0)" }
            // All five requests in one write: answers must come back in order.
            try connection.send(
                prompts.flatMap { RawHTTPConnection.requestBytes(path: "/v1/chat/completions", body: chatBody($0)) })
            for prompt in prompts {
                let json = try connection.readResponse().json()
                #expect(
                    json["choices"]?[0]?["message"]?["content"]
                        == .string(MockReplies.text(for: [.init(role: "user", content: prompt)])))
            }
            #expect(try connection.request(body: chatBody()).status == 200)
            #expect(server.stats.connectionsAccepted == 1)
        }
    }

    @Test func connectionCloseIsHonoured() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(
                body: chatBody(), headers: RawHTTPConnection.defaultHeaders + [("connection", "close")])
            #expect(response.status == 200)
            #expect(response.header("connection") == "close")
            #expect(try connection.readToEnd().isEmpty)
        }
    }

    @Test func promptCachingReportsCachedTokensForARepeatedLongPrompt() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let long = String(repeating: "abcd", count: 1100)  // 1100 tokens + 4
            let system = "{\"role\":\"system\",\"content\":\"\(long)\"}"
            func body(_ question: String) -> String {
                "{\"model\":\"gpt-4o-mini\",\"messages\":[\(system),{\"role\":\"user\",\"content\":\"\(question)\"}]}"
            }
            let first = try connection.request(body: body("first")).json()
            #expect(first["usage"]?["prompt_tokens_details"]?["cached_tokens"] == .int(0))
            // Same system prompt, another question: the shared prefix (1104 tokens) is cached in 128s.
            let second = try connection.request(body: body("second")).json()
            #expect(second["usage"]?["prompt_tokens_details"]?["cached_tokens"] == .int(1024))
            // The same whole prompt again: all of it, rounded down to 128s.
            let repeated = try connection.request(body: body("first")).json()
            #expect(repeated["usage"]?["prompt_tokens"] == .int(1104 + 6))
            #expect(repeated["usage"]?["prompt_tokens_details"]?["cached_tokens"] == .int(1024))
            // Short prompts are never cached.
            _ = try connection.request(body: chatBody("short"))
            let short = try connection.request(body: chatBody("short")).json()
            #expect(short["usage"]?["prompt_tokens_details"]?["cached_tokens"] == .int(0))
        }
    }

    @Test func modelsAreListed() async throws {
        try await withMockServer({ $0.models = ["gpt-4o-mini", "gpt-5-nano"] }) { server in
            let json = try RawHTTPConnection(port: server.port).request(method: "GET", path: "/v1/models").json()
            #expect(json["object"] == .string("list"))
            #expect(json["data"]?.arrayValue?.map { $0["id"] } == [.string("gpt-4o-mini"), .string("gpt-5-nano")])
        }
    }
}
