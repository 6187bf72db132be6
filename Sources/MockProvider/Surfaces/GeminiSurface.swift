import LLMQCore
import NIOCore
import NIOHTTP1

/// Gemini's `generateContent` and `streamGenerateContent` (`PROVIDERS.md` §5), under
/// both `/v1beta/` and `/v1/`. Paths are told apart from OpenAI's by their shape
/// (`models/{model}:verb`); the key comes from `x-goog-api-key` or `?key=`.
///
/// The reply comes from `MockReplies` with `systemInstruction` first as a `system`
/// message and each content's role (`model` read as `assistant`, a missing role as
/// `user`) with its parts' text joined; with `responseMimeType` `application/json`
/// or `text/x.enum` it comes from `StructuredReply` (see `GeminiRequest`). Errors
/// are google.rpc Status bodies.
final class GeminiSurface: MockSurface {
    static let generate = 0
    static let stream = 1

    let endpointNames = [
        "POST /v1beta/models/{model}:generateContent", "POST /v1beta/models/{model}:streamGenerateContent",
    ]
    let configuration: MockProviderServer.Configuration

    init(configuration: MockProviderServer.Configuration) {
        self.configuration = configuration
    }

    /// The model and verb of `/v1beta/models/{model}:{verb}` or `/v1/models/{model}:{verb}`.
    static func split(_ path: Substring) -> (model: Substring, verb: Substring)? {
        let rest: Substring
        if path.hasPrefix("/v1beta/models/") {
            rest = path.dropFirst("/v1beta/models/".count)
        } else if path.hasPrefix("/v1/models/") {
            rest = path.dropFirst("/v1/models/".count)
        } else {
            return nil
        }
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let model = rest[..<colon]
        guard !model.isEmpty, !model.contains("/") else { return nil }
        return (model, rest[rest.index(after: colon)...])
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        guard method == .POST, let (_, verb) = Self.split(path) else { return nil }
        switch verb {
        case "generateContent": return Self.generate
        case "streamGenerateContent": return Self.stream
        default: return nil
        }
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        if let failure = authenticate(request) { return .respond(error(failure, context: context)) }
        let model = String(Self.split(request.path)?.model ?? "")
        let parsed: GeminiRequest
        do {
            parsed = try GeminiRequest(request.body, configuration: configuration)
        } catch {
            return .respond(self.error(error, context: context))
        }
        if let models = configuration.models, !models.contains(model) {
            return .respond(
                error(
                    GeminiError(
                        code: 404, status: "NOT_FOUND",
                        message:
                            "models/\(model) is not found for API version v1beta, or is not supported for "
                            + "generateContent."),
                    context: context))
        }
        let sse = endpoint == Self.stream && Self.queryValue(request.query, "alt") == "sse"
        let array = endpoint == Self.stream && !sse
        return .call(
            MockCall(
                model: model, tokenCost: parsed.digest.tokens + parsed.completionTokens,
                completionTokens: parsed.completionTokens, isStream: sse,
                render: { _, context in
                    self.render(parsed, model: model, sse: sse, array: array, context: &context)
                }))
    }

    static func queryValue(_ query: Substring?, _ name: String) -> Substring? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first == Substring(name) { return parts.count > 1 ? parts[1] : "" }
        }
        return nil
    }

    func authenticate(_ request: MockRequest) -> GeminiError? {
        var key = Substring(request.headers.first(name: "x-goog-api-key") ?? "")
        if key.isEmpty { key = Self.queryValue(request.query, "key") ?? "" }
        if key.isEmpty {
            return GeminiError(
                code: 403, status: "PERMISSION_DENIED",
                message:
                    "Method doesn't allow unregistered callers (callers without established identity). Please use "
                    + "API Key or other form of API consumer identity to call this API.")
        }
        if let expected = configuration.apiKey, !key.utf8.elementsEqual(expected.utf8) {
            var failure = GeminiError(
                code: 400, status: "INVALID_ARGUMENT", message: "API key not valid. Please pass a valid API key.")
            failure.details =
                "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\","
                + "\"domain\":\"googleapis.com\",\"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}}]"
            return failure
        }
        return nil
    }

    // MARK: - Answers

    private func render(
        _ request: GeminiRequest, model: String, sse: Bool, array: Bool, context: inout MockRequestContext
    ) -> MockResponse {
        var id = ByteWriter(capacity: 24)
        Base62.write(22, from: &context.generator, to: &id)
        let responseID = String(decoding: id.bytes, as: UTF8.self)
        let pieces =
            request.structured
            ?? MockReplies.words(
                digest: request.digest.hash, seed: request.seed, tokens: request.completionTokens, choice: 0
            ).enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element }
        func chunk(_ text: String, finish: Bool, candidates: Int, to body: inout ByteWriter) {
            body.writeStaticString("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":")
            body.writeJSONString(text)
            body.writeStaticString("}],\"role\":\"model\"}")
            if finish {
                body.writeStaticString(",\"finishReason\":")
                body.writeJSONString(request.finishReason)
            }
            body.writeStaticString(",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":")
            body.writeDecimal(request.digest.tokens)
            body.writeStaticString(",\"candidatesTokenCount\":")
            body.writeDecimal(candidates)
            body.writeStaticString(",\"totalTokenCount\":")
            body.writeDecimal(request.digest.tokens + candidates)
            body.writeStaticString(",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":")
            body.writeDecimal(request.digest.tokens)
            body.writeStaticString("}]},\"modelVersion\":")
            body.writeJSONString(model)
            body.writeStaticString(",\"responseId\":")
            body.writeJSONString(responseID)
            body.writeStaticString("}")
        }
        if sse {
            var frames: [MockResponse.Frame] = []
            for (index, piece) in pieces.enumerated() {
                var frame = ByteWriter(capacity: 400)
                frame.writeStaticString("data: ")
                chunk(piece, finish: index == pieces.count - 1, candidates: index + 1, to: &frame)
                frame.writeStaticString("\n\n")
                frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: true))
            }
            if pieces.isEmpty {
                var frame = ByteWriter(capacity: 400)
                frame.writeStaticString("data: ")
                chunk("", finish: true, candidates: 0, to: &frame)
                frame.writeStaticString("\n\n")
                frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: false))
            }
            return MockResponse(
                status: .ok, headers: [(name: "content-type", value: "text/event-stream")], body: .stream(frames))
        }
        var body = ByteWriter(capacity: 512 + pieces.count * 400)
        if array {
            body.writeStaticString("[")
            for (index, piece) in pieces.enumerated() {
                if index > 0 { body.writeStaticString(",\r\n") }
                chunk(piece, finish: index == pieces.count - 1, candidates: index + 1, to: &body)
            }
            body.writeStaticString("]")
        } else {
            chunk(pieces.joined(), finish: true, candidates: pieces.count, to: &body)
        }
        return MockResponse(
            status: .ok, headers: [(name: "content-type", value: "application/json; charset=UTF-8")],
            body: .full(body.bytes))
    }

    // MARK: - Errors

    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let nanoseconds: Int64
        switch rejection {
        case .bucket(let rejection): nanoseconds = rejection.retryAfterNanoseconds
        case .concurrency(_, let retryAfter, _): nanoseconds = retryAfter
        }
        let seconds = max(1, (nanoseconds + 999_999_999) / 1_000_000_000)
        var failure = GeminiError(
            code: 429, status: "RESOURCE_EXHAUSTED",
            message:
                "You exceeded your current quota, please check your plan and billing details. Please retry in "
                + "\(seconds)s.")
        failure.details =
            "[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaMetric\":"
            + "\"generativelanguage.googleapis.com/generate_content_requests\",\"quotaId\":"
            + "\"GenerateRequestsPerMinutePerProjectPerModel\"}]},"
            + "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"\(seconds)s\"}]"
        return error(failure, context: context)
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        error(fault == .overloaded ? .overloaded : .internal, context: context)
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        var frame = ByteWriter(capacity: 160)
        frame.writeStaticString("data: ")
        GeminiError.internal.write(to: &frame)
        frame.writeStaticString("\n\n")
        return frame.bytes
    }

    func error(_ failure: GeminiError, context: MockRequestContext) -> MockResponse {
        var body = ByteWriter(capacity: 256)
        failure.write(to: &body)
        return MockResponse(
            status: HTTPResponseStatus(statusCode: failure.code),
            headers: [(name: "content-type", value: "application/json; charset=UTF-8")], body: .full(body.bytes))
    }
}

/// A google.rpc Status error: `{"error":{"code","message","status","details"?}}`.
struct GeminiError: Error {
    var code: Int
    var status: String
    var message: String
    /// The `details` array as raw JSON, if any.
    var details: String?

    init(code: Int = 400, status: String = "INVALID_ARGUMENT", message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    static let overloaded = GeminiError(
        code: 503, status: "UNAVAILABLE", message: "The model is overloaded. Please try again later.")
    static let `internal` = GeminiError(
        code: 500, status: "INTERNAL", message: "An internal error has occurred. Please retry or report.")

    func write(to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"error\":{\"code\":")
        buffer.writeDecimal(code)
        buffer.writeStaticString(",\"message\":")
        buffer.writeJSONString(message)
        buffer.writeStaticString(",\"status\":")
        buffer.writeJSONString(status)
        if let details {
            buffer.writeStaticString(",\"details\":")
            buffer.writeString(details)
        }
        buffer.writeStaticString("}}")
    }
}

/// A `GenerateContentRequest` body, validated loosely: `contents` is required and
/// non-empty, roles are `user` or `model`, `generationConfig.maxOutputTokens` ≥ 1
/// and `temperature` 0–2.
///
/// `generationConfig.responseMimeType` `application/json` asks for JSON that fits
/// `responseJsonSchema` or `responseSchema` (the OpenAPI subset), or any object
/// without one; `text/x.enum` for one value of the schema's `enum`, as plain text. A
/// schema with another MIME type is refused, as the API refuses it.
struct GeminiRequest {
    var digest: PromptDigest
    var seed: Int64?
    var completionTokens: Int
    var finishReason: String
    /// The structured reply's pieces, already cut by `maxOutputTokens`; nil for words.
    var structured: [String]?

    init(_ body: ByteBuffer, configuration: MockProviderServer.Configuration) throws(GeminiError) {
        guard let object = body.jsonObject() else {
            throw GeminiError(message: "Invalid JSON payload received. Unexpected token.")
        }
        var digest = PromptDigest()
        if let system = object["systemInstruction"], system != .null {
            guard let parts = system["parts"]?.arrayValue else {
                throw GeminiError(message: "Invalid value at 'system_instruction': parts must be a list")
            }
            digest.add(role: "system", text: MockReplies.messageText(.array(parts)))
        }
        guard let contents = object["contents"]?.arrayValue, !contents.isEmpty else {
            throw GeminiError(message: "* GenerateContentRequest.contents: contents is not specified\n")
        }
        for (index, content) in contents.enumerated() {
            guard let fields = content.objectValue, let parts = fields["parts"]?.arrayValue, !parts.isEmpty else {
                throw GeminiError(
                    message: "* GenerateContentRequest.contents[\(index)].parts: contents.parts must not be empty.\n")
            }
            let role: String
            switch fields["role"] {
            case nil, .null?, .string("user")?: role = "user"
            case .string("model")?: role = "assistant"
            default:
                throw GeminiError(
                    message: "Please use a valid role: user, model. Got \(CanonicalJSON.string(fields["role"]!)).")
            }
            digest.add(role: role, text: MockReplies.messageText(.array(parts)))
        }
        self.digest = digest
        let config = object["generationConfig"]?.objectValue ?? JSONObject()
        seed = config["seed"]?.intValue
        if let temperature = config["temperature"], temperature != .null {
            guard let value = temperature.doubleValue, value >= 0, value <= 2 else {
                throw GeminiError(
                    message: "* GenerateContentRequest.generation_config.temperature: must be in [0, 2]\n")
            }
        }
        completionTokens = configuration.replyTokens
        finishReason = "STOP"
        var limit: Int64?
        if let cap = config["maxOutputTokens"], cap != .null {
            guard let value = cap.intValue, value >= 1 else {
                throw GeminiError(
                    message: "* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n")
            }
            limit = value
            if value < Int64(configuration.replyTokens) {
                completionTokens = Int(value)
                finishReason = "MAX_TOKENS"
            }
        }
        guard let format = try Self.responseFormat(config) else { return }
        var pieces = StructuredReply.pieces(
            format, digest: digest.hash, seed: seed, choice: 0, replyWords: configuration.replyTokens)
        finishReason = "STOP"
        if let limit, limit < Int64(pieces.count) {
            pieces.removeLast(pieces.count - Int(limit))
            finishReason = "MAX_TOKENS"
        }
        structured = pieces
        completionTokens = pieces.count
    }

    /// What `responseMimeType` and the schema ask for; nil for plain text.
    private static func responseFormat(_ config: JSONObject) throws(GeminiError) -> StructuredReply.Format? {
        let nonNull = { (value: JSONValue?) in value == .null ? nil : value }
        let schema = nonNull(config["responseJsonSchema"]) ?? nonNull(config["responseSchema"])
        if let schema, schema.objectValue == nil {
            throw GeminiError(
                message: "Invalid JSON payload received. Unknown name \"responseSchema\": expected an object.")
        }
        switch config["responseMimeType"]?.stringValue {
        case "application/json"?:
            return schema.map { .schema($0) } ?? .object
        case "text/x.enum"?:
            guard let schema, schema["enum"]?.arrayValue?.isEmpty == false else {
                throw GeminiError(
                    message:
                        "* GenerateContentRequest.generation_config.response_schema: response_mime_type "
                        + "text/x.enum needs a response_schema with enum values.\n")
            }
            return .enumText(schema)
        default:
            guard schema == nil else {
                throw GeminiError(
                    message:
                        "* GenerateContentRequest.generation_config.response_mime_type: a response schema needs "
                        + "response_mime_type application/json or text/x.enum.\n")
            }
            return nil
        }
    }
}
