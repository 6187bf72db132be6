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
        let body = try body(canonical, route: route, stream: stream)
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if !key.isEmpty { headers.add(name: "Authorization", value: "Bearer " + key) }
        return HTTPRequest(
            method: .post, url: baseURL + "/chat/completions", headers: headers,
            body: CanonicalJSON.encode(.object(body)))
    }

    /// The request body: the canonical body with the provider's model and output-cap
    /// name, and usage asked for in streams.
    func body(_ canonical: JSONValue, route: Route, stream: Bool) throws(ProviderFailure) -> JSONObject {
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
        return body
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
    ///
    /// The wait is `retry-after-ms`/`retry-after`, else (on a 429) the reset of the
    /// budget the rate-limit headers say is used up. A 429 that waiting cannot cure
    /// is `permanent`: `x-should-retry: false`, `insufficient_quota` (no credit left),
    /// or "Request too large" (more tokens than the whole per-minute limit).
    func failure(_ response: HTTPResponse) -> ProviderFailure {
        let limits = rateLimits(response)
        let wait = response.status == 429 ? limits.pauseAfterRateLimitMilliseconds : limits.pauseMilliseconds
        var failure: ProviderFailure
        if let json = try? JSONParser.parse(response.body), let error = json["error"] {
            let code = error["code"]?.stringValue ?? error["type"]?.stringValue
            let message = error["message"]?.stringValue ?? error.stringValue ?? "no message"
            failure = ProviderFailure(
                status: response.status, type: code, message: message, retryAfterMilliseconds: wait)
            failure.permanent =
                code == "insufficient_quota" || error["type"]?.stringValue == "insufficient_quota"
                || (response.status == 429 && message.hasPrefix("Request too large"))
        } else {
            let text = String(response.bodyText.prefix(200)).trimmingCharacters(in: .whitespacesAndNewlines)
            failure = ProviderFailure(
                status: response.status, type: nil, message: text.isEmpty ? "no message" : text,
                retryAfterMilliseconds: wait)
        }
        if RateLimitHeaders.shouldRetry(response.headers) == false { failure.permanent = true }
        return failure
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
