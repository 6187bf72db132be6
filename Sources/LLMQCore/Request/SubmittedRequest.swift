/// One input line, validated and normalised into llmq's canonical request.
///
/// The canonical request is an OpenAI chat-completions body: `model` (aliases
/// resolved), `messages` (a simple-format `system` or `prompt` turned into messages),
/// `max_tokens` (also from `max_completion_tokens`), and every other generation
/// parameter as given; `stream` and `stream_options` are dropped, since how llmq
/// transports an answer does not change it. Its bytes are `CanonicalJSON` and its
/// cache key is their SHA-256. `custom_id` and `metadata` are bookkeeping and are not
/// part of the key.
public struct SubmittedRequest: Sendable, Equatable {
    /// The caller's id for this request, unique within a job.
    public var customID: String
    /// Where the request goes.
    public var route: Route
    /// The canonical request, as canonical JSON bytes.
    public var canonical: [UInt8]
    /// SHA-256 of `canonical`.
    public var cacheKey: CacheKey
    /// The caller's metadata object, as canonical JSON bytes, if any.
    public var metadata: [UInt8]?
    /// A rough input size: UTF-8 bytes of message text / 4, plus 4 per message.
    public var estimatedInputTokens: Int
    /// The output cap, if the request sets one.
    public var maxTokens: Int?

    public init(
        customID: String, route: Route, canonical: [UInt8], cacheKey: CacheKey, metadata: [UInt8]?,
        estimatedInputTokens: Int, maxTokens: Int?
    ) {
        self.customID = customID
        self.route = route
        self.canonical = canonical
        self.cacheKey = cacheKey
        self.metadata = metadata
        self.estimatedInputTokens = estimatedInputTokens
        self.maxTokens = maxTokens
    }

    /// Lowercase hex of the cache key.
    public var cacheKeyHex: String { cacheKey.hex }

    /// The canonical request as text.
    public var canonicalText: String { String(decoding: canonical, as: UTF8.self) }
}

/// Why an input line was not accepted. Its description never contains prompt text.
public struct InputProblem: Error, Sendable, Equatable {
    /// 1-based line number in the input.
    public var line: Int
    /// 1-based column (in characters) of a syntax error, if the line is not valid JSON.
    public var column: Int?
    /// The field at fault, as a path such as `body.temperature` or `messages[1].role`.
    public var field: String?
    /// The line's custom_id, when it could be read.
    public var customID: String?
    /// What is wrong and, where useful, what to do.
    public var message: String

    public init(line: Int, column: Int? = nil, field: String? = nil, customID: String? = nil, message: String) {
        self.line = line
        self.column = column
        self.field = field
        self.customID = customID
        self.message = message
    }

    /// "line 12, column 40: …" or "line 12, field "temperature": …".
    public var locatedMessage: String {
        var location = "line \(line)"
        if let column { location += ", column \(column)" }
        if let field { location += ", field \"\(field)\"" }
        return "\(location): \(message)"
    }
}
