/// Turns input lines into `SubmittedRequest`s, auto-detecting the format of each line.
///
/// Two formats are accepted:
/// - the OpenAI Batch format, `{"custom_id", "method":"POST",
///   "url":"/v1/chat/completions", "body":{model, messages, …}}`, recognised by a
///   `body`, `method` or `url` key; unknown body fields pass through to the provider;
/// - the simple format, `{"custom_id"?, "model"?, "prompt" | "messages", "system"?,
///   "max_tokens"?, "temperature"?, "top_p"?, "stop"?, "seed"?, "response_format"?,
///   "metadata"?}`, where any other key is an error so that typos do not pass.
public struct RequestParser: Sendable {
    /// The model for lines that name none (`llmq submit --model`).
    public var defaultModel: String?

    public init(defaultModel: String? = nil) {
        self.defaultModel = defaultModel
    }

    static let simpleFields: Set<String> = [
        "custom_id", "model", "prompt", "messages", "system", "max_tokens", "temperature", "top_p", "stop",
        "seed", "response_format", "metadata",
    ]
    static let batchFields: Set<String> = ["custom_id", "method", "url", "body"]
    static let roles = ["assistant", "developer", "system", "tool", "user"]

    /// The custom_id a line without one gets.
    public static func defaultCustomID(line: Int) -> String { "line-\(line)" }

    /// Parses one line (without its newline). `number` is its 1-based line number.
    public func parse(line: UnsafeRawBufferPointer, number: Int) -> Result<SubmittedRequest, InputProblem> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            let column = Self.characterColumn(in: line, offset: error.offset)
            let what = error.kind == .invalidUTF8 ? "invalid UTF-8" : "not valid JSON"
            let detail =
                error.kind == .invalidUTF8 && error.message.hasPrefix("invalid UTF-8") ? "" : " (\(error.message))"
            return .failure(InputProblem(line: number, column: column, message: what + detail))
        }
        guard case .object(let object) = value else {
            return .failure(InputProblem(line: number, message: "expected a JSON object, got \(value.kindDescription)"))
        }
        var context = LineContext(number: number, lineLength: line.count)
        do {
            if object["body"] != nil || object["method"] != nil || object["url"] != nil {
                return .success(try parseBatchLine(object, &context))
            }
            return .success(try parseSimpleLine(object, &context))
        } catch {
            return .failure(error)
        }
    }

    /// Parses one line given as a string (for tests and small inputs).
    public func parse(line: String, number: Int) -> Result<SubmittedRequest, InputProblem> {
        var text = line
        return text.withUTF8 { parse(line: UnsafeRawBufferPointer($0), number: number) }
    }

    struct LineContext {
        var number: Int
        /// Bytes in the line: the canonical request is about as long.
        var lineLength: Int
        var customID: String?

        func problem(_ field: String?, _ message: String) -> InputProblem {
            InputProblem(line: number, field: field, customID: customID, message: message)
        }
    }

    private func parseSimpleLine(_ object: JSONObject, _ context: inout LineContext) throws(InputProblem)
        -> SubmittedRequest
    {
        // One pass over the members: lookups by key would scan them again and again.
        var body = JSONObject(minimumCapacity: object.count + 1)
        var idValue: JSONValue?
        var prompt: JSONValue?
        var given: JSONValue?
        var system: JSONValue?
        var metadataValue: JSONValue?
        var firstUnknown: String?
        for member in object {
            switch member.key {
            case "custom_id": idValue = member.value
            case "prompt": prompt = member.value
            case "messages": given = member.value
            case "system": system = member.value
            case "metadata": metadataValue = member.value
            case "model", "max_tokens", "temperature", "top_p", "stop", "seed", "response_format":
                body.appendUnchecked(member.key, member.value)
            default:
                if firstUnknown == nil || member.key.utf8.lexicographicallyPrecedes(firstUnknown!.utf8) {
                    firstUnknown = member.key
                }
            }
        }
        context.customID =
            try customID(idValue, required: false, &context) ?? Self.defaultCustomID(line: context.number)
        if let unknown = firstUnknown {
            var message = "unknown field"
            if let suggestion = Self.suggestion(for: unknown, among: Self.simpleFields) {
                message += " (did you mean \"\(suggestion)\"?)"
            }
            message += "; the simple format accepts " + Self.simpleFields.sorted().joined(separator: ", ")
            throw context.problem(unknown, message)
        }
        var messages: [JSONValue] = []
        if let system {
            guard case .string(let text) = system else {
                throw context.problem("system", "expected a string, got \(system.kindDescription)")
            }
            messages.append(.object(["role": .string("system"), "content": .string(text)]))
        }
        switch (prompt, given) {
        case (nil, nil):
            throw context.problem(nil, "no prompt: give \"prompt\" (a string) or \"messages\" (an array)")
        case (.some, .some):
            throw context.problem("prompt", "give \"prompt\" or \"messages\", not both")
        case (.some(let prompt), nil):
            guard case .string(let text) = prompt else {
                throw context.problem("prompt", "expected a string, got \(prompt.kindDescription)")
            }
            guard !text.isEmpty else { throw context.problem("prompt", "the prompt is empty") }
            messages.append(.object(["role": .string("user"), "content": .string(text)]))
        case (nil, .some(let given)):
            guard case .array(let list) = given else {
                throw context.problem("messages", "expected an array of messages, got \(given.kindDescription)")
            }
            messages.append(contentsOf: list)
        }
        body.appendUnchecked("messages", .array(messages))
        var metadata: [UInt8]?
        if let metadataValue {
            guard case .object = metadataValue else {
                throw context.problem("metadata", "expected an object, got \(metadataValue.kindDescription)")
            }
            metadata = CanonicalJSON.encode(metadataValue)
        }
        // Paths name the user's own messages: a system message we added comes first.
        let messageOffset = system != nil && given != nil ? 1 : 0
        return try normalise(body: body, fieldPrefix: "", messageOffset: messageOffset, metadata: metadata, &context)
    }

    private func parseBatchLine(_ object: JSONObject, _ context: inout LineContext) throws(InputProblem)
        -> SubmittedRequest
    {
        context.customID = try customID(object["custom_id"], required: true, &context)
        if let unknown = object.keys.filter({ !Self.batchFields.contains($0) }).sorted().first {
            throw context.problem(
                unknown, "unknown field; an OpenAI Batch line has custom_id, method, url and body")
        }
        guard case .string(let method) = object["method"] ?? .null, method == "POST" else {
            throw context.problem("method", "expected \"POST\"")
        }
        guard case .string(let url) = object["url"] ?? .null else {
            throw context.problem("url", "expected \"/v1/chat/completions\"")
        }
        guard url == "/v1/chat/completions" else {
            throw context.problem(
                "url", "llmq runs chat completions only: expected \"/v1/chat/completions\", got \"\(url)\"")
        }
        guard let bodyValue = object["body"] else { throw context.problem("body", "missing: the request body") }
        guard case .object(var body) = bodyValue else {
            throw context.problem("body", "expected an object, got \(bodyValue.kindDescription)")
        }
        if let completionCap = body.removeValue(forKey: "max_completion_tokens") {
            if body["max_tokens"] != nil {
                throw context.problem(
                    "body.max_completion_tokens", "give max_tokens or max_completion_tokens, not both")
            }
            body["max_tokens"] = completionCap
        }
        guard body["messages"] != nil else {
            throw context.problem("body.messages", "missing: a batch line's body needs \"messages\"")
        }
        return try normalise(body: body, fieldPrefix: "body.", messageOffset: 0, metadata: nil, &context)
    }

    private func customID(_ value: JSONValue?, required: Bool, _ context: inout LineContext) throws(InputProblem)
        -> String?
    {
        guard let value else {
            if required { throw context.problem("custom_id", "missing: every OpenAI Batch line needs a custom_id") }
            return nil
        }
        guard case .string(let id) = value else {
            throw context.problem("custom_id", "expected a string, got \(value.kindDescription)")
        }
        guard !id.isEmpty else { throw context.problem("custom_id", "is empty") }
        guard id.utf8.count <= 512 else { throw context.problem("custom_id", "longer than 512 bytes") }
        return id
    }

    /// Checks the shared fields of a body and builds the canonical request, in one
    /// pass over the body's members.
    private func normalise(
        body: JSONObject, fieldPrefix prefix: String, messageOffset: Int, metadata: [UInt8]?,
        _ context: inout LineContext
    ) throws(InputProblem) -> SubmittedRequest {
        var canonicalBody = JSONObject(minimumCapacity: body.count)
        var modelValue: JSONValue?
        var messages: JSONValue = .null
        var maxTokens: Int?
        for member in body {
            let value = member.value
            switch member.key {
            case "stream", "stream_options":
                continue  // how llmq transports an answer does not change it
            case "model":
                modelValue = value
                continue  // added below, aliases resolved
            case "messages":
                messages = value
            case "max_tokens":
                guard case .int(let cap) = value, cap >= 1, cap <= Int64(Int32.max) else {
                    throw context.problem(
                        prefix + "max_tokens", "expected a whole number of at least 1, got \(Self.show(value))")
                }
                maxTokens = Int(cap)
            case "temperature":
                try checkNumber(value, in: 0...2, field: prefix + "temperature", context)
            case "top_p":
                try checkNumber(value, in: 0...1, field: prefix + "top_p", context)
            case "seed":
                if value.intValue == nil {
                    throw context.problem(prefix + "seed", "expected a whole number, got \(Self.show(value))")
                }
            case "stop":
                switch value {
                case .string, .null: break
                case .array(let items) where items.count <= 4 && items.allSatisfy({ $0.stringValue != nil }): break
                default: throw context.problem(prefix + "stop", "expected a string or an array of up to 4 strings")
                }
            case "response_format":
                try checkResponseFormat(value, field: prefix + "response_format", context)
            default:
                break
            }
            canonicalBody.appendUnchecked(member.key, value)
        }

        let modelName: String
        switch modelValue {
        case nil:
            guard let defaultModel else {
                throw context.problem(prefix + "model", "missing: add \"model\" to the line or pass --model")
            }
            modelName = defaultModel
        case .string(let name)?:
            modelName = name
        case let other?:
            throw context.problem(prefix + "model", "expected a string, got \(other.kindDescription)")
        }
        guard let route = ModelRouter.route(modelName) else {
            throw context.problem(
                prefix + "model", "no provider serves model \"\(modelName)\": \(ModelRouter.servedModelsHint)")
        }
        canonicalBody.appendUnchecked("model", .string(route.model))
        let estimate = try checkMessages(messages, field: prefix + "messages", offset: messageOffset, context)

        let canonical = CanonicalJSON.encode(.object(canonicalBody), capacity: context.lineLength + 64)
        return SubmittedRequest(
            customID: context.customID!, route: route, canonical: canonical, cacheKey: CacheKey(of: canonical),
            metadata: metadata, estimatedInputTokens: estimate, maxTokens: maxTokens)
    }

    private func checkNumber(_ value: JSONValue, in range: ClosedRange<Double>, field: String, _ context: LineContext)
        throws(InputProblem)
    {
        guard let number = value.doubleValue, range.contains(number) else {
            throw context.problem(
                field,
                "expected a number from \(Self.show(.number(range.lowerBound))) to \(Self.show(.number(range.upperBound))), got \(Self.show(value))"
            )
        }
    }

    private func checkResponseFormat(_ value: JSONValue, field: String, _ context: LineContext) throws(InputProblem) {
        guard case .object(let format) = value else {
            throw context.problem(
                field, "expected an object such as {\"type\":\"json_object\"}, got \(value.kindDescription)")
        }
        switch format["type"]?.stringValue {
        case "text", "json_object": break
        case "json_schema":
            guard case .object(let schema)? = format["json_schema"], schema["name"]?.stringValue != nil else {
                throw context.problem(field + ".json_schema", "expected an object with a \"name\" and a \"schema\"")
            }
            if let inner = schema["schema"], inner.objectValue == nil {
                throw context.problem(field + ".json_schema.schema", "expected an object (a JSON Schema)")
            }
        default:
            throw context.problem(field + ".type", "expected \"text\", \"json_object\" or \"json_schema\"")
        }
    }

    /// Checks the messages and returns the estimated input tokens. `offset` messages
    /// at the front were added by llmq; paths count the caller's messages only.
    private func checkMessages(_ value: JSONValue, field: String, offset: Int, _ context: LineContext)
        throws(InputProblem) -> Int
    {
        guard case .array(let messages) = value else {
            throw context.problem(field, "expected an array of messages, got \(value.kindDescription)")
        }
        guard !messages.isEmpty else { throw context.problem(field, "is empty: give at least one message") }
        var textBytes = 0
        var sawNonSystem = false
        for (position, message) in messages.enumerated() {
            let path = position < offset ? "system" : "\(field)[\(position - offset)]"
            guard case .object(let fields) = message else {
                throw context.problem(path, "expected a message object, got \(message.kindDescription)")
            }
            guard case .string(let role)? = fields["role"] else {
                throw context.problem(path + ".role", "expected one of " + Self.roles.joined(separator: ", "))
            }
            switch role {
            case "system", "developer", "user", "assistant", "tool": break
            default:
                throw context.problem(
                    path + ".role", "unknown role \"\(role)\"; expected one of " + Self.roles.joined(separator: ", "))
            }
            if role != "system" && role != "developer" { sawNonSystem = true }
            switch fields["content"] {
            case .string(let text)?:
                textBytes += text.utf8.count
            case .array(let parts)?:
                guard !parts.isEmpty else { throw context.problem(path + ".content", "is an empty array") }
                for (partIndex, part) in parts.enumerated() {
                    guard case .object(let partFields) = part, partFields["type"]?.stringValue != nil else {
                        throw context.problem(
                            "\(path).content[\(partIndex)]",
                            "expected a content part such as {\"type\":\"text\",\"text\":…}")
                    }
                    if case .string(let text)? = partFields["text"] { textBytes += text.utf8.count }
                }
            case .null?, nil:
                guard role == "assistant", fields["tool_calls"] != nil else {
                    throw context.problem(path + ".content", "missing: a \(role) message needs content")
                }
            case let other?:
                throw context.problem(
                    path + ".content", "expected a string or an array of parts, got \(other.kindDescription)")
            }
        }
        guard sawNonSystem else {
            throw context.problem(field, "has only system messages: add a user message")
        }
        return (textBytes + 3) / 4 + 4 * messages.count
    }

    /// A short rendering of a value for messages; strings are cut so prompts do not leak.
    static func show(_ value: JSONValue) -> String {
        switch value {
        case .string(let text):
            let cut = text.count > 24 ? String(text.prefix(24)) + "…" : text
            return "\"" + cut + "\""
        case .int, .double, .bool, .null: return CanonicalJSON.string(value)
        default: return value.kindDescription
        }
    }

    /// The 1-based character column of a byte offset in a line.
    static func characterColumn(in line: UnsafeRawBufferPointer, offset: Int) -> Int {
        var column = 1
        for position in 0..<min(offset, line.count) where line[position] & 0xC0 != 0x80 { column += 1 }
        return column
    }

    /// The closest known field to a misspelt one, if close enough to be a likely typo.
    static func suggestion(for field: String, among known: Set<String>) -> String? {
        let scored = known.map { ($0, editDistance(field.lowercased(), $0)) }.min {
            $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0)
        }
        guard let (best, distance) = scored, distance <= max(2, field.count / 3) else { return nil }
        return best
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
