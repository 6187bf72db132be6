import LLMQCore
import Testing

@Suite struct CanonicalJSONTests {
    // MARK: Structure and key order

    @Test func writesScalarsWithoutWhitespace() {
        #expect(CanonicalJSON.string(.null) == "null")
        #expect(CanonicalJSON.string(.bool(true)) == "true")
        #expect(CanonicalJSON.string(.bool(false)) == "false")
        #expect(CanonicalJSON.string(.int(0)) == "0")
        #expect(CanonicalJSON.string(.int(-42)) == "-42")
        #expect(CanonicalJSON.string(.int(Int64.max)) == "9223372036854775807")
        #expect(CanonicalJSON.string(.int(Int64.min)) == "-9223372036854775808")
        #expect(CanonicalJSON.string(.double(0.5)) == "0.5")
        #expect(CanonicalJSON.string(.double(1.0)) == "1")
        #expect(CanonicalJSON.string(.array([])) == "[]")
        #expect(CanonicalJSON.string(.object([:])) == "{}")
        #expect(
            CanonicalJSON.string(.array([.int(1), .null, .array([.bool(true)]), .string("x")]))
                == #"[1,null,[true],"x"]"#)
    }

    @Test func sortsObjectKeysAtEveryLevel() {
        let value = JSONValue.object([
            "b": .int(1),
            "a": .int(2),
            "aa": .int(3),
            "A": .int(4),
            "é": .int(5),
            "z": .int(6),
            "": .int(7),
            "nested": .array([.object(["y": .null, "x": .object(["d": .int(0), "c": .int(0)])])]),
        ])
        #expect(
            CanonicalJSON.string(value)
                == #"{"":7,"A":4,"a":2,"aa":3,"b":1,"nested":[{"x":{"c":0,"d":0},"y":null}],"z":6,"é":5}"#)
    }

    @Test func sortsKeysByUTF8BytesNotUTF16Units() {
        // U+E000 is E0 80 80 in UTF-8 and 😀 (U+1F600) is F0 9F 98 80: UTF-8 order puts
        // U+E000 first, where UTF-16 order (D83D DE00) would put the emoji first.
        let value = JSONValue.object(["😀": .int(1), "\u{E000}": .int(2)])
        #expect(CanonicalJSON.string(value) == "{\"\u{E000}\":2,\"😀\":1}")
    }

    @Test func encodeAndStringAgree() {
        let value = JSONValue.object(["k": .string("✓"), "n": .double(0.25)])
        #expect(CanonicalJSON.encode(value) == Array(CanonicalJSON.string(value).utf8))
        var output = Array("prefix:".utf8)
        CanonicalJSON.write(value, to: &output)
        #expect(String(decoding: output, as: UTF8.self) == #"prefix:{"k":"✓","n":0.25}"#)
    }

    @Test func parsedSpellingsOfOneDocumentEncodeTheSame() throws {
        let spellings = [
            #"{"b":[1,2.50,{"y":true,"x":null}],"a":"\u00e9\/"}"#,
            #" { "a" : "é/" , "b" : [ 1.0e0 , 25e-1 , { "x" : null , "y" : true } ] } "#,
        ]
        let encoded = try spellings.map { CanonicalJSON.string(try JSONParser.parse($0)) }
        #expect(encoded == Array(repeating: #"{"a":"é/","b":[1,2.5,{"x":null,"y":true}]}"#, count: 2))
        // Canonical text reads back to the same value and writes itself again.
        let reparsed = try JSONParser.parse(encoded[0])
        #expect(CanonicalJSON.string(reparsed) == encoded[0])
    }

    // MARK: Strings

    struct StringCase: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var json: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        StringCase(name: "plain ASCII", text: "hello", json: #""hello""#),
        StringCase(name: "empty", text: "", json: #""""#),
        StringCase(name: "quote", text: "a\"b", json: #""a\"b""#),
        StringCase(name: "backslash", text: "a\\b", json: #""a\\b""#),
        StringCase(name: "slash stays raw", text: "a/b</", json: #""a/b</""#),
        StringCase(name: "backspace", text: "\u{08}", json: #""\b""#),
        StringCase(name: "tab", text: "\t", json: #""\t""#),
        StringCase(name: "newline", text: "\n", json: #""\n""#),
        StringCase(name: "form feed", text: "\u{0C}", json: #""\f""#),
        StringCase(name: "carriage return", text: "\r", json: #""\r""#),
        StringCase(name: "NUL", text: "\u{00}", json: #""\u0000""#),
        StringCase(name: "U+0001", text: "\u{01}", json: #""\u0001""#),
        StringCase(name: "vertical tab", text: "\u{0B}", json: #""\u000b""#),
        StringCase(name: "escape", text: "\u{1B}", json: #""\u001b""#),
        StringCase(name: "U+001F", text: "\u{1F}", json: #""\u001f""#),
        StringCase(name: "DEL stays raw", text: "\u{7F}", json: "\"\u{7F}\""),
        StringCase(name: "non-ASCII stays raw", text: "héllo €", json: "\"héllo €\""),
        StringCase(name: "astral stays raw", text: "😀𝄞", json: "\"😀𝄞\""),
        StringCase(name: "line separator stays raw", text: "\u{2028}\u{2029}", json: "\"\u{2028}\u{2029}\""),
        StringCase(name: "mixed", text: "é\"\n\\/\u{01}x", json: #""é\"\n\\/\u0001x""#),
    ])
    func escapesOnlyQuoteBackslashAndControlCharacters(_ string: StringCase) {
        #expect(CanonicalJSON.string(.string(string.text)) == string.json)
        var output: [UInt8] = []
        CanonicalJSON.writeString(string.text, to: &output)
        #expect(output == Array(string.json.utf8))
    }

    @Test func escapesObjectKeysLikeStrings() {
        #expect(CanonicalJSON.string(.object(["a\"\n/é": .null])) == #"{"a\"\n/é":null}"#)
    }

    // MARK: Numbers

    // Each expected text is what JavaScript prints for the number (`String(x)` in node).
    @Test(
        arguments: [
            (0.1, "0.1"),
            (0.5, "0.5"),
            (-1.5, "-1.5"),
            (123.456, "123.456"),
            (4.35, "4.35"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e21, "1e+21"),
            (-1e21, "-1e+21"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e20, "100000000000000000000"),
            (1e16, "10000000000000000"),
            (1.2345678901234568e20, "123456789012345680000"),
            (1.5e300, "1.5e+300"),
            (1.23e-18, "1.23e-18"),
            (-2.5e-10, "-2.5e-10"),
            (Double.leastNonzeroMagnitude, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0x1p63, "9223372036854776000"),
            (9_007_199_254_740_992, "9007199254740992"),
            (1e18, "1000000000000000000"),
            (100, "100"),
            (-0.0, "0"),
            (0, "0"),
            (12345.678, "12345.678"),
            (0.001, "0.001"),
            (1e-5, "0.00001"),
            (2.5e-6, "0.0000025"),
            (123456789.125, "123456789.125"),
            (1e-100, "1e-100"),
            (3.4028234663852886e38, "3.4028234663852886e+38"),
            (-9.87654321e-12, "-9.87654321e-12"),
        ] as [(Double, String)])
    func formatsNumbersAsECMAScriptDoes(_ value: Double, _ expected: String) {
        #expect(CanonicalJSON.formatDouble(value) == expected)
        #expect(CanonicalJSON.string(.number(value)) == expected)
    }

    @Test(arguments: [
        0.1, 123.456, 1e21, 1e-7, 1.5e300, Double.leastNonzeroMagnitude, 0.30000000000000004, 1.2345678901234568e20,
    ])
    func formattedNumbersReadBackToTheSameDouble(_ value: Double) throws {
        let text = CanonicalJSON.formatDouble(value)
        #expect(Double(text) == value)
        #expect(try JSONParser.parse(text) == .number(value))
    }

    // MARK: SHA-256

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256MatchesNISTVectors(_ message: String, _ digest: String) {
        let bytes = Array(message.utf8)
        let hash = SHA256.hash(bytes)
        #expect(hash.count == 32)
        #expect(SHA256.hex(hash) == digest)
        #expect(bytes.withUnsafeBytes { SHA256.hash($0) } == hash)
    }

    @Test func sha256OfOneMillionAs() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(SHA256.hash(bytes)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha256InPiecesMatchesOneShotAndStartsOver() {
        let hasher = SHA256.Hasher()
        // A million a's, fed in uneven pieces.
        var fed = 0
        for size in [1, 63, 64, 65, 1_000, 4_096] + Array(repeating: 99_000, count: 10) where fed < 1_000_000 {
            let piece = min(size, 1_000_000 - fed)
            hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: piece))
            fed += piece
        }
        hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000 - fed))
        #expect(SHA256.hex(hasher.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        hasher.update(Array("abc".utf8))
        #expect(SHA256.hex(hasher.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func hexIsLowercaseAndZeroPadded() {
        #expect(SHA256.hex([]) == "")
        #expect(SHA256.hex([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
    }
}
