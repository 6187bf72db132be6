import LLMQCore
import NIOCore

/// Whose rules a chat completions request follows: both APIs share the body.
enum ChatDialect: Sendable {
    /// OpenAI: unknown top-level fields are rejected; `response_format` is `text`,
    /// `json_object` (the messages must say "json") or `json_schema` with a named
    /// `json_schema` object.
    case openAI
    /// Together (`PROVIDERS.md` §6): unknown fields (its `top_k`,
    /// `repetition_penalty`, `min_p`, `safety_model`, …) are accepted and ignored,
    /// as is `stream_options` without `stream`; `response_format` also takes
    /// Together's own form, `{"type":"json_schema"|"json_object","schema":{…}}`, and
    /// `regex` (answered with plain words).
    case together
}

/// A chat completions request body, validated as the real API validates it.
///
/// Messages follow the API's own wording (`Missing required parameter: 'messages'.`,
/// `Invalid type for 'n': …`) with `param` and `code` set, so a client's error path
/// is exercised with realistic bodies. Unknown top-level fields are rejected, as the
/// real API rejects them (OpenAI's dialect only).
///
/// With a JSON `response_format` the reply is a `StructuredReply` per choice instead
/// of words.
struct ChatRequest {
    var model: String
    var digest: PromptDigest
    var n: Int
    var seed: Int64?
    var stream: Bool
    var includeUsage: Bool
    var includeObfuscation: Bool
    var serviceTier: String
    /// Words per choice: the configured reply length, cut by the request's cap. For a
    /// structured reply, the longest choice's pieces.
    var completionTokensPerChoice: Int
    /// "length" when the cap cut the reply, else "stop".
    var finishReason: String
    /// For a JSON `response_format`: each choice's pieces (one per completion token,
    /// already cut by the cap) and finish reason; nil for a reply in words.
    var structured: [(pieces: [String], finishReason: String)]?

    /// Completion tokens of all choices together.
    var completionTokens: Int {
        structured?.reduce(0) { $0 + $1.pieces.count } ?? completionTokensPerChoice * n
    }

    /// Top-level fields of `CreateChatCompletionRequest`; anything else is rejected.
    static let knownFields: Set<String> = [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "seed",
        "response_format", "stream", "stream_options", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "stop", "tools", "tool_choice", "parallel_tool_calls", "functions",
        "function_call", "logprobs", "top_logprobs", "logit_bias", "frequency_penalty", "presence_penalty",
        "service_tier", "reasoning_effort", "store", "metadata", "user", "safety_identifier", "modalities",
        "audio", "prediction", "web_search_options", "verbosity",
    ]

    static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool", "function"]
    /// Roles whose messages must have `content` (an assistant may send tool calls instead).
    static let rolesNeedingContent: Set<String> = ["system", "developer", "user", "tool"]

    /// Validates a body already parsed as JSON (`object` is nil when it is not a JSON
    /// object).
    static func parse(
        _ object: JSONObject?, dialect: ChatDialect = .openAI, configuration: MockProviderServer.Configuration
    ) -> Result<ChatRequest, OpenAIError> {
        guard let object else {
            return .failure(
                OpenAIError(
                    message:
                        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                        + "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
                        + "not valid JSON. If you have trouble figuring out how to fix this, please contact us "
                        + "through our help center at help.openai.com.)"))
        }
        do {
            return .success(try ChatRequest(object, dialect: dialect, configuration: configuration))
        } catch {
            return .failure(error)
        }
    }

    private init(_ object: JSONObject, dialect: ChatDialect, configuration: MockProviderServer.Configuration)
        throws(OpenAIError)
    {
        if dialect == .openAI {
            for key in object.keys where !Self.knownFields.contains(key) {
                throw OpenAIError(message: "Unrecognized request argument supplied: \(key)")
            }
        }
        // model
        guard let modelValue = object["model"], modelValue != .null else { throw Self.missing("model") }
        guard let model = modelValue.stringValue else { throw Self.invalidType("model", "a string", modelValue) }
        guard !model.isEmpty else {
            throw OpenAIError(
                message:
                    "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty "
                    + "string instead.",
                param: "model", code: "empty_string")
        }
        self.model = model
        // messages
        guard let messagesValue = object["messages"], messagesValue != .null else { throw Self.missing("messages") }
        guard let messages = messagesValue.arrayValue else {
            throw Self.invalidType("messages", "an array", messagesValue)
        }
        guard !messages.isEmpty else {
            throw OpenAIError(
                message:
                    "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                    + "array instead.",
                param: "messages", code: "empty_array")
        }
        var digest = PromptDigest()
        // JSON mode needs the word "json" in the messages (OpenAI's rule).
        let needsJSONWord = dialect == .openAI && object["response_format"]?["type"] == .string("json_object")
        var mentionsJSON = false
        for (index, message) in messages.enumerated() {
            let name = "messages[\(index)]"
            guard let fields = message.objectValue else { throw Self.invalidType(name, "an object", message) }
            guard let roleValue = fields["role"], roleValue != .null else { throw Self.missing(name + ".role") }
            guard let role = roleValue.stringValue else {
                throw Self.invalidType(name + ".role", "a string", roleValue)
            }
            guard Self.roles.contains(role) else {
                throw OpenAIError(
                    message:
                        "Invalid value: '\(role)'. Supported values are: 'system', 'assistant', 'user', 'function', "
                        + "'tool', and 'developer'.",
                    param: name + ".role", code: "invalid_value")
            }
            let content = fields["content"]
            switch content {
            case nil, .null?:
                if Self.rolesNeedingContent.contains(role) { throw Self.missing(name + ".content") }
            case .string?, .array?:
                break
            case let other?:
                throw Self.invalidType(name + ".content", "one of a string or an array", other)
            }
            let text = MockReplies.messageText(content)
            if needsJSONWord, !mentionsJSON { mentionsJSON = text.lowercased().contains("json") }
            digest.add(role: role, text: text)
        }
        self.digest = digest
        // n
        let n = try Self.integer(object, "n", minimum: 1, maximum: 128) ?? 1
        self.n = Int(n)
        // caps
        let maxCompletion = try Self.integer(object, "max_completion_tokens", minimum: 1)
        let maxTokens = try Self.integer(object, "max_tokens", minimum: 1)
        let cap = maxCompletion ?? maxTokens
        let replyTokens = configuration.replyTokens
        if let cap, cap < Int64(replyTokens) {
            completionTokensPerChoice = Int(cap)
            finishReason = "length"
        } else {
            completionTokensPerChoice = replyTokens
            finishReason = "stop"
        }
        // sampling knobs: checked for range, otherwise ignored
        _ = try Self.number(object, "temperature", minimum: 0, maximum: 2)
        _ = try Self.number(object, "top_p", minimum: 0, maximum: 1)
        seed = try Self.integer(object, "seed")
        // streaming
        let streamValue = object["stream"] ?? .null
        switch streamValue {
        case .null: stream = false
        case .bool(let flag): stream = flag
        default: throw Self.invalidType("stream", "a boolean", streamValue)
        }
        includeUsage = false
        includeObfuscation = true
        if let options = object["stream_options"], options != .null, dialect == .openAI {
            guard stream else {
                throw OpenAIError(
                    message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    param: "stream_options", code: "invalid_value")
            }
            guard let fields = options.objectValue else {
                throw Self.invalidType("stream_options", "an object", options)
            }
            for key in fields.keys where key != "include_usage" && key != "include_obfuscation" {
                throw OpenAIError(
                    message: "Unrecognized request argument supplied: stream_options.\(key)",
                    param: "stream_options.\(key)")
            }
            includeUsage = try Self.boolean(fields, "include_usage", in: "stream_options") ?? false
            includeObfuscation = try Self.boolean(fields, "include_obfuscation", in: "stream_options") ?? true
        }
        // service tier: the tier that served the request ("auto" runs on "default")
        switch object["service_tier"] {
        case .string(let tier)? where ["default", "flex", "priority", "scale"].contains(tier):
            serviceTier = tier
        case nil, .null?, .string("auto")?:
            serviceTier = "default"
        case let other?:
            throw OpenAIError(
                message:
                    "Invalid value for 'service_tier': \(CanonicalJSON.string(other)). Supported values are: "
                    + "'auto', 'default', 'flex', 'scale', and 'priority'.",
                param: "service_tier", code: "invalid_value")
        }
        // structured output
        guard let format = try Self.responseFormat(object["response_format"], dialect: dialect) else { return }
        if needsJSONWord, !mentionsJSON {
            throw OpenAIError(
                message:
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                    + "'json_object'.",
                param: "messages")
        }
        let seed = self.seed
        let choices = (0..<self.n).map { choice in
            var pieces = StructuredReply.pieces(
                format, digest: digest.hash, seed: seed, choice: choice, replyWords: replyTokens)
            var finish = "stop"
            if let cap, cap < Int64(pieces.count) {
                pieces.removeLast(pieces.count - Int(cap))
                finish = "length"
            }
            return (pieces: pieces, finishReason: finish)
        }
        structured = choices
        completionTokensPerChoice = choices.map(\.pieces.count).max() ?? 0
        finishReason = choices.first?.finishReason ?? "stop"
    }

    /// The reply format `response_format` asks for; nil for plain text.
    private static func responseFormat(_ value: JSONValue?, dialect: ChatDialect) throws(OpenAIError)
        -> StructuredReply.Format?
    {
        guard let value, value != .null else { return nil }
        guard let fields = value.objectValue else { throw invalidType("response_format", "an object", value) }
        guard let typeValue = fields["type"], typeValue != .null else { throw missing("response_format.type") }
        guard let type = typeValue.stringValue else {
            throw invalidType("response_format.type", "a string", typeValue)
        }
        switch (type, dialect) {
        case ("text", _):
            return nil
        case ("json_object", .openAI):
            return .object
        case ("json_object", .together), ("json_schema", .together):
            // Together's own form puts the schema at the top; it also takes OpenAI's.
            let schema = fields["schema"] ?? fields["json_schema"]?["schema"]
            return schema?.objectValue != nil ? .schema(schema!) : .object
        case ("json_schema", .openAI):
            guard let spec = fields["json_schema"], spec != .null else {
                throw missing("response_format.json_schema")
            }
            guard let specFields = spec.objectValue else {
                throw invalidType("response_format.json_schema", "an object", spec)
            }
            guard let nameValue = specFields["name"], nameValue != .null else {
                throw missing("response_format.json_schema.name")
            }
            guard let name = nameValue.stringValue else {
                throw invalidType("response_format.json_schema.name", "a string", nameValue)
            }
            let allowed = name.utf8.allSatisfy { byte in
                byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || (byte >= 48 && byte <= 57)
                    || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
            }
            guard allowed, !name.isEmpty, name.utf8.count <= 64 else {
                throw OpenAIError(
                    message:
                        "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a "
                        + "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                    param: "response_format.json_schema.name", code: "invalid_value")
            }
            guard let schema = specFields["schema"], schema != .null else { return .object }
            guard schema.objectValue != nil else {
                throw invalidType("response_format.json_schema.schema", "an object", schema)
            }
            return .schema(schema)
        case (_, .openAI):
            throw OpenAIError(
                message: "Invalid value: '\(type)'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                param: "response_format.type", code: "invalid_value")
        case (_, .together):
            // `regex` (and anything newer): answered with plain words.
            return nil
        }
    }

    // MARK: - Field checks

    private static func missing(_ param: String) -> OpenAIError {
        OpenAIError(
            message: "Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
    }

    private static func invalidType(_ param: String, _ expected: String, _ value: JSONValue) -> OpenAIError {
        let got: String
        switch value {
        case .int: got = "an integer"
        case .double: got = "a decimal"
        default: got = value.kindDescription
        }
        return OpenAIError(
            message: "Invalid type for '\(param)': expected \(expected), but got \(got) instead.", param: param,
            code: "invalid_type")
    }

    private static func integer(_ object: JSONObject, _ name: String, minimum: Int64? = nil, maximum: Int64? = nil)
        throws(OpenAIError) -> Int64?
    {
        guard let value = object[name], value != .null else { return nil }
        guard let number = value.intValue else { throw invalidType(name, "an integer", value) }
        if let minimum, number < minimum {
            throw OpenAIError(
                message:
                    "Invalid '\(name)': integer below minimum value. Expected a value >= \(minimum), but got "
                    + "\(number) instead.",
                param: name, code: "integer_below_min_value")
        }
        if let maximum, number > maximum {
            throw OpenAIError(
                message:
                    "Invalid '\(name)': integer above maximum value. Expected a value <= \(maximum), but got "
                    + "\(number) instead.",
                param: name, code: "integer_above_max_value")
        }
        return number
    }

    private static func number(_ object: JSONObject, _ name: String, minimum: Double, maximum: Double)
        throws(OpenAIError) -> Double?
    {
        guard let value = object[name], value != .null else { return nil }
        guard let number = value.doubleValue else { throw invalidType(name, "a number", value) }
        if number < minimum {
            throw OpenAIError(
                message:
                    "Invalid '\(name)': decimal below minimum value. Expected a value >= \(minimum), but got "
                    + "\(number) instead.",
                param: name, code: "decimal_below_min_value")
        }
        if number > maximum {
            throw OpenAIError(
                message:
                    "Invalid '\(name)': decimal above maximum value. Expected a value <= \(maximum), but got "
                    + "\(number) instead.",
                param: name, code: "decimal_above_max_value")
        }
        return number
    }

    private static func boolean(_ object: JSONObject, _ name: String, in parent: String) throws(OpenAIError) -> Bool? {
        guard let value = object[name], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw invalidType(parent + "." + name, "a boolean", value) }
        return flag
    }
}
