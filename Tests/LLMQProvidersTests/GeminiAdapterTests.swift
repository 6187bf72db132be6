import LLMQCore
import LLMQProviders
import LLMQTransport
import Testing

@Suite struct GeminiAdapterTests {
    let adapter = GeminiAdapter(baseURL: "http://127.0.0.1:9")
    let route = ModelRouter.route("gemini/gemini-2.5-flash")!

    @Test func mapsMessagesAndGenerationConfig() throws {
        let canonical = try JSONParser.parse(
            #"{"max_tokens":256,"messages":[{"content":"Answer in JSON.","role":"system"},{"content":"2+2?","role":"user"},"#
                + #"{"content":"4","role":"assistant"},{"content":"and 3+3?","role":"user"}],"model":"gemini/gemini-2.5-flash","#
                + #""reasoning_effort":"minimal","response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"}}},"#
                + #""seed":7,"stop":["x"],"temperature":0}"#)
        let request = try adapter.makeRequest(canonical, route: route, key: "AIza", stream: true)
        #expect(request.url == "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        #expect(request.headers["x-goog-api-key"] == "AIza")
        let body = try JSONParser.parse(request.body)
        #expect(
            body["systemInstruction"] == .object(["parts": .array([.object(["text": .string("Answer in JSON.")])])]))
        #expect(
            body["contents"]?.arrayValue?.map { $0["role"] } == [.string("user"), .string("model"), .string("user")])
        let config = try #require(body["generationConfig"])
        #expect(config["maxOutputTokens"] == .int(256))
        #expect(config["temperature"] == .int(0))
        #expect(config["seed"] == .int(7))
        #expect(config["stopSequences"] == .array([.string("x")]))
        #expect(config["responseMimeType"] == .string("application/json"))
        #expect(config["responseJsonSchema"] == .object(["type": .string("object")]))
        #expect(config["thinkingConfig"] == .object(["thinkingBudget": .int(0)]))
    }

    @Test func parsesAnAnswerWithThoughtsAndCachedTokens() throws {
        let body = #"""
            {"candidates":[{"content":{"role":"model","parts":[{"text":"thinking…","thought":true},{"text":"{\"a\":4}"}]},"finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":17,"totalTokenCount":22,"cachedContentTokenCount":0},
             "modelVersion":"gemini-2.5-flash","responseId":"FugfaZ"}
            """#
        let answer = try adapter.parse(HTTPResponse(status: 200, body: Array(body.utf8))).get()
        #expect(answer.text == #"{"a":4}"#)
        #expect(answer.finishReason == "stop")
        #expect(answer.usage == Usage(inputTokens: 3, outputTokens: 19, reasoningTokens: 17))
        #expect(answer.model == "gemini-2.5-flash")
        let blocked = try adapter.parse(
            HTTPResponse(status: 200, body: Array(#"{"promptFeedback":{"blockReason":"SAFETY"}}"#.utf8))
        ).get()
        #expect(blocked.finishReason == "content_filter")
        #expect(blocked.text == "")
    }

    @Test func readsTheRetryDelayOfA429() {
        let body = #"""
            {"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED",
             "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
                        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"27s"}]}}
            """#
        let response = HTTPResponse(status: 429, body: Array(body.utf8))
        #expect(
            adapter.parse(response)
                == .failure(
                    ProviderFailure(
                        status: 429, type: "RESOURCE_EXHAUSTED", message: "You exceeded your current quota",
                        retryAfterMilliseconds: 27_000)))
        #expect(adapter.rateLimits(response).retryAfterMilliseconds == 27_000)
    }

    @Test func reassemblesAStreamThatJustEnds() throws {
        var accumulator = adapter.makeStreamAccumulator()
        let first = try accumulator.consume(
            SSEEvent(
                data:
                    #"{"candidates":[{"content":{"parts":[{"text":"Okay, "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6},"modelVersion":"gemini-2.5-flash","responseId":"IZI2"}"#
            ))
        #expect(!first)
        #expect(throws: ProviderFailure.self) { try accumulator.answer() }
        let last = try accumulator.consume(
            SSEEvent(
                data:
                    #"{"candidates":[{"content":{"parts":[{"text":"done."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":5,"totalTokenCount":9},"modelVersion":"gemini-2.5-flash","responseId":"IZI2"}"#
            ))
        #expect(last)
        let answer = try accumulator.answer()
        #expect(answer.text == "Okay, done.")
        #expect(answer.usage == Usage(inputTokens: 4, outputTokens: 5))
    }

    @Test func refusesUnknownFields() throws {
        let canonical = try JSONParser.parse(
            #"{"logit_bias":{},"messages":[{"content":"x","role":"user"}],"model":"m"}"#)
        #expect(throws: ProviderFailure.self) {
            try adapter.makeRequest(canonical, route: route, key: "", stream: false)
        }
    }
}
