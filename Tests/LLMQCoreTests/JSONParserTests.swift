import LLMQCore
import Testing

@Suite struct JSONParserTests {
    // MARK: Valid documents

    struct Document: Sendable, CustomTestStringConvertible {
        var text: String
        var value: JSONValue
        var testDescription: String { text }
    }

    static let documents: [Document] = [
        Document(text: "null", value: .null),
        Document(text: "true", value: .bool(true)),
        Document(text: "false", value: .bool(false)),
        Document(text: "0", value: .int(0)),
        Document(text: "-12", value: .int(-12)),
        Document(text: #""""#, value: .string("")),
        Document(text: #""hello""#, value: .string("hello")),
        Document(text: #""héllo ✓ 😀""#, value: .string("héllo ✓ 😀")),
        Document(text: "[]", value: .array([])),
        Document(text: "{}", value: .object([:])),
        Document(text: "[ ]", value: .array([])),
        Document(text: "{ }", value: .object([:])),
        Document(
            text: #"[1,"a",null,true,false,[],{},0.5]"#,
            value: .array([
                .int(1), .string("a"), .null, .bool(true), .bool(false), .array([]), .object([:]), .double(0.5),
            ])),
        Document(
            text: #"{"a":{"b":[1,{"c":null}]},"d":"e","":0}"#,
            value: .object([
                "a": .object(["b": .array([.int(1), .object(["c": .null])])]),
                "d": .string("e"),
                "": .int(0),
            ])),
        Document(
            text: " \t\r\n{ \"k\" :\t[ 1 ,\n2 ] , \"l\" : \"v\" }\r\n ",
            value: .object(["k": .array([.int(1), .int(2)]), "l": .string("v")])),
        Document(text: "\n\"padded\"\t", value: .string("padded")),
    ]

    @Test(arguments: documents)
    func parsesValidDocument(_ document: Document) throws {
        #expect(try JSONParser.parse(document.text) == document.value)
    }

    @Test(arguments: documents)
    func everyOverloadGivesTheSameValue(_ document: Document) throws {
        let bytes = Array(document.text.utf8)
        let fromBuffer = try bytes.withUnsafeBytes { buffer in try JSONParser.parse(buffer) }
        #expect(try JSONParser.parse(bytes) == document.value)
        #expect(fromBuffer == document.value)
    }

    @Test func acceptsNestingUpToTheMaximumDepth() throws {
        let depth = JSONParser.maximumDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try JSONParser.parse(arrays)
        for _ in 1..<depth {
            let elements = try #require(value.arrayValue)
            #expect(elements.count == 1)
            value = elements[0]
        }
        #expect(value == .array([]))

        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(throws: Never.self) { try JSONParser.parse(objects) }
    }

    // MARK: Numbers

    struct NumberCase: Sendable, CustomTestStringConvertible {
        var text: String
        var value: JSONValue
        var testDescription: String { text }
    }

    @Test(arguments: [
        NumberCase(text: "1", value: .int(1)),
        NumberCase(text: "1.0", value: .int(1)),
        NumberCase(text: "1e0", value: .int(1)),
        NumberCase(text: "1E+0", value: .int(1)),
        NumberCase(text: "10e-1", value: .int(1)),
        NumberCase(text: "100E-2", value: .int(1)),
        NumberCase(text: "1.50e2", value: .int(150)),
        NumberCase(text: "0", value: .int(0)),
        NumberCase(text: "-0", value: .int(0)),
        NumberCase(text: "-0.0", value: .int(0)),
        NumberCase(text: "0e5", value: .int(0)),
        NumberCase(text: "-7", value: .int(-7)),
        NumberCase(text: "9223372036854775807", value: .int(Int64.max)),
        NumberCase(text: "-9223372036854775808", value: .int(Int64.min)),
        NumberCase(text: "0.5", value: .double(0.5)),
        NumberCase(text: "-2.5e-3", value: .double(-0.0025)),
        NumberCase(text: "1.25E1", value: .double(12.5)),
        NumberCase(text: "1e300", value: .double(1e300)),
        NumberCase(text: "9223372036854775808", value: .double(9_223_372_036_854_775_808.0)),
        NumberCase(text: "-1e19", value: .double(-1e19)),
        NumberCase(text: "123456789012345678901234567890", value: .double(1.2345678901234568e29)),
        NumberCase(text: "1e20", value: .double(1e20)),
    ])
    func normalisesNumbers(_ number: NumberCase) throws {
        #expect(try JSONParser.parse(number.text) == number.value)
        #expect(try JSONParser.parse("[\(number.text)]") == .array([number.value]))
    }

    @Test func numberBuilderNormalisesLikeTheParser() {
        #expect(JSONValue.number(1.0) == .int(1))
        #expect(JSONValue.number(-0.0) == .int(0))
        #expect(JSONValue.number(0.5) == .double(0.5))
        #expect(JSONValue.number(1e20) == .double(1e20))
    }

    // MARK: Strings and escapes

    struct EscapeCase: Sendable, CustomTestStringConvertible {
        var json: String
        var string: String
        var testDescription: String { json }
    }

    @Test(arguments: [
        EscapeCase(json: #""\"\\\/\b\f\n\r\t""#, string: "\"\\/\u{08}\u{0C}\n\r\t"),
        EscapeCase(json: #""\u0041\u00e9\u20AC""#, string: "Aé€"),
        EscapeCase(json: #""\u0000\u001F""#, string: "\u{00}\u{1F}"),
        EscapeCase(json: #""\ud83d\ude00""#, string: "😀"),
        EscapeCase(json: #""\uD834\uDD1E""#, string: "𝄞"),
        EscapeCase(json: #""a\ud83d\ude00b\uDBFF\uDFFF""#, string: "a😀b\u{10FFFF}"),
        EscapeCase(json: #""\uFFFF\uE000""#, string: "\u{FFFF}\u{E000}"),
        EscapeCase(json: #""é then \n then ✓""#, string: "é then \n then ✓"),
        EscapeCase(json: #""😀\t""#, string: "😀\t"),
    ])
    func decodesEscapes(_ escape: EscapeCase) throws {
        #expect(try JSONParser.parse(escape.json) == .string(escape.string))
    }

    @Test func decodesEscapedObjectKeys() throws {
        #expect(try JSONParser.parse(#"{"\u0061\n":1}"#) == .object(["a\n": .int(1)]))
    }

    // MARK: Errors

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var kind: JSONParser.Error.Kind
        var offset: Int
        var message: String
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ kind: JSONParser.Error.Kind = .syntax, offset: Int, _ message: String) {
            self.init(name, bytes: Array(text.utf8), kind, offset: offset, message)
        }

        init(_ name: String, bytes: [UInt8], _ kind: JSONParser.Error.Kind, offset: Int, _ message: String) {
            self.name = name
            self.bytes = bytes
            self.kind = kind
            self.offset = offset
            self.message = message
        }
    }

    static let errors: [ErrorCase] = [
        // Structure
        ErrorCase("empty input", "", offset: 0, "unexpected end of input"),
        ErrorCase("only whitespace", "  \n", offset: 3, "unexpected end of input"),
        ErrorCase(
            "trailing garbage after object", #"{"a":1} x"#, offset: 8, "unexpected 'x' after the end of the JSON value"),
        ErrorCase("trailing bracket", "[1]]", offset: 3, "unexpected ']' after the end of the JSON value"),
        ErrorCase("two values", "1 2", offset: 2, "after the end of the JSON value"),
        ErrorCase("trailing comma in array", "[1,]", offset: 3, "where a value was expected"),
        ErrorCase("trailing comma in object", #"{"a":1,}"#, offset: 7, "where an object key was expected"),
        ErrorCase("missing colon", #"{"a" 1}"#, offset: 5, "expected ':'"),
        ErrorCase("unquoted key", "{a:1}", offset: 1, "unexpected 'a' where an object key was expected"),
        ErrorCase("unclosed array", "[1,2", offset: 4, "unexpected end of input in an array"),
        ErrorCase("unclosed object", #"{"a":1"#, offset: 6, "unexpected end of input in an object"),
        ErrorCase("bad literal", "[tru]", offset: 1, "invalid literal (expected 'true')"),
        ErrorCase("capitalised literal", "Null", offset: 0, "unexpected 'N' where a value was expected"),
        ErrorCase("control character outside a string", "[\u{01}]", offset: 1, "control character 0x01"),
        // Strings
        ErrorCase("unterminated string", #""abc"#, offset: 0, "unterminated string"),
        ErrorCase("unterminated string in array", #"["abc"#, offset: 1, "unterminated string"),
        ErrorCase("unterminated string after an escape", #"{"k":"a\n"#, offset: 5, "unterminated string"),
        ErrorCase("unterminated string ending in a backslash", #""a\"#, offset: 0, "unterminated string"),
        ErrorCase("bad escape", #""ab\x""#, offset: 3, "invalid escape sequence"),
        ErrorCase("escaped single quote", #""\'""#, offset: 1, "invalid escape sequence"),
        ErrorCase("bad hex digit", #""\u12G4""#, offset: 5, "invalid hex digit"),
        ErrorCase("short \\u escape", #""\u12"#, offset: 3, "incomplete \\u escape"),
        ErrorCase("lone high surrogate", #""\ud800""#, offset: 1, "unpaired surrogate"),
        ErrorCase("lone low surrogate", #""ab\udc00""#, offset: 3, "unpaired surrogate"),
        ErrorCase("high surrogate then text", #""\uD83Dx""#, offset: 1, "unpaired surrogate"),
        ErrorCase("high surrogate then non-surrogate", #""\ud800\u0041""#, offset: 1, "unpaired surrogate"),
        ErrorCase("two high surrogates", #""\ud800\ud800""#, offset: 1, "unpaired surrogate"),
        ErrorCase("raw tab in a string", "\"a\tb\"", offset: 2, "unescaped control character 0x09"),
        ErrorCase("raw newline in a string", "[\"a\nb\"]", offset: 3, "unescaped control character 0x0A"),
        ErrorCase("raw newline after an escape", "\"\\n\n\"", offset: 3, "unescaped control character 0x0A"),
        ErrorCase("raw NUL in a string", "\"\u{00}\"", offset: 1, "unescaped control character 0x00"),
        // Numbers
        ErrorCase("leading zero", "01", offset: 0, "leading zero"),
        ErrorCase("negative leading zero", "[-012]", offset: 1, "leading zero"),
        ErrorCase("leading plus", "+1", offset: 0, "unexpected '+'"),
        ErrorCase("leading point", ".5", offset: 0, "unexpected '.'"),
        ErrorCase("lone minus", "[-]", offset: 1, "invalid number"),
        ErrorCase("no fraction digits", "1.", offset: 0, "no digits after '.'"),
        ErrorCase("no exponent digits", "[1e+]", offset: 1, "no digits in exponent"),
        ErrorCase("number too large", "1e400", offset: 0, "number out of range"),
        ErrorCase("hex number", "0x10", offset: 1, "unexpected 'x' after the end of the JSON value"),
        // Objects
        ErrorCase("duplicate key", #"{"a":1,"a":2}"#, offset: 7, #"duplicate key "a""#),
        ErrorCase("duplicate key spelt with an escape", #"{"a":1,"\u0061":2}"#, offset: 7, #"duplicate key "a""#),
        ErrorCase("nested duplicate key", #"{"x":{"b":1,"b":1}}"#, offset: 12, #"duplicate key "b""#),
        // Invalid UTF-8
        ErrorCase(
            "invalid byte in a string", bytes: [0x22, 0x61, 0xFF, 0x22], .invalidUTF8, offset: 2,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "bad continuation after valid text", bytes: [0x22, 0xC3, 0xA9, 0xC3, 0x28, 0x22], .invalidUTF8, offset: 3,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "truncated sequence in a string", bytes: [0x22, 0x61, 0xE2, 0x82, 0x22], .invalidUTF8, offset: 2,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "overlong encoding in a string", bytes: [0x5B, 0x22, 0xC0, 0xAF, 0x22, 0x5D], .invalidUTF8, offset: 2,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "encoded surrogate in a string", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22], .invalidUTF8, offset: 1,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "invalid byte in a key", bytes: [0x7B, 0x22, 0x80, 0x22, 0x3A, 0x31, 0x7D], .invalidUTF8, offset: 2,
            "invalid UTF-8 in a string"),
        ErrorCase(
            "invalid byte where a value was expected", bytes: [0x5B, 0xFF, 0x5D], .invalidUTF8, offset: 1,
            "invalid UTF-8 byte 0xFF"),
        ErrorCase(
            "invalid byte after the value", bytes: [0x7B, 0x7D, 0x20, 0xFE], .invalidUTF8, offset: 3,
            "invalid UTF-8 byte 0xFE"),
        ErrorCase(
            "truncated sequence outside a string", bytes: [0x5B, 0xE2, 0x82], .invalidUTF8, offset: 1,
            "invalid UTF-8 byte 0xE2"),
        ErrorCase(
            "valid non-ASCII outside a string", bytes: Array("[é]".utf8), .syntax, offset: 1,
            "unexpected character 'é' where a value was expected"),
    ]

    @Test(arguments: errors)
    func reportsKindAndOffset(_ expected: ErrorCase) {
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse(expected.bytes) }
        #expect(error?.kind == expected.kind)
        #expect(error?.offset == expected.offset)
        #expect(error?.message.contains(expected.message) == true, "message: \(error?.message ?? "none")")
    }

    @Test(arguments: [1, 2, 15, 16, 17, 40])
    func findsDuplicateKeysInObjectsOfAnySize(_ distinctKeys: Int) throws {
        let members = (0..<distinctKeys).map { #""k\#($0)":\#($0)"# }
        let unique = "{" + members.joined(separator: ",") + "}"
        let parsed = try #require(try JSONParser.parse(unique).objectValue)
        #expect(parsed.count == distinctKeys)
        #expect(parsed["k\(distinctKeys - 1)"] == .int(Int64(distinctKeys - 1)))

        for repeated in [0, distinctKeys - 1] {
            let prefix = "{" + members.joined(separator: ",") + ","
            let text = prefix + #""k\#(repeated)":null}"#
            let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
            #expect(error?.offset == prefix.utf8.count)
            #expect(error?.message == #"duplicate key "k\#(repeated)""#)
        }
    }

    @Test func rejectsArraysNestedBeyondTheMaximumDepth() {
        let depth = JSONParser.maximumDepth + 1
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
        #expect(error?.kind == .syntax)
        #expect(error?.offset == JSONParser.maximumDepth)
        #expect(error?.message == "nesting deeper than \(JSONParser.maximumDepth) levels")
    }

    @Test func rejectsObjectsNestedBeyondTheMaximumDepth() {
        let depth = JSONParser.maximumDepth + 1
        let opener = #"{"a":"#
        let text = String(repeating: opener, count: depth) + "1" + String(repeating: "}", count: depth)
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
        #expect(error?.kind == .syntax)
        #expect(error?.offset == JSONParser.maximumDepth * opener.utf8.count)
        #expect(error?.message.contains("nesting deeper than") == true)
    }

    @Test func rejectsDeepNestingWithoutExhaustingTheStack() {
        let text = String(repeating: "[", count: 100_000)
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
        #expect(error?.offset == JSONParser.maximumDepth)
    }

    @Test func errorDescriptionNamesTheByte() {
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse("[1,]") }
        #expect(error?.description == "unexpected ']' where a value was expected at byte 3")
    }

    @Test func invalidUTF8InAStringWithEscapesIsFoundAtItsByte() throws {
        // "\n<FF>": the bad byte is at offset 3, after the escape.
        let error = #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        #expect(error?.kind == .invalidUTF8)
        #expect(error?.offset == 3)
    }

    @Test func keysThatDifferOnlyInUnicodeNormalisationAreDifferentKeys() throws {
        // Precomposed and combining spellings of "é" are different JSON strings.
        let value = try JSONParser.parse(#"{"\#u{E9}":1,"e\#u{301}":2}"#)
        #expect(value.objectValue?.count == 2)
        #expect(CanonicalJSON.string(value) == "{\"e\u{301}\":2,\"\u{E9}\":1}")
    }
}
