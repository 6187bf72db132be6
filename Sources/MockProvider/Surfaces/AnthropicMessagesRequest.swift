import LLMQCore
import NIOCore
import NIOHTTP1

/// A Messages API request body (`POST /v1/messages`), validated as `PROVIDERS.md` §3
/// describes it: `model`, `max_tokens` and `messages` are required, roles are `user`
/// or `assistant`, `system` is a string or text blocks, `temperature` is 0–1, and
/// unknown top-level fields are rejected. Messages copy the API's pydantic-style
/// wording (`max_tokens: Field required`).
///
/// The reply is a function of the whole request: the digest takes the `system`
/// prompt first, as a message with role `system`, then each message's role and text
/// (`MockReplies.messageText`). A test computes the reply with
/// `MockReplies.text(for: [system] + messages)`, leaving out `system` when the request
/// has none. Anthropic has no `seed`, so replies are never seeded.
///
/// Structured output (`output_config.format`, or the beta's top-level
/// `output_format`: `{"type":"json_schema","schema":{…}}`) makes the reply a
/// `StructuredReply`. `cache_control` on system blocks, message blocks or the whole
/// request marks cache breakpoints (at most four); each is taken to end with the
/// message (or system prompt) it is in, the top-level one with the last message.
/// Blocks are counted a message at a time: the system prompt is one, each message
/// another.
struct AnthropicMessagesRequest {
    /// The prompt up to the end of one message (or of the system prompt).
    struct Prefix {
        var tokens: Int
        var hash: UInt64
    }

    /// Where a cached prefix ends.
    struct CacheBreakpoint {
        /// The index in `prefixes` of the message the breakpoint ends.
        var prefix: Int
        /// `ttl: "1h"` rather than the default five minutes.
        var oneHour: Bool
    }

    var model: String
    var digest: PromptDigest
    var stream: Bool
    /// Tokens in the reply: the configured reply length (or the structured reply's
    /// pieces), cut by `max_tokens`.
    var completionTokens: Int
    /// `max_tokens` when the cap cut the reply, else `end_turn`.
    var stopReason: String
    /// The structured reply's pieces, already cut by `max_tokens`; nil for words.
    var structured: [String]?
    /// The prompt's prefixes, one per message (the system prompt first, if any).
    var prefixes: [Prefix] = []
    /// The cache breakpoints, in prompt order.
    var cacheBreakpoints: [CacheBreakpoint] = []

    /// Most breakpoints a request may have.
    static let maximumBreakpoints = 4

    /// Top-level fields of `MessageCreateParams`; anything else is rejected.
    static let knownFields: Set<String> = [
        "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
        "tools", "tool_choice", "thinking", "metadata", "service_tier", "cache_control", "container",
        "context_management", "mcp_servers", "output_config", "output_format", "inference_geo", "speed",
        "diagnostics",
    ]

    static func parse(_ body: ByteBuffer, configuration: MockProviderServer.Configuration)
        -> Result<AnthropicMessagesRequest, AnthropicError>
    {
        guard let object = body.jsonObject() else {
            return .failure(AnthropicError(message: "There was an issue with your request body: invalid JSON."))
        }
        do {
            return .success(try AnthropicMessagesRequest(object, configuration: configuration))
        } catch {
            return .failure(error)
        }
    }

    private init(_ object: JSONObject, configuration: MockProviderServer.Configuration) throws(AnthropicError) {
        for key in object.keys where !Self.knownFields.contains(key) {
            throw AnthropicError(message: "\(key): Extra inputs are not permitted")
        }
        // model
        guard let modelValue = object["model"], modelValue != .null else { throw Self.missing("model") }
        guard let model = modelValue.stringValue else { throw Self.invalid("model", "a valid string") }
        guard !model.isEmpty else {
            throw AnthropicError(message: "model: String should have at least 1 character")
        }
        self.model = model
        // max_tokens
        guard let capValue = object["max_tokens"], capValue != .null else { throw Self.missing("max_tokens") }
        guard let cap = capValue.intValue else { throw Self.invalid("max_tokens", "a valid integer") }
        guard cap >= 1 else { throw AnthropicError(message: "max_tokens: Input should be greater than or equal to 1") }
        if cap < Int64(configuration.replyTokens) {
            completionTokens = Int(cap)
            stopReason = "max_tokens"
        } else {
            completionTokens = configuration.replyTokens
            stopReason = "end_turn"
        }
        // system, then messages: both feed the digest
        var digest = PromptDigest()
        var prefixes: [Prefix] = []
        var breakpoints: [CacheBreakpoint] = []
        var marked: Bool?
        switch object["system"] {
        case nil, .null?:
            break
        case .string(let text)?:
            digest.add(role: "system", text: text)
            prefixes.append(Prefix(tokens: digest.tokens, hash: digest.hash))
        case .array(let blocks)?:
            var text = ""
            for (index, block) in blocks.enumerated() {
                guard let fields = block.objectValue, fields["type"] == .string("text"),
                    let piece = fields["text"]?.stringValue
                else {
                    throw AnthropicError(message: "system.\(index): Input should be a valid text block")
                }
                text += piece
                if let oneHour = try Self.cacheControl(fields["cache_control"], at: "system.\(index)") {
                    marked = (marked ?? false) || oneHour
                }
            }
            digest.add(role: "system", text: text)
            prefixes.append(Prefix(tokens: digest.tokens, hash: digest.hash))
            if let oneHour = marked {
                breakpoints.append(CacheBreakpoint(prefix: prefixes.count - 1, oneHour: oneHour))
            }
        default:
            throw Self.invalid("system", "a valid string or a list of text blocks")
        }
        guard let messagesValue = object["messages"], messagesValue != .null else { throw Self.missing("messages") }
        guard let messages = messagesValue.arrayValue else { throw Self.invalid("messages", "a valid list") }
        guard !messages.isEmpty else { throw AnthropicError(message: "messages: at least one message is required") }
        for (index, message) in messages.enumerated() {
            let name = "messages.\(index)"
            guard let fields = message.objectValue else { throw Self.invalid(name, "a valid dictionary") }
            guard let roleValue = fields["role"], roleValue != .null else { throw Self.missing(name + ".role") }
            guard let role = roleValue.stringValue else { throw Self.invalid(name + ".role", "a valid string") }
            switch role {
            case "user", "assistant":
                break
            case "system":
                throw AnthropicError(
                    message:
                        "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` "
                        + "parameter, not \"system\" as an input message role.")
            default:
                throw AnthropicError(message: "\(name).role: Input should be 'user' or 'assistant'")
            }
            let content = fields["content"]
            switch content {
            case nil, .null?:
                throw Self.missing(name + ".content")
            case .string?:
                break
            case .array(let blocks)?:
                marked = nil
                for (blockIndex, block) in blocks.enumerated() {
                    guard block.objectValue?["type"]?.stringValue != nil else {
                        throw AnthropicError(message: "\(name).content.\(blockIndex).type: Field required")
                    }
                    let place = "\(name).content.\(blockIndex)"
                    if let oneHour = try Self.cacheControl(block["cache_control"], at: place) {
                        marked = (marked ?? false) || oneHour
                    }
                }
            default:
                throw Self.invalid(name + ".content", "a valid string or a list of content blocks")
            }
            digest.add(role: role, text: MockReplies.messageText(content))
            prefixes.append(Prefix(tokens: digest.tokens, hash: digest.hash))
            if content?.arrayValue != nil, let oneHour = marked {
                breakpoints.append(CacheBreakpoint(prefix: prefixes.count - 1, oneHour: oneHour))
            }
        }
        if let oneHour = try Self.cacheControl(object["cache_control"], at: nil) {
            breakpoints.append(CacheBreakpoint(prefix: prefixes.count - 1, oneHour: oneHour))
        }
        self.digest = digest
        let blocksMarked = Self.markedBlocks(object)
        guard blocksMarked <= Self.maximumBreakpoints else {
            throw AnthropicError(
                message:
                    "A maximum of \(Self.maximumBreakpoints) blocks with cache_control may be provided. Found "
                    + "\(blocksMarked).")
        }
        self.prefixes = prefixes
        cacheBreakpoints = breakpoints
        // sampling knobs: checked for range, otherwise ignored
        try Self.range(object, "temperature", maximum: 1)
        try Self.range(object, "top_p", maximum: 1)
        // streaming
        switch object["stream"] {
        case nil, .null?: stream = false
        case .bool(let flag)?: stream = flag
        default: throw Self.invalid("stream", "a valid boolean")
        }
        // structured output
        guard let schema = try Self.outputSchema(object) else { return }
        var pieces = StructuredReply.pieces(
            .schema(schema), digest: digest.hash, seed: nil, choice: 0, replyWords: configuration.replyTokens)
        stopReason = "end_turn"
        if cap < Int64(pieces.count) {
            pieces.removeLast(pieces.count - Int(cap))
            stopReason = "max_tokens"
        }
        structured = pieces
        completionTokens = pieces.count
    }

    /// The JSON schema of `output_config.format` (or the beta's `output_format`), or nil.
    private static func outputSchema(_ object: JSONObject) throws(AnthropicError) -> JSONValue? {
        var format = object["output_format"]
        var place = "output_format"
        if let config = object["output_config"], config != .null {
            guard let fields = config.objectValue else { throw invalid("output_config", "a valid dictionary") }
            if let nested = fields["format"], nested != .null {
                format = nested
                place = "output_config.format"
            }
        }
        guard let format, format != .null else { return nil }
        guard let fields = format.objectValue else { throw invalid(place, "a valid dictionary") }
        guard fields["type"] == .string("json_schema") else {
            throw AnthropicError(message: "\(place).type: Input should be 'json_schema'")
        }
        guard let schema = fields["schema"], schema != .null else { throw missing(place + ".schema") }
        guard schema.objectValue != nil else { throw invalid(place + ".schema", "a valid dictionary") }
        return schema
    }

    /// Checks a `cache_control` value: nil when absent, else whether its TTL is an hour.
    private static func cacheControl(_ value: JSONValue?, at place: String?) throws(AnthropicError) -> Bool? {
        guard let value, value != .null else { return nil }
        let name = place.map { $0 + ".cache_control" } ?? "cache_control"
        guard let fields = value.objectValue else { throw invalid(name, "a valid dictionary") }
        guard fields["type"] == .string("ephemeral") else {
            throw AnthropicError(message: "\(name).type: Input should be 'ephemeral'")
        }
        switch fields["ttl"] {
        case nil, .null?, .string("5m")?: return false
        case .string("1h")?: return true
        default: throw AnthropicError(message: "\(name).ttl: Input should be '5m' or '1h'")
        }
    }

    /// Blocks (and the request itself) carrying `cache_control`, for the limit of four.
    private static func markedBlocks(_ object: JSONObject) -> Int {
        func marked(_ blocks: JSONValue?) -> Int {
            (blocks?.arrayValue ?? []).reduce(0) { $0 + ($1["cache_control"].map { $0 == .null ? 0 : 1 } ?? 0) }
        }
        var count = object["cache_control"].map { $0 == .null ? 0 : 1 } ?? 0
        count += marked(object["system"])
        for message in object["messages"]?.arrayValue ?? [] { count += marked(message["content"]) }
        return count
    }

    // MARK: - Field checks

    private static func missing(_ field: String) -> AnthropicError {
        AnthropicError(message: "\(field): Field required")
    }

    private static func invalid(_ field: String, _ expected: String) -> AnthropicError {
        AnthropicError(message: "\(field): Input should be \(expected)")
    }

    private static func range(_ object: JSONObject, _ name: String, maximum: Double) throws(AnthropicError) {
        guard let value = object[name], value != .null else { return }
        guard let number = value.doubleValue else { throw invalid(name, "a valid number") }
        if number < 0 { throw AnthropicError(message: "\(name): Input should be greater than or equal to 0") }
        if number > maximum {
            throw AnthropicError(message: "\(name): Input should be less than or equal to \(Int(maximum))")
        }
    }
}

/// An Anthropic error answer:
/// `{"type":"error","error":{"type","message"},"request_id":"req_…"}`.
struct AnthropicError: Error {
    var status: HTTPResponseStatus
    var type: String
    var message: String

    init(status: HTTPResponseStatus = .badRequest, type: String = "invalid_request_error", message: String) {
        self.status = status
        self.type = type
        self.message = message
    }

    static let overloaded = AnthropicError(
        status: HTTPResponseStatus(statusCode: 529, reasonPhrase: "Overloaded"), type: "overloaded_error",
        message: "Overloaded")

    /// The error object alone: `{"type":"error","error":{…}}` and, when given, the request id.
    func write(requestID: String?, to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"type\":\"error\",\"error\":{\"type\":")
        buffer.writeJSONString(type)
        buffer.writeStaticString(",\"message\":")
        buffer.writeJSONString(message)
        buffer.writeStaticString("}")
        if let requestID {
            buffer.writeStaticString(",\"request_id\":")
            buffer.writeJSONString(requestID)
        }
        buffer.writeStaticString("}")
    }
}
