import LLMQCore
import LLMQTransport

/// The OpenAI chat-completions API, and the servers that speak it: Together and any
/// OpenAI-compatible server (vLLM, Ollama, LiteLLM).
///
/// The canonical request already is a chat-completions body; this sets the model
/// the provider knows, names the output cap as each server expects it
/// (`max_completion_tokens` for OpenAI, which rejects `max_tokens` on o-series
/// models; `max_tokens` elsewhere, since Ollama ignores the newer name), and asks for
/// usage in streams.
public struct OpenAIAdapter: ProviderAdapter {
    public let provider: Provider
    /// The API root including its version, e.g. `https://api.openai.com/v1`.
    public let baseURL: String

    public init(provider: Provider = .openai, baseURL: String) {
        self.provider = provider
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    public func makeRequest(_ canonical: JSONValue, route: Route, key: String, stream: Bool) throws(ProviderFailure)
        -> HTTPRequest
    {
        guard case .object(var body) = canonical else {
            throw ProviderFailure(status: nil, type: "invalid_request", message: "the request is not a JSON object")
        }
        body["model"] = .string(route.providerModel)
        if provider == .openai, let cap = body.removeValue(forKey: "max_tokens") {
            body["max_completion_tokens"] = cap
        }
        if stream {
            body["stream"] = .bool(true)
            body["stream_options"] = .object(["include_usage": .bool(true)])
        }
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if !key.isEmpty { headers.add(name: "Authorization", value: "Bearer " + key) }
        return HTTPRequest(
            method: .post, url: baseURL + "/chat/completions", headers: headers,
            body: CanonicalJSON.encode(.object(body)))
    }

    public func parse(_ response: HTTPResponse) -> Result<ProviderAnswer, ProviderFailure> {
        guard response.isSuccess else { return .failure(failure(response)) }
        guard let json = try? JSONParser.parse(response.body), case .object = json else {
            return .failure(
                ProviderFailure(status: response.status, type: "invalid_response", message: "the body is not JSON"))
        }
        guard let choice = json["choices"]?.arrayValue?.first else {
            return .failure(
                ProviderFailure(status: response.status, type: "invalid_response", message: "the answer has no choices")
            )
        }
        return .success(
            ProviderAnswer(
                text: choice["message"]?["content"]?.stringValue ?? "",
                finishReason: choice["finish_reason"]?.stringValue,
                usage: json["usage"].map(Usage.openAI) ?? Usage(), model: json["model"]?.stringValue,
                raw: response.body))
    }

    public func rateLimits(_ response: HTTPResponse) -> RateLimitInfo {
        RateLimitHeaders.openAI(response.headers)
    }

    public func makeStreamAccumulator() -> any StreamAccumulator {
        OpenAIStreamAccumulator()
    }

    /// The provider's error, from `{"error":{"message","type","param","code"}}`;
    /// vLLM's integer `code` and a plain-text body are understood too.
    func failure(_ response: HTTPResponse) -> ProviderFailure {
        let retryAfter = RateLimitHeaders.retryAfterMilliseconds(response.headers)
        if let json = try? JSONParser.parse(response.body), let error = json["error"] {
            let code = error["code"]?.stringValue ?? error["type"]?.stringValue
            let message = error["message"]?.stringValue ?? error.stringValue ?? "no message"
            return ProviderFailure(
                status: response.status, type: code, message: message, retryAfterMilliseconds: retryAfter)
        }
        let text = String(response.bodyText.prefix(200)).trimmingCharacters(in: .whitespacesAndNewlines)
        return ProviderFailure(
            status: response.status, type: nil, message: text.isEmpty ? "no message" : text,
            retryAfterMilliseconds: retryAfter)
    }
}

/// Reassembles an OpenAI-style stream: `data: {chunk}` events with text deltas, a
/// last chunk with `finish_reason`, a usage chunk with `choices: []`, `[DONE]`.
public struct OpenAIStreamAccumulator: StreamAccumulator {
    public private(set) var text = ""
    private var finishReason: String?
    private var usage: Usage?
    private var model: String?
    private var done = false
    private var raw: [UInt8] = []

    public init() {}

    public mutating func consume(_ event: SSEEvent) throws(ProviderFailure) -> Bool {
        if event.data == "[DONE]" {
            done = true
            return true
        }
        raw.append(contentsOf: event.data.utf8)
        raw.append(0x0A)
        guard let chunk = try? JSONParser.parse(event.data) else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "a stream event is not JSON")
        }
        if let error = chunk["error"] {
            throw ProviderFailure(
                status: 200, type: error["code"]?.stringValue ?? error["type"]?.stringValue,
                message: error["message"]?.stringValue ?? "error in stream")
        }
        model = model ?? chunk["model"]?.stringValue
        if let choice = chunk["choices"]?.arrayValue?.first(where: { ($0["index"]?.intValue ?? 0) == 0 }) {
            if let delta = choice["delta"]?["content"]?.stringValue { text += delta }
            if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
        }
        if let usageValue = chunk["usage"], case .object = usageValue { usage = Usage.openAI(usageValue) }
        return false
    }

    public func answer() throws(ProviderFailure) -> ProviderAnswer {
        guard done || (finishReason != nil && usage != nil) else {
            throw ProviderFailure(status: 200, type: "truncated", message: "the stream ended before [DONE]")
        }
        guard finishReason != nil else {
            throw ProviderFailure(status: 200, type: "truncated", message: "the stream ended without a finish reason")
        }
        return ProviderAnswer(text: text, finishReason: finishReason, usage: usage ?? Usage(), model: model, raw: raw)
    }
}
