import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import Testing

@Suite struct OpenAIAdapterTests {
    let canonical = try! JSONParser.parse(
        #"{"max_tokens":64,"messages":[{"content":"2+2?","role":"user"}],"model":"gpt-4o-mini","temperature":0}"#)
    let route = ModelRouter.route("gpt-4o-mini")!

    func body(_ request: HTTPRequest) throws -> JSONValue { try JSONParser.parse(request.body) }

    @Test func openAIGetsMaxCompletionTokensAndTheKeyAsBearer() throws {
        let adapter = OpenAIAdapter(baseURL: "http://127.0.0.1:9/v1/")
        let request = try adapter.makeRequest(canonical, route: route, key: "sk-test", stream: false)
        #expect(request.method == .post)
        #expect(request.url == "http://127.0.0.1:9/v1/chat/completions")
        #expect(request.headers["authorization"] == "Bearer sk-test")
        #expect(request.headers["content-type"] == "application/json")
        let sent = try body(request)
        #expect(sent["max_completion_tokens"] == .int(64))
        #expect(sent["max_tokens"] == nil)
        #expect(sent["stream"] == nil)
        #expect(!request.description.contains("sk-test"))
    }

    @Test func togetherKeepsMaxTokensSendsItsModelNameAndStreamsWithUsage() throws {
        let adapter = OpenAIAdapter(provider: .together, baseURL: "https://api.together.xyz/v1")
        let route = try #require(ModelRouter.route("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"))
        let request = try adapter.makeRequest(canonical, route: route, key: "k", stream: true)
        let sent = try body(request)
        #expect(sent["model"] == .string("meta-llama/Llama-3.3-70B-Instruct-Turbo"))
        #expect(sent["max_tokens"] == .int(64))
        #expect(sent["stream"] == .bool(true))
        #expect(sent["stream_options"]?["include_usage"] == .bool(true))
    }

    @Test func parsesAnAnswerWithItsUsage() throws {
        let body = #"""
            {"id":"chatcmpl-abc","object":"chat.completion","created":1741570283,"model":"gpt-4o-mini-2024-07-18",
             "choices":[{"index":0,"message":{"role":"assistant","content":"4","refusal":null,"annotations":[]},
                         "logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":1117,"completion_tokens":6,"total_tokens":1123,
                      "prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},
                      "completion_tokens_details":{"reasoning_tokens":0}}}
            """#
        let answer = try OpenAIAdapter(baseURL: "http://x/v1")
            .parse(HTTPResponse(status: 200, body: Array(body.utf8))).get()
        #expect(answer.text == "4")
        #expect(answer.finishReason == "stop")
        #expect(answer.model == "gpt-4o-mini-2024-07-18")
        #expect(answer.usage == Usage(inputTokens: 93, cachedInputTokens: 1024, outputTokens: 6))
        #expect(answer.raw == Array(body.utf8))
    }

    @Test func parsesTheProvidersErrorAndItsRetryHint() {
        let body = #"""
            {"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM)","type":"tokens","param":null,"code":"rate_limit_exceeded"}}
            """#
        let response = HTTPResponse(
            status: 429, headers: ["retry-after": "1", "retry-after-ms": "644"], body: Array(body.utf8))
        let adapter = OpenAIAdapter(baseURL: "http://x/v1")
        guard case .failure(let failure) = adapter.parse(response) else {
            Issue.record("a 429 parsed as an answer")
            return
        }
        #expect(failure.status == 429)
        #expect(failure.type == "rate_limit_exceeded")
        #expect(failure.message.hasPrefix("Rate limit reached"))
        #expect(failure.retryAfterMilliseconds == 644)
        // vLLM's integer code and a plain-text body.
        let vllm = adapter.parse(
            HTTPResponse(
                status: 400,
                body: Array(#"{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}"#.utf8)))
        #expect(vllm == .failure(ProviderFailure(status: 400, type: "BadRequestError", message: "bad")))
        let plain = adapter.parse(HTTPResponse(status: 502, body: Array("Bad Gateway\n".utf8)))
        #expect(plain == .failure(ProviderFailure(status: 502, type: nil, message: "Bad Gateway")))
    }

    @Test func readsRateLimitHeaders() {
        let headers: HTTPHeaders = [
            "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-tokens": "100",
            "x-ratelimit-reset-tokens": "6m0s",
        ]
        let info = OpenAIAdapter(baseURL: "http://x/v1").rateLimits(HTTPResponse(status: 200, headers: headers))
        #expect(info.remainingRequests == 0)
        #expect(info.remainingTokens == 100)
        #expect(info.resetRequestsMilliseconds == 1_000)
        #expect(info.resetTokensMilliseconds == 360_000)
        #expect(info.retryAfterMilliseconds == nil)
        #expect(info.pauseMilliseconds == 1_000)
    }

    @Test(arguments: [
        ("12ms", Int64(12)), ("1s", 1_000), ("6m0s", 360_000), ("1h2m3s", 3_723_000), ("1.5s", 1_500),
        ("250us", 1), ("0s", 0), ("0", 0), ("2m30.5s", 150_500),
    ])
    func goDurations(_ text: String, _ milliseconds: Int64) {
        #expect(RateLimitHeaders.goDurationMilliseconds(text) == milliseconds)
    }

    @Test(arguments: ["", "s", "10x", "1h-2m", "abc"])
    func notGoDurations(_ text: String) {
        #expect(RateLimitHeaders.goDurationMilliseconds(text) == nil)
    }

    @Test func retryAfterAsSecondsOrAnHTTPDate() {
        #expect(RateLimitHeaders.retryAfterMilliseconds(["retry-after": "2.5"]) == 2_500)
        let now = Date(timeIntervalSince1970: 1_000_000)
        let later = "Mon, 12 Jan 1970 13:47:10 GMT"  // 1,000,030 s after the epoch
        #expect(RateLimitHeaders.retryAfterMilliseconds(["retry-after": later], now: now) == 30_000)
        #expect(RateLimitHeaders.retryAfterMilliseconds(["retry-after": "soon"]) == nil)
    }

    func events(_ lines: [String]) -> [SSEEvent] { lines.map { SSEEvent(data: $0) } }

    @Test func reassemblesAStreamWithUsage() throws {
        var accumulator = OpenAIAdapter(baseURL: "http://x/v1").makeStreamAccumulator()
        let stream = events([
            #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}"#,
            #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}}}"#,
            "[DONE]",
        ])
        var complete = false
        for event in stream { complete = try accumulator.consume(event) }
        #expect(complete)
        let answer = try accumulator.answer()
        #expect(answer.text == "Hello")
        #expect(answer.finishReason == "length")
        #expect(answer.usage == Usage(inputTokens: 9, outputTokens: 2))
        #expect(answer.model == "gpt-4o-mini")
    }

    @Test func aStreamCutShortOrCarryingAnErrorFails() throws {
        var cut = OpenAIAdapter(baseURL: "http://x/v1").makeStreamAccumulator()
        _ = try cut.consume(
            SSEEvent(data: #"{"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#))
        #expect(throws: ProviderFailure.self) { try cut.answer() }

        var failing = OpenAIAdapter(baseURL: "http://x/v1").makeStreamAccumulator()
        let error = #expect(throws: ProviderFailure.self) {
            _ = try failing.consume(
                SSEEvent(data: #"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#))
        }
        #expect(error?.type == "server_error")
        #expect(error?.message == "overloaded")
    }
}
