import LLMQCore
import LLMQTransport

/// A complete answer from a provider, normalised.
public struct ProviderAnswer: Sendable, Equatable {
    /// The answer's text (the first choice's).
    public var text: String
    /// Why generation stopped, in OpenAI's words (`stop`, `length`, `content_filter`,
    /// `tool_calls`), whatever the provider said.
    public var finishReason: String?
    public var usage: Usage
    /// The model the provider says answered.
    public var model: String?
    /// The provider's own response body (a stream's events, reassembled as the
    /// provider's non-streaming body would read, are not kept: the raw event data is).
    public var raw: [UInt8]

    public init(text: String, finishReason: String?, usage: Usage, model: String?, raw: [UInt8]) {
        self.text = text
        self.finishReason = finishReason
        self.usage = usage
        self.model = model
        self.raw = raw
    }
}

/// Why a provider did not answer. Its description never contains a key or a prompt.
public struct ProviderFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status, or nil when no response was had (the transport failed).
    public var status: Int?
    /// The provider's error type or code (`rate_limit_exceeded`, `overloaded_error`,
    /// `RESOURCE_EXHAUSTED`), or the transport's failure kind.
    public var type: String?
    /// The provider's own message.
    public var message: String
    /// How long the provider asked us to wait, if it said: a `retry-after`, or the
    /// reset of the budget a 429 says is used up. The adapters never give 0 or less,
    /// and the runner takes such a wait as none.
    public var retryAfterMilliseconds: Int64?
    /// The provider says waiting and retrying cannot help (`x-should-retry: false`,
    /// a quota with no credit left, a request larger than the whole rate limit), even
    /// for a status that is usually retried: the request fails at once.
    public var permanent: Bool

    public init(
        status: Int?, type: String?, message: String, retryAfterMilliseconds: Int64? = nil, permanent: Bool = false
    ) {
        self.status = status
        self.type = type
        self.message = message
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.permanent = permanent
    }

    public var description: String {
        var text = status.map { "HTTP \($0)" } ?? "transport error"
        if let type { text += " (\(type))" }
        return text + ": " + message
    }
}

/// What a provider's response says about its rate limits.
public struct RateLimitInfo: Sendable, Equatable {
    public var remainingRequests: Int?
    public var remainingTokens: Int?
    /// Time until the request budget resets.
    public var resetRequestsMilliseconds: Int64?
    /// Time until the token budget resets.
    public var resetTokensMilliseconds: Int64?
    /// An explicit wait (`retry-after-ms`, `retry-after`, Gemini's `RetryInfo`).
    public var retryAfterMilliseconds: Int64?

    public init(
        remainingRequests: Int? = nil, remainingTokens: Int? = nil, resetRequestsMilliseconds: Int64? = nil,
        resetTokensMilliseconds: Int64? = nil, retryAfterMilliseconds: Int64? = nil
    ) {
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
        self.resetRequestsMilliseconds = resetRequestsMilliseconds
        self.resetTokensMilliseconds = resetTokensMilliseconds
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    /// How long to hold off before the next request: an explicit wait, else the
    /// reset of a budget that is used up. A wait of 0 or less is no wait (nil), so it
    /// never means "retry at once".
    public var pauseMilliseconds: Int64? {
        if let wait = Self.positive(retryAfterMilliseconds) { return wait }
        let requests = remainingRequests == 0 ? resetRequestsMilliseconds : nil
        let tokens = remainingTokens == 0 ? resetTokensMilliseconds : nil
        return Self.positive([requests, tokens].compactMap { $0 }.max())
    }

    /// How long to hold off after a 429: as `pauseMilliseconds`, else the latest
    /// reset the response gives. A 429 says a budget is used up for this request even
    /// when none reads 0 (the request needs more tokens than remain), and a reset is
    /// then the only hint (Together's 429s carry nothing else).
    public var pauseAfterRateLimitMilliseconds: Int64? {
        pauseMilliseconds
            ?? Self.positive([resetRequestsMilliseconds, resetTokensMilliseconds].compactMap { $0 }.max())
    }

    private static func positive(_ milliseconds: Int64?) -> Int64? {
        milliseconds.flatMap { $0 > 0 ? $0 : nil }
    }
}

/// Turns llmq's canonical request into one provider's HTTP request, and its
/// responses back into answers, failures and rate-limit hints.
public protocol ProviderAdapter: Sendable {
    var provider: Provider { get }

    /// The HTTP request for a canonical request (an OpenAI chat-completions body).
    func makeRequest(_ canonical: JSONValue, route: Route, key: String, stream: Bool) throws(ProviderFailure)
        -> HTTPRequest

    /// The answer in a complete response, or why there is none.
    func parse(_ response: HTTPResponse) -> Result<ProviderAnswer, ProviderFailure>

    /// What the response's headers (and, for some providers, body) say about limits.
    func rateLimits(_ response: HTTPResponse) -> RateLimitInfo

    /// A fresh accumulator for one streamed answer.
    func makeStreamAccumulator() -> any StreamAccumulator
}

/// Builds an answer from a provider's server-sent events, one at a time.
public protocol StreamAccumulator: Sendable {
    /// Takes one event. Returns true once the stream says it is complete.
    mutating func consume(_ event: SSEEvent) throws(ProviderFailure) -> Bool
    /// The answer, once complete; throws if the stream ended early.
    func answer() throws(ProviderFailure) -> ProviderAnswer
    /// The text received so far (for showing tokens as they arrive).
    var text: String { get }
}
