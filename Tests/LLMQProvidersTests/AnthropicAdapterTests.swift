import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import Testing

@Suite struct AnthropicAdapterTests {
    let adapter = AnthropicAdapter(baseURL: "http://127.0.0.1:9/")
    let route = ModelRouter.route("sonnet")!

    func request(_ canonical: String, stream: Bool = false) throws -> HTTPRequest {
        try adapter.makeRequest(try JSONParser.parse(canonical), route: route, key: "sk-ant", stream: stream)
    }

    @Test func mapsSystemMessagesMaxTokensStopAndHeaders() throws {
        let sent = try request(
            #"{"messages":[{"content":"Be terse.","role":"system"},{"content":"2+2?","role":"user"}],"#
                + #""model":"claude-sonnet-4-5","stop":"END","temperature":0.5}"#, stream: true)
        #expect(sent.url == "http://127.0.0.1:9/v1/messages")
        #expect(sent.headers["x-api-key"] == "sk-ant")
        #expect(sent.headers["anthropic-version"] == "2023-06-01")
        let body = try JSONParser.parse(sent.body)
        #expect(body["system"] == .string("Be terse."))
        #expect(
            body["messages"]
                == .array([
                    .object([
                        "role": .string("user"),
                        "content": .array([.object(["type": .string("text"), "text": .string("2+2?")])]),
                    ])
                ]))
        #expect(body["max_tokens"] == .int(4096))
        #expect(body["stop_sequences"] == .array([.string("END")]))
        #expect(body["temperature"] == .double(0.5))
        #expect(body["stream"] == .bool(true))
        #expect(body["model"] == .string("claude-sonnet-4-5"))
    }

    @Test(arguments: [
        #"{"messages":[{"content":"x","role":"user"}],"model":"m","seed":7}"#,
        #"{"messages":[{"content":"x","role":"user"}],"model":"m","temperature":1.5}"#,
        #"{"messages":[{"content":"x","role":"user"}],"model":"m","response_format":{"type":"json_object"}}"#,
        #"{"messages":[{"content":"x","role":"tool"}],"model":"m"}"#,
    ])
    func refusesWhatAnthropicCannotDo(_ canonical: String) {
        #expect(throws: ProviderFailure.self) { try request(canonical) }
    }

    @Test func parsesAMessageAndItsDisjointUsage() throws {
        let body = #"""
            {"id":"msg_01X","type":"message","role":"assistant","model":"claude-sonnet-4-5",
             "content":[{"type":"text","text":"Hello"},{"type":"text","text":"!"}],"stop_reason":"max_tokens","stop_sequence":null,
             "usage":{"input_tokens":12,"output_tokens":6,"cache_creation_input_tokens":2048,"cache_read_input_tokens":0}}
            """#
        let answer = try adapter.parse(HTTPResponse(status: 200, body: Array(body.utf8))).get()
        #expect(answer.text == "Hello!")
        #expect(answer.finishReason == "length")
        #expect(answer.usage == Usage(inputTokens: 12, cacheWriteTokens: 2048, outputTokens: 6))
    }

    @Test func parsesAnOverloadAndRateLimitHeaders() {
        let body = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        let response = HTTPResponse(
            status: 529,
            headers: [
                "retry-after": "3", "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:10Z",
            ], body: Array(body.utf8))
        #expect(
            adapter.parse(response)
                == .failure(
                    ProviderFailure(
                        status: 529, type: "overloaded_error", message: "Overloaded", retryAfterMilliseconds: 3_000)))
        let info = adapter.rateLimits(response)
        #expect(info.remainingRequests == 0)
        #expect(info.retryAfterMilliseconds == 3_000)
        #expect((info.resetRequestsMilliseconds ?? 0) > 0)
    }

    @Test func reassemblesAStreamWithCumulativeUsageAndPings() throws {
        var accumulator = adapter.makeStreamAccumulator()
        let events: [(String, String)] = [
            (
                "message_start",
                #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048}}}"#
            ),
            (
                "content_block_start",
                #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            ),
            ("ping", #"{"type":"ping"}"#),
            (
                "content_block_delta",
                #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#
            ),
            (
                "content_block_delta",
                #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#
            ),
            ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            (
                "message_delta",
                #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#
            ),
            ("message_stop", #"{"type":"message_stop"}"#),
        ]
        var complete = false
        for (type, data) in events { complete = try accumulator.consume(SSEEvent(type: type, data: data)) }
        #expect(complete)
        let answer = try accumulator.answer()
        #expect(answer.text == "Hello")
        #expect(answer.finishReason == "stop")
        #expect(answer.usage == Usage(inputTokens: 12, cachedInputTokens: 2048, outputTokens: 15))
    }

    @Test func oneHourCacheWritesAreCountedInAnswersAndStreams() throws {
        let usage =
            #"{"input_tokens":12,"output_tokens":6,"cache_creation_input_tokens":2048,"cache_read_input_tokens":0,"#
            + #""cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":2048}}"#
        let body =
            #"{"id":"msg_01X","type":"message","role":"assistant","model":"claude-sonnet-4-5","#
            + #""content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"#
            + #""usage":\#(usage)}"#
        let answer = try adapter.parse(HTTPResponse(status: 200, body: Array(body.utf8))).get()
        #expect(
            answer.usage
                == Usage(inputTokens: 12, cacheWriteTokens: 2048, cacheWriteOneHourTokens: 2048, outputTokens: 6))
        // In a stream the breakdown comes with message_start; message_delta's totals keep it.
        var accumulator = adapter.makeStreamAccumulator()
        let events: [(String, String)] = [
            (
                "message_start",
                #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","#
                    + #""content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"#
                    + #""usage":\#(usage)}}"#
            ),
            (
                "message_delta",
                #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"#
                    + #""usage":{"output_tokens":9,"cache_creation_input_tokens":2048}}"#
            ),
            ("message_stop", #"{"type":"message_stop"}"#),
        ]
        for (type, data) in events { _ = try accumulator.consume(SSEEvent(type: type, data: data)) }
        #expect(
            try accumulator.answer().usage
                == Usage(inputTokens: 12, cacheWriteTokens: 2048, cacheWriteOneHourTokens: 2048, outputTokens: 9))
    }

    @Test func anErrorEventAfterA200Fails() {
        var accumulator = adapter.makeStreamAccumulator()
        let error = #expect(throws: ProviderFailure.self) {
            _ = try accumulator.consume(
                SSEEvent(
                    type: "error", data: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                ))
        }
        #expect(error?.type == "overloaded_error")
        #expect(throws: ProviderFailure.self) { try accumulator.answer() }
    }
}
