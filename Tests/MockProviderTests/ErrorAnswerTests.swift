import LLMQCore
import MockProvider
import Testing

/// A request the server must refuse, and how.
struct RefusedRequest: Sendable, CustomTestStringConvertible {
    var name: String
    var body: String
    var status = 400
    var param: String?
    var code: String?
    var messageContains = ""

    var testDescription: String { name }
}

/// Checks `{"error":{"message","type","param","code"}}` with all four keys and returns the error.
func errorObject(_ response: RawHTTPResponse) throws -> JSONObject {
    #expect(response.header("content-type") == "application/json")
    #expect(response.header("x-request-id")?.hasPrefix("req_") == true)
    let json = try response.json()
    #expect(json.objectValue?.keys == ["error"])
    let error = try #require(json["error"]?.objectValue)
    #expect(error.keys == ["message", "type", "param", "code"])
    #expect(error["message"]?.stringValue?.isEmpty == false)
    return error
}

@Suite struct ErrorAnswerTests {
    static let refused: [RefusedRequest] = [
        .init(name: "bad JSON", body: "{\"model\":", messageContains: "could not parse the JSON body"),
        .init(name: "empty body", body: "", messageContains: "could not parse the JSON body"),
        .init(name: "not an object", body: "[1]", messageContains: "could not parse the JSON body"),
        .init(
            name: "missing model", body: "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", param: "model",
            code: "missing_required_parameter"),
        .init(
            name: "empty model", body: "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            param: "model", code: "empty_string"),
        .init(
            name: "model not a string", body: "{\"model\":4,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            param: "model", code: "invalid_type"),
        .init(
            name: "missing messages", body: "{\"model\":\"gpt-4o-mini\"}", param: "messages",
            code: "missing_required_parameter"),
        .init(
            name: "empty messages", body: "{\"model\":\"gpt-4o-mini\",\"messages\":[]}", param: "messages",
            code: "empty_array"),
        .init(
            name: "messages not an array", body: "{\"model\":\"gpt-4o-mini\",\"messages\":\"hi\"}", param: "messages",
            code: "invalid_type"),
        .init(
            name: "unknown role",
            body: "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
            param: "messages[0].role", code: "invalid_value", messageContains: "Invalid value: 'robot'"),
        .init(
            name: "missing content", body: "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\"}]}",
            param: "messages[0].content", code: "missing_required_parameter"),
        .init(
            name: "n too large", body: chatBody(extra: ",\"n\":129"), param: "n", code: "integer_above_max_value"),
        .init(
            name: "max_tokens zero", body: chatBody(extra: ",\"max_tokens\":0"), param: "max_tokens",
            code: "integer_below_min_value"),
        .init(
            name: "temperature too high", body: chatBody(extra: ",\"temperature\":2.5"), param: "temperature",
            code: "decimal_above_max_value"),
        .init(
            name: "stream_options without stream",
            body: chatBody(extra: ",\"stream_options\":{\"include_usage\":true}"), param: "stream_options",
            code: "invalid_value", messageContains: "only allowed when 'stream' is enabled"),
        .init(
            name: "stream_options with stream false",
            body: chatBody(extra: ",\"stream\":false,\"stream_options\":{\"include_usage\":true}"),
            param: "stream_options", code: "invalid_value"),
        .init(
            name: "unknown field", body: chatBody(extra: ",\"temprature\":1"),
            messageContains: "Unrecognized request argument supplied: temprature"),
    ]

    @Test(arguments: refused)
    func invalidRequestsGet400WithTheAPIsBody(_ refused: RefusedRequest) async throws {
        try await withMockServer { server in
            let response = try RawHTTPConnection(port: server.port).request(body: refused.body)
            #expect(response.status == refused.status)
            let error = try errorObject(response)
            #expect(error["type"] == .string("invalid_request_error"))
            #expect(error["param"] == (refused.param.map { .string($0) } ?? .null))
            #expect(error["code"] == (refused.code.map { .string($0) } ?? .null))
            if !refused.messageContains.isEmpty {
                #expect(error["message"]?.stringValue?.contains(refused.messageContains) == true)
            }
            if refused.messageContains.isEmpty, let param = refused.param {
                #expect(error["message"]?.stringValue?.contains("'\(param)'") == true)
            }
            #expect(server.stats.count("POST /v1/chat/completions", status: refused.status) == 1)
        }
    }

    @Test(arguments: [
        ("no header", [(String, String)]()),
        ("not bearer", [("authorization", "Basic abc")]),
        ("empty key", [("authorization", "Bearer ")]),
    ])
    func missingKeyGets401(_ name: String, headers: [(String, String)]) async throws {
        try await withMockServer { server in
            let response = try RawHTTPConnection(port: server.port).request(body: chatBody(), headers: headers)
            #expect(response.status == 401)
            let error = try errorObject(response)
            #expect(error["code"] == .string("invalid_api_key"))
            #expect(error["type"] == .string("invalid_request_error"))
            #expect(error["param"] == .null)
        }
    }

    @Test func configuredKeyIsTheOnlyOneAcceptedAndNeverEchoed() async throws {
        try await withMockServer({ $0.apiKey = "sk-right-key" }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let wrong = try connection.request(
                body: chatBody(), headers: [("authorization", "Bearer sk-wrong-key-123456")])
            #expect(wrong.status == 401)
            #expect(try errorObject(wrong)["code"] == .string("invalid_api_key"))
            #expect(!wrong.text.contains("sk-wrong") && !wrong.text.contains("123456"))
            let right = try connection.request(body: chatBody(), headers: [("authorization", "Bearer sk-right-key")])
            #expect(right.status == 200)
        }
    }

    @Test func unknownModelGets404ModelNotFound() async throws {
        try await withMockServer({ $0.models = ["gpt-4o-mini"] }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(body: chatBody(model: "gpt-9-imaginary"))
            #expect(response.status == 404)
            let error = try errorObject(response)
            #expect(error["code"] == .string("model_not_found"))
            #expect(error["type"] == .string("invalid_request_error"))
            #expect(error["message"]?.stringValue?.contains("gpt-9-imaginary") == true)
            #expect(try connection.request(body: chatBody(model: "gpt-4o-mini")).status == 200)
        }
    }

    @Test func unknownPathGets404InvalidURL() async throws {
        try await withMockServer { server in
            let response = try RawHTTPConnection(port: server.port).request(path: "/v1/nope", body: "{}")
            #expect(response.status == 404)
            #expect(try errorObject(response)["message"] == .string("Invalid URL (POST /v1/nope)"))
            #expect(server.stats.count("unrouted", status: 404) == 1)
        }
    }

    @Test func oversizedBodyGets413() async throws {
        try await withMockServer({ $0.maximumBodyBytes = 1000 }) { server in
            let response = try RawHTTPConnection(port: server.port).request(
                body: chatBody(String(repeating: "x", count: 2000)))
            #expect(response.status == 413)
            #expect(response.header("connection") == "close")
            _ = try errorObject(response)
        }
    }
}
