import Foundation
import LLMQCore
import Testing

@testable import MockProvider

@Suite struct AnthropicSurfaceTests {
    static let headers = [
        ("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01"), ("content-type", "application/json"),
    ]

    func messagesBody(
        _ prompt: String = "Say hi.", model: String = "claude-sonnet-4-5", maxTokens: Int? = 256, extra: String = ""
    ) -> String {
        var escaped: [UInt8] = []
        CanonicalJSON.writeString(prompt, to: &escaped)
        var body = "{\"model\":\"\(model)\""
        if let maxTokens { body += ",\"max_tokens\":\(maxTokens)" }
        body += ",\"messages\":[{\"role\":\"user\",\"content\":\(String(decoding: escaped, as: UTF8.self))}]"
        return body + extra + "}"
    }

    func post(
        _ server: MockProviderServer, _ body: String, headers: [(String, String)] = headers
    ) throws -> RawHTTPResponse {
        try RawHTTPConnection(port: server.port).request(path: "/v1/messages", body: body, headers: headers)
    }

    /// The `(event, data)` pairs of a named-event SSE body.
    func events(_ response: RawHTTPResponse) throws -> [(String, JSONValue)] {
        try response.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
            let lines = block.components(separatedBy: "\n")
            try #require(lines.count == 2)
            try #require(lines[0].hasPrefix("event: ") && lines[1].hasPrefix("data: "))
            return (String(lines[0].dropFirst(7)), try JSONParser.parse(String(lines[1].dropFirst(6))))
        }
    }

    @Test func aMessageHasTheReplyUsageAndRequestID() async throws {
        try await withMockServer({ $0.replyTokens = 5 }) { server in
            let response = try post(server, messagesBody("hello", extra: ",\"system\":\"Be terse.\""))
            #expect(response.status == 200)
            #expect(response.header("request-id")?.hasPrefix("req_") == true)
            let json = try response.json()
            #expect(json["id"]?.stringValue?.hasPrefix("msg_") == true)
            #expect(json["type"] == .string("message"))
            #expect(json["role"] == .string("assistant"))
            #expect(json["model"] == .string("claude-sonnet-4-5"))
            let messages: [MockReplies.Message] = [
                .init(role: "system", content: "Be terse."), .init(role: "user", content: "hello"),
            ]
            #expect(
                json["content"]
                    == .array([
                        .object([
                            "type": .string("text"), "text": .string(MockReplies.text(for: messages, tokens: 5)),
                        ])
                    ]))
            #expect(json["stop_reason"] == .string("end_turn"))
            #expect(json["stop_sequence"] == .null)
            let usage = try #require(json["usage"])
            #expect(usage["input_tokens"] == .int(Int64(MockReplies.promptTokens(for: messages))))
            #expect(usage["output_tokens"] == .int(5))
            #expect(usage["cache_creation_input_tokens"] == .int(0))
            #expect(usage["cache_read_input_tokens"] == .int(0))
        }
    }

    @Test func systemTextBlocksGiveTheSameReplyAsASystemString() async throws {
        try await withMockServer { server in
            let plain = try post(server, messagesBody("q", extra: ",\"system\":\"ab\"")).json()
            let blocks = try post(
                server,
                messagesBody(
                    "q",
                    extra:
                        ",\"system\":[{\"type\":\"text\",\"text\":\"a\"},"
                        + "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}}]")
            ).json()
            let none = try post(server, messagesBody("q")).json()
            #expect(plain["content"] == blocks["content"])
            #expect(plain["content"] != none["content"])
        }
    }

    @Test func maxTokensCutsTheReply() async throws {
        try await withMockServer { server in
            let json = try post(server, messagesBody("cut", maxTokens: 3)).json()
            #expect(json["stop_reason"] == .string("max_tokens"))
            #expect(json["usage"]?["output_tokens"] == .int(3))
            #expect(
                json["content"]?[0]?["text"]
                    == .string(MockReplies.text(for: [.init(role: "user", content: "cut")], tokens: 3)))
        }
    }

    @Test func bearerKeysWorkAndMissingOrWrongKeysAre401() async throws {
        try await withMockServer({ $0.apiKey = "sk-ant-test" }) { server in
            let bearer = [("authorization", "Bearer sk-ant-test"), ("anthropic-version", "2023-06-01")]
            #expect(try post(server, messagesBody(), headers: bearer).status == 200)
            #expect(try post(server, messagesBody()).status == 200)
            for headers in [
                [("anthropic-version", "2023-06-01")], [("x-api-key", "wrong"), ("anthropic-version", "2023-06-01")],
            ] {
                let response = try post(server, messagesBody(), headers: headers)
                #expect(response.status == 401)
                #expect(response.header("request-id")?.hasPrefix("req_") == true)
                let json = try response.json()
                #expect(json["type"] == .string("error"))
                #expect(json["error"]?["type"] == .string("authentication_error"))
                #expect(json["error"]?["message"]?.stringValue?.isEmpty == false)
            }
        }
    }

    @Test func aMissingVersionHeaderIs400() async throws {
        try await withMockServer { server in
            let response = try post(server, messagesBody(), headers: [("x-api-key", "k")])
            #expect(response.status == 400)
            #expect(try response.json()["error"]?["type"] == .string("invalid_request_error"))
        }
    }

    @Test(arguments: [
        ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens: Field required"),
        ("{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required"),
        ("{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model: Field required"),
        (
            "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
            "messages.0.role: Input should be 'user' or 'assistant'"
        ),
        (
            "{\"model\":\"m\",\"max_tokens\":5,\"temperature\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "temperature: Input should be less than or equal to 1"
        ),
        (
            "{\"model\":\"m\",\"max_tokens\":5,\"system\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "system: Input should be a valid string or a list of text blocks"
        ),
        (
            "{\"model\":\"m\",\"max_tokens\":5,\"seed\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "seed: Extra inputs are not permitted"
        ),
    ])
    func invalidRequestsAre400(_ body: String, _ message: String) async throws {
        try await withMockServer { server in
            let response = try post(server, body)
            #expect(response.status == 400)
            let json = try response.json()
            #expect(json["type"] == .string("error"))
            #expect(json["error"]?["type"] == .string("invalid_request_error"))
            #expect(json["error"]?["message"] == .string(message))
            #expect(json["request_id"]?.stringValue == response.header("request-id"))
        }
    }

    @Test func unknownModelsAre404WhenModelsAreConfigured() async throws {
        try await withMockServer({ $0.models = ["claude-sonnet-4-5"] }) { server in
            #expect(try post(server, messagesBody()).status == 200)
            let response = try post(server, messagesBody(model: "claude-nope"))
            #expect(response.status == 404)
            #expect(try response.json()["error"]?["type"] == .string("not_found_error"))
        }
    }

    @Test func aStreamHasNamedEventsInStrictOrder() async throws {
        try await withMockServer({ $0.replyTokens = 4 }) { server in
            let response = try post(server, messagesBody("stream me", extra: ",\"stream\":true"))
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("text/event-stream") == true)
            #expect(response.header("request-id")?.hasPrefix("req_") == true)
            let events = try events(response)
            #expect(
                events.map(\.0)
                    == ["message_start", "content_block_start", "ping"]
                    + Array(repeating: "content_block_delta", count: 4)
                    + ["content_block_stop", "message_delta", "message_stop"])
            for (name, data) in events { #expect(data["type"] == .string(name)) }
            let start = events[0].1["message"]
            #expect(start?["content"] == .array([]))
            #expect(start?["stop_reason"] == .null)
            #expect(start?["model"] == .string("claude-sonnet-4-5"))
            let promptTokens = MockReplies.promptTokens(for: [.init(role: "user", content: "stream me")])
            #expect(start?["usage"]?["input_tokens"] == .int(Int64(promptTokens)))
            let text = events[3...6].map { $0.1["delta"]?["text"]?.stringValue ?? "?" }.joined()
            #expect(text == MockReplies.text(for: [.init(role: "user", content: "stream me")], tokens: 4))
            #expect(events[3...6].allSatisfy { $0.1["delta"]?["type"] == .string("text_delta") })
            let delta = events[8].1
            #expect(delta["delta"]?["stop_reason"] == .string("end_turn"))
            #expect(delta["usage"]?["output_tokens"] == .int(4))
        }
    }

    @Test func aRateLimitIsA429WithAnthropicHeaders() async throws {
        try await withMockServer({ $0.rateLimit = .init(requestsPerSecond: 0.01, burst: 1) }) { server in
            let first = try post(server, messagesBody())
            #expect(first.status == 200)
            #expect(first.header("anthropic-ratelimit-requests-limit") == "1")
            let limited = try post(server, messagesBody())
            #expect(limited.status == 429)
            let json = try limited.json()
            #expect(json["error"]?["type"] == .string("rate_limit_error"))
            #expect(Int(limited.header("retry-after") ?? "") ?? 0 >= 1)
            #expect(limited.header("anthropic-ratelimit-requests-remaining") == "0")
            let reset = try #require(limited.header("anthropic-ratelimit-requests-reset"))
            let date = try #require(ISO8601DateFormatter().date(from: reset))
            #expect(date.timeIntervalSinceNow > 0)
            #expect(server.stats.count("POST /v1/messages", status: 429) == 1)
        }
    }

    @Test func overloadIs529AndServerErrorsAre500() async throws {
        try await withMockServer({ $0.faults.overloaded = 1 }) { server in
            let response = try post(server, messagesBody())
            #expect(response.status == 529)
            #expect(try response.json()["error"]?["type"] == .string("overloaded_error"))
        }
        try await withMockServer({ $0.faults.serverErrors = 1 }) { server in
            let response = try post(server, messagesBody())
            #expect(response.status == 500)
            #expect(try response.json()["error"]?["type"] == .string("api_error"))
        }
    }

    @Test func aStreamErrorIsAnErrorEventAfterA200() async throws {
        try await withMockServer({ $0.faults.streamErrors = 1 }) { server in
            let response = try post(server, messagesBody(extra: ",\"stream\":true"))
            #expect(response.status == 200)
            let events = try events(response)
            #expect(events.first?.0 == "message_start")
            #expect(events.last?.0 == "error")
            #expect(events.last?.1["error"]?["type"] == .string("overloaded_error"))
            #expect(!events.map(\.0).contains("message_stop"))
        }
    }

    /// A body whose system prompt is `blocks` (JSON text blocks), with `extra` fields.
    func cachedBody(system blocks: String, prompt: String = "q", extra: String = "") -> String {
        messagesBody(prompt, maxTokens: 8, extra: ",\"system\":[\(blocks)]" + extra)
    }

    /// A text block of about `tokens` tokens, with `cache_control` when `ttl` is given.
    func block(_ word: String, tokens: Int, ttl: String? = nil) -> String {
        let text = String(repeating: word, count: tokens * 4 / word.utf8.count)
        let control = ttl.map {
            $0.isEmpty
                ? ",\"cache_control\":{\"type\":\"ephemeral\"}"
                : ",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"\($0)\"}"
        }
        return "{\"type\":\"text\",\"text\":\"\(text)\"\(control ?? "")}"
    }

    func usage(_ server: MockProviderServer, _ body: String) throws -> JSONValue {
        let response = try post(server, body)
        try #require(response.status == 200, "\(response.text)")
        return try #require(try response.json()["usage"])
    }

    @Test func promptCachingIsOptInWithCacheControl() async throws {
        try await withMockServer { server in
            // Without cache_control a long prompt is never cached, however often it comes.
            let plain = cachedBody(system: block("rules ", tokens: 1500))
            for _ in 0..<2 {
                let usage = try usage(server, plain)
                #expect(usage["cache_read_input_tokens"] == .int(0))
                #expect(usage["cache_creation_input_tokens"] == .int(0))
            }
            // With it, the first call writes the prefix and the next reads it.
            let marked = cachedBody(system: block("policy ", tokens: 1500, ttl: ""))
            let first = try usage(server, marked)
            let written = try #require(first["cache_creation_input_tokens"]?.intValue)
            #expect(written >= 1500)
            #expect(first["cache_read_input_tokens"] == .int(0))
            #expect(first["cache_creation"]?["ephemeral_5m_input_tokens"] == .int(written))
            #expect(first["cache_creation"]?["ephemeral_1h_input_tokens"] == .int(0))
            let total = written + (first["input_tokens"]?.intValue ?? 0)
            let prompt = MockReplies.promptTokens(for: [
                .init(role: "system", content: String(repeating: "policy ", count: 1500 * 4 / 7)),
                .init(role: "user", content: "q"),
            ])
            #expect(total == Int64(prompt))
            let second = try usage(server, marked)
            #expect(second["cache_read_input_tokens"] == .int(written))
            #expect(second["cache_creation_input_tokens"] == .int(0))
            #expect(second["input_tokens"] == first["input_tokens"])
            // Another question after the same cached system prompt reads it too.
            let other = try usage(server, cachedBody(system: block("policy ", tokens: 1500, ttl: ""), prompt: "r"))
            #expect(other["cache_read_input_tokens"] == .int(written))
        }
    }

    @Test func breakpointsSetTheCachedPrefixAndItsTTL() async throws {
        try await withMockServer { server in
            // A one-hour breakpoint is written as one-hour tokens.
            let hour = try usage(server, cachedBody(system: block("hourly ", tokens: 1200, ttl: "1h")))
            let written = try #require(hour["cache_creation_input_tokens"]?.intValue)
            #expect(written > 0 && hour["cache_creation"]?["ephemeral_1h_input_tokens"] == .int(written))
            // A short prefix (under 1024 tokens) is not cached.
            let short = cachedBody(system: block("brief ", tokens: 500, ttl: ""))
            _ = try usage(server, short)
            #expect(try usage(server, short)["cache_read_input_tokens"] == .int(0))
            // Top-level cache_control caches the whole prompt. The next turn, with
            // its breakpoint at the new end, looks back and reads what the first wrote.
            let long = String(repeating: "turn ", count: 1000)
            let firstTurn =
                #"{"model":"m","max_tokens":4,"cache_control":{"type":"ephemeral"},"messages":["#
                + #"{"role":"user","content":[{"type":"text","text":"\#(long)"}]}]}"#
            let whole = try usage(server, firstTurn)
            let prefix = try #require(whole["cache_creation_input_tokens"]?.intValue)
            #expect(prefix >= 1250)
            #expect(whole["input_tokens"] == .int(0))
            let nextTurn =
                #"{"model":"m","max_tokens":4,"cache_control":{"type":"ephemeral"},"messages":["#
                + #"{"role":"user","content":[{"type":"text","text":"\#(long)"}]},"#
                + #"{"role":"assistant","content":"ok"},{"role":"user","content":"more"}]}"#
            let next = try usage(server, nextTurn)
            #expect(next["cache_read_input_tokens"] == .int(prefix))
            let nextWritten = try #require(next["cache_creation_input_tokens"]?.intValue)
            #expect(nextWritten == 5 + 5)  // "ok" and "more": 4 + 1 tokens each
            #expect(next["input_tokens"] == .int(0))
            // The same conversation again reads all of it.
            let again = try usage(server, nextTurn)
            #expect(again["cache_read_input_tokens"] == .int(prefix + nextWritten))
            #expect(again["cache_creation_input_tokens"] == .int(0))
        }
    }

    @Test(arguments: [
        ("{\"type\":\"persistent\"}", "system.0.cache_control.type: Input should be 'ephemeral'"),
        ("{\"type\":\"ephemeral\",\"ttl\":\"2h\"}", "system.0.cache_control.ttl: Input should be '5m' or '1h'"),
    ])
    func badCacheControlIs400(_ control: String, _ message: String) async throws {
        try await withMockServer { server in
            let body = cachedBody(system: "{\"type\":\"text\",\"text\":\"x\",\"cache_control\":\(control)}")
            let response = try post(server, body)
            #expect(response.status == 400)
            #expect(try response.json()["error"]?["message"] == .string(message))
        }
    }

    @Test func moreThanFourBreakpointsAre400() async throws {
        try await withMockServer { server in
            let blocks = Array(repeating: block("x", tokens: 1, ttl: ""), count: 5).joined(separator: ",")
            let response = try post(server, cachedBody(system: blocks))
            #expect(response.status == 400)
            #expect(
                try response.json()["error"]?["message"]
                    == .string("A maximum of 4 blocks with cache_control may be provided. Found 5."))
        }
    }

    @Test func resetTimesAreRFC3339() {
        #expect(AnthropicSurface.rfc3339(unixTime: 0) == "1970-01-01T00:00:00Z")
        #expect(AnthropicSurface.rfc3339(unixTime: 1_755_780_059) == "2025-08-21T12:40:59Z")
        #expect(AnthropicSurface.rfc3339(unixTime: 951_868_800) == "2000-03-01T00:00:00Z")
        #expect(AnthropicSurface.rfc3339(unixTime: 951_782_399) == "2000-02-28T23:59:59Z")
    }
}
