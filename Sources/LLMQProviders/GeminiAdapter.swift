import LLMQCore
import LLMQTransport

/// Gemini's native `generateContent` API.
///
/// From the canonical request: system messages become `systemInstruction`;
/// assistant turns are `model` turns; generation parameters go to
/// `generationConfig` (`max_tokens` → `maxOutputTokens`, `stop` →
/// `stopSequences`, `n` → `candidateCount`, a JSON `response_format` →
/// `responseMimeType` and `responseJsonSchema`, `reasoning_effort` →
/// `thinkingConfig.thinkingBudget`).
public struct GeminiAdapter: ProviderAdapter {
    public let provider = Provider.gemini
    /// The API root without the version path, e.g. `https://generativelanguage.googleapis.com`.
    public let baseURL: String
    /// The API version in the path. Both `v1beta` and `v1` serve generateContent.
    public var apiVersion = "v1beta"

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// Thinking budgets for OpenAI's reasoning efforts.
    static let thinkingBudgets: [String: Int64] = [
        "none": 0, "minimal": 0, "low": 1_024, "medium": 8_192, "high": 24_576,
    ]

    public func makeRequest(_ canonical: JSONValue, route: Route, key: String, stream: Bool) throws(ProviderFailure)
        -> HTTPRequest
    {
        let body = try body(canonical, route: route, stream: stream)
        let verb = stream ? "streamGenerateContent?alt=sse" : "generateContent"
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if !key.isEmpty { headers.add(name: "x-goog-api-key", value: key) }
        return HTTPRequest(
            method: .post, url: "\(baseURL)/\(apiVersion)/models/\(route.providerModel):\(verb)", headers: headers,
            body: CanonicalJSON.encode(.object(body)))
    }

    /// Throws what `makeRequest` would refuse (a parameter this provider cannot
    /// express), without building the request: `llmq submit` checks every line.
    public func validate(_ canonical: JSONValue, route: Route) throws(ProviderFailure) {
        _ = try body(canonical, route: route, stream: false)
    }

    /// The request body, or the refusal of what the provider cannot express.
    func body(_ canonical: JSONValue, route: Route, stream: Bool) throws(ProviderFailure) -> JSONObject {
        func refuse(_ message: String) -> ProviderFailure {
            ProviderFailure(status: nil, type: "unsupported", message: message)
        }
        guard case .object(let input) = canonical else { throw refuse("the request is not a JSON object") }
        var system: [JSONValue] = []
        var contents: [JSONValue] = []
        for message in input["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? ""
            let parts = try AnthropicAdapter.blocks(message["content"] ?? .null, refuse: refuse).map { block in
                JSONValue.object(["text": block["text"] ?? .string("")])
            }
            switch role {
            case "system", "developer": system.append(contentsOf: parts)
            case "user": contents.append(.object(["role": .string("user"), "parts": .array(parts)]))
            case "assistant": contents.append(.object(["role": .string("model"), "parts": .array(parts)]))
            default: throw refuse("Gemini has no \"\(role)\" messages")
            }
        }
        var config = JSONObject()
        for (name, value) in input {
            switch name {
            case "messages", "model", "stream", "stream_options": break
            case "max_tokens": config["maxOutputTokens"] = value
            case "temperature": config["temperature"] = value
            case "top_p": config["topP"] = value
            case "top_k": config["topK"] = value
            case "seed": config["seed"] = value
            case "n": config["candidateCount"] = value
            case "stop":
                switch value {
                case .string: config["stopSequences"] = .array([value])
                case .array: config["stopSequences"] = value
                default: break
                }
            case "response_format":
                switch value["type"]?.stringValue {
                case "json_object": config["responseMimeType"] = .string("application/json")
                case "json_schema":
                    config["responseMimeType"] = .string("application/json")
                    if let schema = value["json_schema"]?["schema"] { config["responseJsonSchema"] = schema }
                default: break
                }
            case "reasoning_effort":
                guard let budget = value.stringValue.flatMap({ Self.thinkingBudgets[$0] }) else {
                    throw refuse("unknown reasoning_effort \(CanonicalJSON.string(value))")
                }
                config["thinkingConfig"] = .object(["thinkingBudget": .int(budget)])
            default:
                throw refuse("Gemini has no equivalent of \"\(name)\"; remove it for this model")
            }
        }
        var body: JSONObject = ["contents": .array(contents)]
        if !system.isEmpty { body["systemInstruction"] = .object(["parts": .array(system)]) }
        if !config.isEmpty { body["generationConfig"] = .object(config) }
        return body
    }

    /// OpenAI's finish reason for a Gemini one.
    static func finishReason(_ reason: String?) -> String? {
        switch reason {
        case nil: return nil
        case "STOP": return "stop"
        case "MAX_TOKENS": return "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": return "content_filter"
        case let other?: return other.lowercased()
        }
    }

    /// The text of the first candidate, thought parts left out.
    static func text(_ response: JSONValue) -> String {
        let parts = response["candidates"]?.arrayValue?.first?["content"]?["parts"]?.arrayValue ?? []
        return parts.compactMap { part in part["thought"] == .bool(true) ? nil : part["text"]?.stringValue }.joined()
    }

    public func parse(_ response: HTTPResponse) -> Result<ProviderAnswer, ProviderFailure> {
        guard response.isSuccess else { return .failure(failure(response)) }
        guard let json = try? JSONParser.parse(response.body), case .object = json else {
            return .failure(
                ProviderFailure(status: response.status, type: "invalid_response", message: "the body is not JSON"))
        }
        let candidate = json["candidates"]?.arrayValue?.first
        // A blocked prompt has no candidates, only promptFeedback.blockReason.
        let reason =
            candidate == nil && json["promptFeedback"]?["blockReason"] != nil
            ? "content_filter" : Self.finishReason(candidate?["finishReason"]?.stringValue)
        return .success(
            ProviderAnswer(
                text: Self.text(json), finishReason: reason,
                usage: json["usageMetadata"].map(Usage.gemini) ?? Usage(), model: json["modelVersion"]?.stringValue,
                raw: response.body))
    }

    /// `{"error":{"code","message","status","details":[…RetryInfo…]}}`.
    func failure(_ response: HTTPResponse) -> ProviderFailure {
        let json = try? JSONParser.parse(response.body)
        guard let error = json?["error"] else {
            let text = String(response.bodyText.prefix(200)).trimmingCharacters(in: .whitespacesAndNewlines)
            return ProviderFailure(status: response.status, type: nil, message: text.isEmpty ? "no message" : text)
        }
        return ProviderFailure(
            status: response.status, type: error["status"]?.stringValue,
            message: error["message"]?.stringValue ?? "no message", retryAfterMilliseconds: Self.retryDelay(error))
    }

    /// The wait in a `google.rpc.RetryInfo` detail (`"retryDelay":"27s"`); a delay
    /// of 0 is no hint (nil), so it never means "retry at once".
    static func retryDelay(_ error: JSONValue) -> Int64? {
        for detail in error["details"]?.arrayValue ?? [] {
            if detail["@type"]?.stringValue?.hasSuffix("google.rpc.RetryInfo") == true,
                let delay = detail["retryDelay"]?.stringValue
            {
                return RateLimitHeaders.goDurationMilliseconds(delay).flatMap { $0 > 0 ? $0 : nil }
            }
        }
        return nil
    }

    /// Gemini sends no rate-limit headers; its wait is in a 429's body.
    public func rateLimits(_ response: HTTPResponse) -> RateLimitInfo {
        guard !response.isSuccess, let json = try? JSONParser.parse(response.body), let error = json["error"] else {
            return RateLimitInfo()
        }
        return RateLimitInfo(retryAfterMilliseconds: Self.retryDelay(error))
    }

    public func makeStreamAccumulator() -> any StreamAccumulator {
        GeminiStreamAccumulator()
    }
}

/// Reassembles a Gemini stream: each event is a whole response with a text delta and
/// cumulative usage; only the last has `finishReason`; the stream just ends.
public struct GeminiStreamAccumulator: StreamAccumulator {
    public private(set) var text = ""
    private var finishReason: String?
    private var usage = Usage()
    private var model: String?
    private var raw: [UInt8] = []

    public init() {}

    public mutating func consume(_ event: SSEEvent) throws(ProviderFailure) -> Bool {
        raw.append(contentsOf: event.data.utf8)
        raw.append(0x0A)
        guard let chunk = try? JSONParser.parse(event.data) else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "a stream event is not JSON")
        }
        if let error = chunk["error"] {
            throw ProviderFailure(
                status: 200, type: error["status"]?.stringValue, message: error["message"]?.stringValue ?? "error")
        }
        text += GeminiAdapter.text(chunk)
        if let metadata = chunk["usageMetadata"] { usage = Usage.gemini(metadata) }
        model = chunk["modelVersion"]?.stringValue ?? model
        if let reason = chunk["candidates"]?.arrayValue?.first?["finishReason"]?.stringValue {
            finishReason = GeminiAdapter.finishReason(reason)
        }
        return finishReason != nil
    }

    public func answer() throws(ProviderFailure) -> ProviderAnswer {
        guard finishReason != nil else {
            throw ProviderFailure(status: 200, type: "truncated", message: "the stream ended without a finish reason")
        }
        return ProviderAnswer(text: text, finishReason: finishReason, usage: usage, model: model, raw: raw)
    }
}
