import Foundation
import LLMQCore
import LLMQTransport

/// Anthropic's Messages API.
///
/// From the canonical (OpenAI-shaped) request: system and developer messages become
/// the top-level `system`; text parts become text blocks; `max_tokens`, which
/// Anthropic requires, defaults to `defaultMaxTokens`; `stop` becomes
/// `stop_sequences`. Fields Anthropic has no equivalent for (`seed`,
/// `response_format` other than text, `n` > 1) are refused rather than dropped, so
/// an answer is never silently different from what was asked.
public struct AnthropicAdapter: ProviderAdapter {
    public let provider = Provider.anthropic
    /// The API root without the version path, e.g. `https://api.anthropic.com`.
    public let baseURL: String
    /// The output cap sent when a request sets none.
    public var defaultMaxTokens = 4096

    public static let apiVersion = "2023-06-01"

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    public func makeRequest(_ canonical: JSONValue, route: Route, key: String, stream: Bool) throws(ProviderFailure)
        -> HTTPRequest
    {
        let body = try body(canonical, route: route, stream: stream)
        var headers: HTTPHeaders = [
            "Content-Type": "application/json", "anthropic-version": Self.apiVersion,
        ]
        if !key.isEmpty { headers.add(name: "x-api-key", value: key) }
        return HTTPRequest(
            method: .post, url: baseURL + "/v1/messages", headers: headers, body: CanonicalJSON.encode(.object(body)))
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
        var body = JSONObject()
        var system: [String] = []
        var messages: [JSONValue] = []
        for message in input["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? ""
            let content = try Self.blocks(message["content"] ?? .null, refuse: refuse)
            switch role {
            case "system", "developer":
                system.append(content.compactMap { $0["text"]?.stringValue }.joined(separator: "\n"))
            case "user", "assistant":
                messages.append(.object(["role": .string(role), "content": .array(content)]))
            default:
                throw refuse("Anthropic has no \"\(role)\" messages")
            }
        }
        body["model"] = .string(route.providerModel)
        body["messages"] = .array(messages)
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        body["max_tokens"] = input["max_tokens"] ?? .int(Int64(defaultMaxTokens))
        for (key, value) in input {
            switch key {
            case "messages", "model", "max_tokens", "stream", "stream_options": break
            case "temperature":
                guard let number = value.doubleValue, number <= 1 else {
                    throw refuse("Anthropic's \"temperature\" goes from 0 to 1, not \(CanonicalJSON.string(value))")
                }
                body["temperature"] = value
            case "top_p", "top_k", "metadata", "thinking", "tools", "tool_choice", "service_tier":
                body[key] = value
            case "stop":
                switch value {
                case .string: body["stop_sequences"] = .array([value])
                case .array: body["stop_sequences"] = value
                default: break
                }
            case "response_format" where value["type"]?.stringValue == "text":
                break
            case "n" where value.intValue == 1:
                break
            default:
                throw refuse("Anthropic has no equivalent of \"\(key)\"; remove it for this model")
            }
        }
        if stream { body["stream"] = .bool(true) }
        return body
    }

    /// Anthropic content blocks for OpenAI message content (a string or text parts).
    static func blocks(_ content: JSONValue, refuse: (String) -> ProviderFailure) throws(ProviderFailure)
        -> [JSONValue]
    {
        switch content {
        case .string(let text):
            return [.object(["type": .string("text"), "text": .string(text)])]
        case .array(let parts):
            var blocks: [JSONValue] = []
            for part in parts {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                    throw refuse("llmq sends Anthropic text parts only")
                }
                blocks.append(.object(["type": .string("text"), "text": .string(text)]))
            }
            return blocks
        default:
            throw refuse("a message without text content")
        }
    }

    /// OpenAI's finish reason for an Anthropic stop reason.
    static func finishReason(_ stopReason: String?) -> String? {
        switch stopReason {
        case nil: return nil
        case "end_turn", "stop_sequence", "pause_turn": return "stop"
        case "max_tokens", "model_context_window_exceeded": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        case let other?: return other
        }
    }

    public func parse(_ response: HTTPResponse) -> Result<ProviderAnswer, ProviderFailure> {
        guard response.isSuccess else { return .failure(failure(response)) }
        guard let json = try? JSONParser.parse(response.body), json["type"]?.stringValue == "message" else {
            return .failure(
                ProviderFailure(status: response.status, type: "invalid_response", message: "the body is not a message")
            )
        }
        let text = (json["content"]?.arrayValue ?? []).compactMap { block -> String? in
            block["type"]?.stringValue == "text" ? block["text"]?.stringValue : nil
        }.joined()
        return .success(
            ProviderAnswer(
                text: text, finishReason: Self.finishReason(json["stop_reason"]?.stringValue),
                usage: json["usage"].map(Usage.anthropic) ?? Usage(), model: json["model"]?.stringValue,
                raw: response.body))
    }

    /// `{"type":"error","error":{"type":"overloaded_error","message":"…"}}`.
    ///
    /// The wait is `retry-after`, else (on a 429) the reset of the budget the
    /// `anthropic-ratelimit-*` headers say is used up. `x-should-retry: false` makes
    /// the failure `permanent`.
    func failure(_ response: HTTPResponse) -> ProviderFailure {
        let limits = rateLimits(response)
        let wait = response.status == 429 ? limits.pauseAfterRateLimitMilliseconds : limits.pauseMilliseconds
        let permanent = RateLimitHeaders.shouldRetry(response.headers) == false
        if let json = try? JSONParser.parse(response.body), let error = json["error"] {
            return ProviderFailure(
                status: response.status, type: error["type"]?.stringValue,
                message: error["message"]?.stringValue ?? "no message", retryAfterMilliseconds: wait,
                permanent: permanent)
        }
        let text = String(response.bodyText.prefix(200)).trimmingCharacters(in: .whitespacesAndNewlines)
        return ProviderFailure(
            status: response.status, type: nil, message: text.isEmpty ? "no message" : text,
            retryAfterMilliseconds: wait, permanent: permanent)
    }

    /// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}`
    /// (resets as RFC 3339 times) and `retry-after`.
    public func rateLimits(_ response: HTTPResponse) -> RateLimitInfo {
        rateLimits(response.headers, now: Date())
    }

    /// The three token budgets (all tokens, input, output) count as one: used up
    /// when any is, until the latest reset of those used up.
    func rateLimits(_ headers: HTTPHeaders, now: Date) -> RateLimitInfo {
        let nowMilliseconds = now.timeIntervalSince1970 * 1000
        func untilReset(_ name: String) -> Int64? {
            guard let text = headers[name], let reset = ISOTime.milliseconds(text) else { return nil }
            return max(0, Int64((Double(reset) - nowMilliseconds).rounded(.up)))
        }
        func remaining(_ name: String) -> Int? {
            headers[name].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        let tokenBudgets = ["tokens", "input-tokens", "output-tokens"].compactMap { kind -> (Int, Int64?)? in
            remaining("anthropic-ratelimit-\(kind)-remaining").map {
                ($0, untilReset("anthropic-ratelimit-\(kind)-reset"))
            }
        }
        let usedUp = tokenBudgets.filter { $0.0 == 0 }
        let tokens = usedUp.isEmpty ? tokenBudgets : usedUp
        return RateLimitInfo(
            remainingRequests: remaining("anthropic-ratelimit-requests-remaining"),
            remainingTokens: tokens.map(\.0).min(),
            resetRequestsMilliseconds: untilReset("anthropic-ratelimit-requests-reset"),
            resetTokensMilliseconds: tokens.compactMap(\.1).max(),
            retryAfterMilliseconds: RateLimitHeaders.retryAfterMilliseconds(headers, now: now))
    }

    public func makeStreamAccumulator() -> any StreamAccumulator {
        AnthropicStreamAccumulator()
    }
}

/// Reassembles an Anthropic stream: `message_start`, content block deltas,
/// `message_delta` (stop reason, cumulative output tokens), `message_stop`; `ping`
/// anywhere; an `error` event even after a 200.
public struct AnthropicStreamAccumulator: StreamAccumulator {
    public private(set) var text = ""
    private var stopReason: String?
    private var usage = Usage()
    private var model: String?
    private var stopped = false
    private var raw: [UInt8] = []

    public init() {}

    public mutating func consume(_ event: SSEEvent) throws(ProviderFailure) -> Bool {
        raw.append(contentsOf: "event: \(event.type)\ndata: \(event.data)\n\n".utf8)
        guard let data = try? JSONParser.parse(event.data) else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "a stream event is not JSON")
        }
        switch data["type"]?.stringValue ?? event.type {
        case "message_start":
            let message = data["message"]
            model = message?["model"]?.stringValue
            if let start = message?["usage"] { usage = Usage.anthropic(start) }
        case "content_block_delta":
            if data["delta"]?["type"]?.stringValue == "text_delta", let piece = data["delta"]?["text"]?.stringValue {
                text += piece
            }
        case "message_delta":
            if let reason = data["delta"]?["stop_reason"]?.stringValue { stopReason = reason }
            if let delta = data["usage"] {
                // Output is cumulative; input counts, when present, replace the start's.
                let update = Usage.anthropic(delta)
                usage.outputTokens = update.outputTokens
                if delta["input_tokens"] != nil { usage.inputTokens = update.inputTokens }
                if delta["cache_read_input_tokens"] != nil { usage.cachedInputTokens = update.cachedInputTokens }
                if delta["cache_creation_input_tokens"] != nil { usage.cacheWriteTokens = update.cacheWriteTokens }
                if delta["cache_creation"] != nil { usage.cacheWriteOneHourTokens = update.cacheWriteOneHourTokens }
                usage.cacheWriteOneHourTokens = min(usage.cacheWriteOneHourTokens, usage.cacheWriteTokens)
            }
        case "message_stop":
            stopped = true
            return true
        case "error":
            throw ProviderFailure(
                status: 200, type: data["error"]?["type"]?.stringValue,
                message: data["error"]?["message"]?.stringValue ?? "error in stream")
        default:
            break  // ping, content_block_start, content_block_stop
        }
        return false
    }

    public func answer() throws(ProviderFailure) -> ProviderAnswer {
        guard stopped else {
            throw ProviderFailure(status: 200, type: "truncated", message: "the stream ended before message_stop")
        }
        return ProviderAnswer(
            text: text, finishReason: AnthropicAdapter.finishReason(stopReason), usage: usage, model: model, raw: raw)
    }
}
