/// Writes JSON in llmq's canonical form, the form whose SHA-256 is a request's cache key.
///
/// The form follows RFC 8785 (JSON Canonicalization Scheme):
/// - no whitespace between tokens;
/// - object keys sorted by their UTF-8 bytes (the same as Unicode code point order;
///   RFC 8785 sorts by UTF-16 code units, which differs only for keys that mix
///   characters above U+FFFF with ones in U+E000...U+FFFF);
/// - strings escape only `"`, `\` and control characters below U+0020 (as `\b`,
///   `\t`, `\n`, `\f`, `\r`, else `\u00xx` in lowercase hex); everything else,
///   `/` and non-ASCII included, is written as raw UTF-8;
/// - a whole number that fits in 64 bits is written as a plain integer (`1.0`, `1e0`
///   and `1` all become `1`); any other number is written as ECMAScript's
///   `Number.prototype.toString` writes it: the shortest digits that read back to
///   the same double, in plain notation for decimal exponents from -6 to 20 and as
///   `1.5e+300` / `1e-7` outside that.
///
/// Every JSON file llmq writes uses this form too, so its output is stable.
public enum CanonicalJSON {
    /// The canonical bytes of a value.
    public static func encode(_ value: JSONValue, capacity: Int = 256) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(capacity)
        write(value, to: &output)
        return output
    }

    /// The canonical text of a value.
    public static func string(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    /// Appends the canonical bytes of a value.
    public static func write(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number): output.append(contentsOf: String(number).utf8)
        case .double(let number): output.append(contentsOf: formatDouble(number).utf8)
        case .string(let text): writeString(text, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                write(element, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            members.withSortedOrder { order in
                for (position, index) in order.enumerated() {
                    if position > 0 { output.append(UInt8(ascii: ",")) }
                    let member = members.members[index]
                    writeString(member.key, to: &output)
                    output.append(UInt8(ascii: ":"))
                    write(member.value, to: &output)
                }
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Appends a JSON string literal.
    public static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for position in 0..<bytes.count {
                let byte = bytes[position]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                runStart = position + 1
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
                case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    output.append(contentsOf: [
                        0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                    ])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Formats a finite double as ECMAScript's `Number.prototype.toString` does.
    public static func formatDouble(_ value: Double) -> String {
        precondition(value.isFinite, "JSON has no representation for \(value)")
        if value == 0 { return "0" }
        // Below 2^53 every whole double prints as its integer; above, ECMAScript
        // prints only the shortest round-tripping digits, padded with zeros.
        if value.magnitude < 0x1p53, let whole = Int64(exactly: value) { return String(whole) }
        // Swift's description is already the ECMAScript form for a fraction written
        // without an exponent.
        // Below 2^53 a double reaching here has a fraction.
        if value.magnitude < 0x1p53 {
            let description = value.description
            if !description.utf8.contains(UInt8(ascii: "e")) { return description }
        }
        // Swift's description gives the shortest round-tripping digits; take them
        // apart into a digit string and a decimal exponent, then lay them out again.
        let negative = value < 0
        let text = String(describing: value.magnitude)
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        var digits: String
        var pointPosition: Int  // digits before the decimal point in `mantissa`
        if let dot = mantissa.firstIndex(of: ".") {
            let integerPart = mantissa[..<dot]
            let fractionPart = mantissa[mantissa.index(after: dot)...]
            digits = String(integerPart) + String(fractionPart)
            pointPosition = integerPart.count
        } else {
            digits = String(mantissa)
            pointPosition = digits.count
        }
        // Strip leading zeros (moving the point) and trailing zeros.
        while digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let n = pointPosition + exponent  // value = 0.digits × 10^n
        var result: String
        if k <= n && n <= 21 {
            result = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            let split = digits.index(digits.startIndex, offsetBy: n)
            result = digits[..<split] + "." + digits[split...]
        } else if -6 < n && n <= 0 {
            result = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let sign = e < 0 ? "-" : "+"
            if k == 1 {
                result = digits + "e" + sign + String(e.magnitude)
            } else {
                result = String(digits.first!) + "." + digits.dropFirst() + "e" + sign + String(e.magnitude)
            }
        }
        return negative ? "-" + result : result
    }
}
