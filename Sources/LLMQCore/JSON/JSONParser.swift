/// A strict JSON parser over UTF-8 bytes (RFC 8259) that reports where input is wrong.
///
/// Written for `llmq submit`, which must name the line and column of a bad byte, tell
/// invalid UTF-8 apart from bad syntax, reject duplicate object keys, and parse
/// hundreds of thousands of lines a second. Numbers are normalised as `JSONValue`
/// documents.
public struct JSONParser {
    /// Why a text is not valid JSON, and where (0-based byte offset into the input).
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            case syntax
            case invalidUTF8
        }
        public var kind: Kind
        public var offset: Int
        public var message: String
        public var description: String { "\(message) at byte \(offset)" }
    }

    /// Nesting deeper than this is rejected rather than risking the stack.
    public static let maximumDepth = 256

    /// Parses one complete JSON text. Leading and trailing whitespace is allowed.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(Error) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < parser.bytes.count {
            throw parser.unexpected("after the end of the JSON value")
        }
        return value
    }

    /// Parses one complete JSON text from a byte array.
    public static func parse(_ bytes: [UInt8]) throws(Error) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { buffer in try parse(buffer) }
        } catch let error as Error {
            throw error
        } catch {
            fatalError("unreachable")
        }
    }

    /// Parses one complete JSON text from a string.
    public static func parse(_ text: String) throws(Error) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private func unexpected(_ context: String) -> Error {
        guard index < bytes.count else {
            return Error(kind: .syntax, offset: index, message: "unexpected end of input \(context)")
        }
        let byte = bytes[index]
        if byte >= 0x80 {
            if isValidUTF8Sequence(at: index) {
                return Error(
                    kind: .syntax, offset: index,
                    message: "unexpected character \(quotedCharacter(at: index)) \(context)")
            }
            return Error(kind: .invalidUTF8, offset: index, message: "invalid UTF-8 byte 0x\(hex(byte))")
        }
        return Error(kind: .syntax, offset: index, message: "unexpected \(describe(byte)) \(context)")
    }

    private func describe(_ byte: UInt8) -> String {
        if byte < 0x20 || byte == 0x7F { return "control character 0x\(hex(byte))" }
        return "'\(Character(Unicode.Scalar(byte)))'"
    }

    private func quotedCharacter(at offset: Int) -> String {
        let length = utf8SequenceLength(bytes[offset])
        let end = min(offset + length, bytes.count)
        return "'" + String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self) + "'"
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }

    private mutating func parseValue(depth: Int) throws(Error) -> JSONValue {
        guard index < bytes.count else { throw unexpected("where a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw unexpected("where a value was expected")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Error) {
        let start = index
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { expected -> Bool in
            guard start + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[start + offset] != expected[offset] { return false }
            return true
        }
        guard matches else {
            throw Error(kind: .syntax, offset: start, message: "invalid literal (expected '\(literal)')")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(Error) -> JSONValue {
        guard depth <= Self.maximumDepth else {
            throw Error(kind: .syntax, offset: index, message: "nesting deeper than \(Self.maximumDepth) levels")
        }
        index += 1  // {
        var members = JSONObject(minimumCapacity: 8)
        var seenKeys: Set<[UInt8]>?  // only for large objects, where scanning would be slow
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw unexpected("where an object key was expected")
            }
            let keyOffset = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw unexpected("after an object key (expected ':')")
            }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            // Keys are compared by their bytes: String's == would call two spellings of
            // "é" (precomposed and combining) the same key, but they are different JSON.
            if members.count == 16 { seenKeys = Set(members.keys.map { Array($0.utf8) }) }
            let isDuplicate: Bool
            if seenKeys != nil {
                isDuplicate = !seenKeys!.insert(Array(key.utf8)).inserted
            } else {
                isDuplicate = members.contains { sameBytes($0.key, key) }
            }
            if isDuplicate {
                throw Error(kind: .syntax, offset: keyOffset, message: "duplicate key \"\(key)\"")
            }
            members.appendUnchecked(key, value)
            skipWhitespace()
            guard index < bytes.count else { throw unexpected("in an object (expected ',' or '}')") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            throw unexpected("in an object (expected ',' or '}')")
        }
    }

    private mutating func parseArray(depth: Int) throws(Error) -> JSONValue {
        guard depth <= Self.maximumDepth else {
            throw Error(kind: .syntax, offset: index, message: "nesting deeper than \(Self.maximumDepth) levels")
        }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw unexpected("in an array (expected ',' or ']')") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            throw unexpected("in an array (expected ',' or ']')")
        }
    }

    private mutating func parseString() throws(Error) -> String {
        index += 1  // opening quote
        let start = index
        var asciiOnly = true
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if asciiOnly { return String(decoding: slice, as: UTF8.self) }
                return try validatedString(slice, startingAt: start)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 {
                throw Error(
                    kind: .syntax, offset: index,
                    message: "unescaped control character 0x\(hex(byte)) in a string")
            }
            if byte >= 0x80 { asciiOnly = false }
            index += 1
        }
        guard index < bytes.count else {
            throw Error(kind: .syntax, offset: start - 1, message: "unterminated string")
        }
        // Slow path: the string has escapes.
        var buffer = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                if !asciiOnly {
                    // Escapes are ASCII and decode to valid scalars, so the raw bytes
                    // are valid UTF-8 exactly when the result is; checking them finds
                    // the offset of the bad byte.
                    _ = try validatedString(
                        UnsafeRawBufferPointer(rebasing: bytes[start..<index - 1]), startingAt: start)
                }
                return String(decoding: buffer, as: UTF8.self)
            }
            if byte < 0x20 {
                throw Error(
                    kind: .syntax, offset: index,
                    message: "unescaped control character 0x\(hex(byte)) in a string")
            }
            if byte >= 0x80 { asciiOnly = false }
            if byte != UInt8(ascii: "\\") {
                buffer.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): buffer.append(0x22)
            case UInt8(ascii: "\\"): buffer.append(0x5C)
            case UInt8(ascii: "/"): buffer.append(0x2F)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                let escapeOffset = index - 2
                var scalarValue = try parseHex4()
                if (0xD800...0xDBFF).contains(scalarValue) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else {
                        throw Error(kind: .syntax, offset: escapeOffset, message: "unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Error(kind: .syntax, offset: escapeOffset, message: "unpaired surrogate in \\u escape")
                    }
                    scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalarValue) {
                    throw Error(kind: .syntax, offset: escapeOffset, message: "unpaired surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(scalarValue) else {
                    throw Error(kind: .syntax, offset: escapeOffset, message: "invalid \\u escape")
                }
                buffer.append(contentsOf: UTF8.encode(scalar)!)
            default:
                index -= 2
                throw Error(kind: .syntax, offset: index, message: "invalid escape sequence in a string")
            }
        }
        throw Error(kind: .syntax, offset: start - 1, message: "unterminated string")
    }

    private mutating func parseHex4() throws(Error) -> UInt32 {
        guard index + 4 <= bytes.count else {
            throw Error(kind: .syntax, offset: index, message: "incomplete \\u escape")
        }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Error(kind: .syntax, offset: index, message: "invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Decodes bytes already known to contain non-ASCII, rejecting invalid UTF-8 with
    /// the offset of the first bad byte. `start` is the slice's offset in the input.
    private func validatedString(_ slice: UnsafeRawBufferPointer, startingAt start: Int) throws(Error) -> String {
        if let string = String(validating: slice, as: UTF8.self) { return string }
        var offset = 0
        while offset < slice.count {
            let length = utf8SequenceLength(slice[offset])
            if length == 0 || !isValidUTF8Sequence(in: slice, at: offset, length: length) {
                break
            }
            offset += length
        }
        throw Error(kind: .invalidUTF8, offset: start + offset, message: "invalid UTF-8 in a string")
    }

    private func isValidUTF8Sequence(at offset: Int) -> Bool {
        let length = utf8SequenceLength(bytes[offset])
        return length > 0 && isValidUTF8Sequence(in: bytes, at: offset, length: length)
    }

    private func isValidUTF8Sequence(in buffer: UnsafeRawBufferPointer, at offset: Int, length: Int) -> Bool {
        guard offset + length <= buffer.count else { return false }
        return String(validating: UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + length]), as: UTF8.self)
            != nil
    }

    private func utf8SequenceLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return 2
        case 0xE0...0xEF: return 3
        case 0xF0...0xF4: return 4
        default: return 0
        }
    }

    private mutating func parseNumber() throws(Error) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else {
            throw Error(kind: .syntax, offset: start, message: "invalid number")
        }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) {
                throw Error(kind: .syntax, offset: start, message: "invalid number (leading zero)")
            }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else {
                throw Error(kind: .syntax, offset: start, message: "invalid number (no digits after '.')")
            }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else {
                throw Error(kind: .syntax, offset: start, message: "invalid number (no digits in exponent)")
            }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else {
            throw Error(kind: .syntax, offset: start, message: "number out of range")
        }
        return .number(value)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
