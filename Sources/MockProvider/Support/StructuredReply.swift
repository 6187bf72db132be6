import LLMQCore

/// Replies to requests that ask for JSON (structured outputs): a deterministic JSON
/// value that fits the request's schema, as the providers guarantee with a strict
/// schema, so a client that parses the reply into its own types works.
///
/// - A schema is read as JSON Schema, and also as Gemini's OpenAPI subset (types in
///   upper case, `nullable`, `propertyOrdering`): `$ref` into `$defs`/`definitions`,
///   `const`, `enum`, `anyOf`/`oneOf` (the first option that is not null), `allOf`
///   (merged), `type` (the first that is not `null`), objects (every property, in
///   the schema's order), arrays (1 to 3 items within `minItems`/`maxItems`),
///   strings (one to three reply words; `format` date, date-time, time, email, uri
///   and uuid; `minLength`/`maxLength`), integers and numbers (within the bounds),
///   booleans. `pattern` and `multipleOf` are not honoured.
/// - Without a schema the reply is `{"reply":"…"}` with the configured number of
///   reply words.
/// - Values are drawn from a generator seeded like `MockReplies` (messages, `seed`,
///   choice), so the same request gets the same JSON.
///
/// The JSON text is compact and split into pieces of up to four characters, one
/// completion token each (the prompt side counts four bytes a token too); a cap
/// cuts the pieces, leaving the JSON unfinished as a real cut reply is.
enum StructuredReply {
    enum Format: Sendable, Equatable {
        /// Any JSON object: OpenAI's and Together's `json_object`, Gemini's
        /// `application/json` without a schema.
        case object
        /// A value that fits the schema.
        case schema(JSONValue)
        /// One of the schema's `enum` values as plain text (Gemini's `text/x.enum`).
        case enumText(JSONValue)
    }

    /// Characters in a piece, one completion token each.
    static let charactersPerToken = 4
    /// Below this depth every property and item is written; deeper, only required
    /// properties and `minItems` items, so a recursive schema ends.
    static let maximumDepth = 8

    /// The reply's pieces, one per completion token; joined they are the reply text.
    static func pieces(_ format: Format, digest: UInt64, seed: Int64?, choice: Int, replyWords: Int) -> [String] {
        split(text(format, digest: digest, seed: seed, choice: choice, replyWords: replyWords))
    }

    /// The whole reply text.
    static func text(_ format: Format, digest: UInt64, seed: Int64?, choice: Int, replyWords: Int) -> String {
        var builder = Builder(random: MockReplies.generator(digest: digest, seed: seed, choice: choice))
        switch format {
        case .object:
            let words = MockReplies.text(digest: digest, seed: seed, tokens: replyWords, choice: choice)
            return encode(.object(["reply": .string(words)]))
        case .schema(let schema):
            builder.root = schema
            return encode(builder.value(for: schema, depth: 0))
        case .enumText(let schema):
            guard let values = schema["enum"]?.arrayValue, !values.isEmpty else { return "" }
            let value = values[builder.pick(values.count)]
            return value.stringValue ?? encode(value)
        }
    }

    /// The text in pieces of up to `charactersPerToken` characters.
    static func split(_ text: String) -> [String] {
        var pieces: [String] = []
        pieces.reserveCapacity(text.utf8.count / charactersPerToken + 1)
        var piece = ""
        var count = 0
        for character in text {
            piece.append(character)
            count += 1
            if count == charactersPerToken {
                pieces.append(piece)
                piece = ""
                count = 0
            }
        }
        if !piece.isEmpty { pieces.append(piece) }
        return pieces
    }

    /// Compact JSON with object members in their order (the canonical form sorts them).
    static func encode(_ value: JSONValue) -> String {
        var bytes: [UInt8] = []
        write(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func write(_ value: JSONValue, to bytes: inout [UInt8]) {
        switch value {
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                CanonicalJSON.writeString(member.key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                write(member.value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        default:
            CanonicalJSON.write(value, to: &bytes)
        }
    }

    /// Walks a schema, drawing values from the seeded generator.
    private struct Builder {
        var random: SplitMix64
        var root: JSONValue = .null

        mutating func pick(_ count: Int) -> Int {
            Int(random.next() % UInt64(max(1, count)))
        }

        mutating func value(for schema: JSONValue, depth: Int) -> JSONValue {
            guard let object = schema.objectValue else {
                // `true` (anything) or `false` (nothing): a string, or null.
                return schema == .bool(false) ? .null : .string(words(1))
            }
            if let reference = object["$ref"]?.stringValue {
                guard depth < 2 * StructuredReply.maximumDepth, let target = resolve(reference) else { return .null }
                return value(for: target, depth: depth + 1)
            }
            if let constant = object["const"] { return constant }
            if let values = object["enum"]?.arrayValue, !values.isEmpty { return values[pick(values.count)] }
            for key in ["anyOf", "oneOf"] {
                if let options = object[key]?.arrayValue, !options.isEmpty {
                    let option = options.first { !Self.isNull($0) } ?? options[0]
                    return value(for: option, depth: depth + 1)
                }
            }
            if let parts = object["allOf"]?.arrayValue, !parts.isEmpty {
                return value(for: .object(merge(parts, into: object)), depth: depth + 1)
            }
            switch Self.typeName(object) {
            case "object": return objectValue(object, depth: depth)
            case "array": return arrayValue(object, depth: depth)
            case "integer": return integerValue(object)
            case "number": return numberValue(object)
            case "boolean": return .bool(random.next() & 1 == 1)
            case "null": return .null
            default: return stringValue(object)
            }
        }

        /// The first type that is not null, in lower case (Gemini writes `OBJECT`);
        /// without one, what the keywords imply.
        static func typeName(_ object: JSONObject) -> String {
            switch object["type"] {
            case .string(let name)?:
                return name.lowercased()
            case .array(let names)?:
                let name = names.compactMap(\.stringValue).first { $0.lowercased() != "null" } ?? "null"
                return name.lowercased()
            default:
                if object["properties"] != nil || object["additionalProperties"] != nil { return "object" }
                if object["items"] != nil || object["prefixItems"] != nil { return "array" }
                return "string"
            }
        }

        static func isNull(_ schema: JSONValue) -> Bool {
            guard let object = schema.objectValue else { return false }
            return typeName(object) == "null" && object["type"] != nil
        }

        /// `#/$defs/Name`, `#/definitions/Name`, or any `#/a/b` path into the root.
        func resolve(_ reference: String) -> JSONValue? {
            guard reference.hasPrefix("#") else { return nil }
            var node = root
            for part in reference.dropFirst().split(separator: "/") {
                let key = String(part).replacing("~1", with: "/").replacing("~0", with: "~")
                guard let next = node[key] else { return nil }
                node = next
            }
            return node
        }

        /// `allOf`: the parts' properties and required lists joined with the schema's own.
        func merge(_ parts: [JSONValue], into schema: JSONObject) -> JSONObject {
            var merged = schema
            _ = merged.removeValue(forKey: "allOf")
            var properties = schema["properties"]?.objectValue ?? JSONObject()
            var required = schema["required"]?.arrayValue ?? []
            for part in parts {
                let resolved = part["$ref"]?.stringValue.flatMap(resolve) ?? part
                guard let object = resolved.objectValue else { continue }
                for (key, value) in object {
                    switch key {
                    case "properties":
                        for member in value.objectValue ?? JSONObject() where properties[member.key] == nil {
                            _ = properties.updateValue(member.value, forKey: member.key)
                        }
                    case "required":
                        required += value.arrayValue ?? []
                    default:
                        if merged[key] == nil { _ = merged.updateValue(value, forKey: key) }
                    }
                }
            }
            if !properties.isEmpty { _ = merged.updateValue(.object(properties), forKey: "properties") }
            if !required.isEmpty { _ = merged.updateValue(.array(required), forKey: "required") }
            return merged
        }

        mutating func objectValue(_ object: JSONObject, depth: Int) -> JSONValue {
            let properties = object["properties"]?.objectValue ?? JSONObject()
            var keys = properties.keys
            let ordering = (object["propertyOrdering"] ?? object["property_ordering"])?.arrayValue
            if let order = ordering?.compactMap(\.stringValue) {
                keys = order.filter { properties[$0] != nil } + keys.filter { !order.contains($0) }
            }
            if depth >= StructuredReply.maximumDepth {
                let required = Set((object["required"]?.arrayValue ?? []).compactMap(\.stringValue))
                keys = keys.filter(required.contains)
            }
            var result = JSONObject(minimumCapacity: keys.count)
            for key in keys {
                _ = result.updateValue(value(for: properties[key]!, depth: depth + 1), forKey: key)
            }
            if properties.isEmpty, let extra = object["additionalProperties"], extra.objectValue != nil {
                _ = result.updateValue(value(for: extra, depth: depth + 1), forKey: words(1))
            }
            return .object(result)
        }

        mutating func arrayValue(_ object: JSONObject, depth: Int) -> JSONValue {
            let minimum = Int(object["minItems"].flatMap(Self.integer) ?? 0)
            let maximum = Int(object["maxItems"].flatMap(Self.integer) ?? Int64(max(minimum, 3)))
            var count = depth >= StructuredReply.maximumDepth ? minimum : 1 + pick(3)
            count = min(max(count, minimum), max(minimum, maximum))
            let prefix = object["prefixItems"]?.arrayValue ?? []
            let items = object["items"] ?? .bool(true)
            var result: [JSONValue] = []
            result.reserveCapacity(count)
            for index in 0..<count {
                result.append(value(for: index < prefix.count ? prefix[index] : items, depth: depth + 1))
            }
            return .array(result)
        }

        mutating func integerValue(_ object: JSONObject) -> JSONValue {
            var low = object["minimum"].flatMap(Self.number).map { Int64($0.rounded(.up)) }
            if let bound = object["exclusiveMinimum"].flatMap(Self.number) {
                low = max(low ?? .min, Int64(bound.rounded(.down)) + 1)
            }
            var high = object["maximum"].flatMap(Self.number).map { Int64($0.rounded(.down)) }
            if let bound = object["exclusiveMaximum"].flatMap(Self.number) {
                high = min(high ?? .max, Int64(bound.rounded(.up)) - 1)
            }
            let lower = low ?? min(0, high ?? 0)
            let upper = max(lower, high ?? lower.addingReportingOverflow(100).partialValue)
            let span = UInt64(bitPattern: upper &- lower)
            let offset = span == .max ? random.next() : random.next() % (span + 1)
            return .int(lower &+ Int64(bitPattern: offset))
        }

        mutating func numberValue(_ object: JSONObject) -> JSONValue {
            let lower = (object["minimum"] ?? object["exclusiveMinimum"]).flatMap(Self.number) ?? 0
            let upper = max(
                lower, (object["maximum"] ?? object["exclusiveMaximum"]).flatMap(Self.number) ?? lower + 100)
            // Two decimals, kept strictly inside exclusive bounds by staying off the ends.
            let unit = 0.05 + 0.9 * random.nextUnit()
            let value = ((lower + (upper - lower) * unit) * 100).rounded() / 100
            return .number(min(max(value, lower), upper))
        }

        mutating func stringValue(_ object: JSONObject) -> JSONValue {
            var text: String
            switch object["format"]?.stringValue {
            case "date-time"?: text = "2025-0\(1 + pick(9))-1\(pick(10))T12:\(10 + pick(50)):00Z"
            case "date"?: text = "2025-0\(1 + pick(9))-1\(pick(10))"
            case "time"?: text = "12:\(10 + pick(50)):00"
            case "email"?: text = words(1) + "@example.com"
            case "uri"?, "url"?: text = "https://example.com/" + words(1)
            case "uuid"?:
                var hex = ByteWriter(capacity: 36)
                hex.writeHexadecimal(random.next(), minimumDigits: 16)
                hex.writeHexadecimal(random.next(), minimumDigits: 16)
                let digits = Array(hex.bytes)
                text = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32]
                    .map { String(decoding: digits[$0], as: UTF8.self) }.joined(separator: "-")
            default: text = words(1 + pick(3))
            }
            if let minimum = object["minLength"].flatMap(Self.integer) {
                while text.count < Int(minimum) { text += " " + words(1) }
            }
            if let maximum = object["maxLength"].flatMap(Self.integer), text.count > Int(maximum) {
                text = String(text.prefix(Int(max(0, maximum))))
            }
            return .string(text)
        }

        mutating func words(_ count: Int) -> String {
            (0..<count).map { _ in MockReplies.words[pick(MockReplies.words.count)] }.joined(separator: " ")
        }

        /// A bound given as a number, or as a string of digits (Gemini's int64 fields).
        static func number(_ value: JSONValue) -> Double? {
            value.doubleValue ?? value.stringValue.flatMap(Double.init)
        }

        static func integer(_ value: JSONValue) -> Int64? {
            number(value).map { Int64($0) }
        }
    }
}
