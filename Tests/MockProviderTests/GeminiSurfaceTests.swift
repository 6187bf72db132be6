import LLMQCore
import MockProvider
import Testing

@Suite struct GeminiSurfaceTests {
    static let headers = [("x-goog-api-key", "g-key"), ("content-type", "application/json")]
    static let body =
        #"{"systemInstruction":{"parts":[{"text":"Be terse."}]},"contents":[{"role":"user","parts":[{"text":"2+2?"}]}],"#
        + #""generationConfig":{"maxOutputTokens":3,"temperature":0}}"#
    static let messages: [MockReplies.Message] = [
        .init(role: "system", content: "Be terse."), .init(role: "user", content: "2+2?"),
    ]

    func post(
        _ server: MockProviderServer, _ path: String, body: String = body, headers: [(String, String)] = headers
    ) throws -> RawHTTPResponse {
        try RawHTTPConnection(port: server.port).request(path: path, body: body, headers: headers)
    }

    @Test(arguments: ["/v1beta/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:generateContent"])
    func generateContentHasCandidatesAndUsage(_ path: String) async throws {
        try await withMockServer { server in
            let response = try post(server, path)
            #expect(response.status == 200)
            let json = try response.json()
            let candidate = try #require(json["candidates"]?[0])
            #expect(candidate["content"]?["role"] == .string("model"))
            #expect(
                candidate["content"]?["parts"]?[0]?["text"] == .string(MockReplies.text(for: Self.messages, tokens: 3)))
            #expect(candidate["finishReason"] == .string("MAX_TOKENS"))
            let prompt = Int64(MockReplies.promptTokens(for: Self.messages))
            #expect(json["usageMetadata"]?["promptTokenCount"] == .int(prompt))
            #expect(json["usageMetadata"]?["candidatesTokenCount"] == .int(3))
            #expect(json["usageMetadata"]?["totalTokenCount"] == .int(prompt + 3))
            #expect(json["modelVersion"] == .string("gemini-2.5-flash"))
            #expect(json["responseId"]?.stringValue?.isEmpty == false)
        }
    }

    @Test func theKeyCanComeFromTheQueryAndABadKeyIsAPIKeyInvalid() async throws {
        try await withMockServer({ $0.apiKey = "g-key" }) { server in
            let path = "/v1beta/models/gemini-2.5-flash:generateContent"
            #expect(try post(server, path + "?key=g-key", headers: []).status == 200)
            let bad = try post(server, path, headers: [("x-goog-api-key", "nope")])
            #expect(bad.status == 400)
            let error = try #require(try bad.json()["error"])
            #expect(error["code"] == .int(400))
            #expect(error["status"] == .string("INVALID_ARGUMENT"))
            #expect(error["details"]?[0]?["reason"] == .string("API_KEY_INVALID"))
        }
    }

    @Test func aStreamHasCumulativeUsageAndFinishReasonOnlyLast() async throws {
        try await withMockServer { server in
            let response = try post(server, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
            #expect(response.status == 200)
            #expect(!response.text.contains("[DONE]"))
            #expect(!response.text.contains("event:"))
            let chunks = try response.events.map { try JSONParser.parse($0) }
            #expect(chunks.count == 3)
            for (index, chunk) in chunks.enumerated() {
                #expect(chunk["usageMetadata"]?["candidatesTokenCount"] == .int(Int64(index + 1)))
                #expect((chunk["candidates"]?[0]?["finishReason"] != nil) == (index == 2))
            }
            let text = chunks.map { $0["candidates"]?[0]?["content"]?["parts"]?[0]?["text"]?.stringValue ?? "?" }
            #expect(text.joined() == MockReplies.text(for: Self.messages, tokens: 3))
        }
    }

    @Test func rateLimitsCarryRetryInfoAndOverloadIs503() async throws {
        let path = "/v1beta/models/gemini-2.5-flash:generateContent"
        try await withMockServer({ $0.rateLimit = .init(requestsPerSecond: 0.01, burst: 1) }) { server in
            #expect(try post(server, path).status == 200)
            let limited = try post(server, path)
            #expect(limited.status == 429)
            let error = try #require(try limited.json()["error"])
            #expect(error["status"] == .string("RESOURCE_EXHAUSTED"))
            let retry = error["details"]?.arrayValue?.first { $0["retryDelay"] != nil }
            #expect(retry?["retryDelay"]?.stringValue?.hasSuffix("s") == true)
        }
        try await withMockServer({ $0.faults.overloaded = 1 }) { server in
            let response = try post(server, path)
            #expect(response.status == 503)
            #expect(try response.json()["error"]?["status"] == .string("UNAVAILABLE"))
        }
    }
}
