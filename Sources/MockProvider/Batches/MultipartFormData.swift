/// A `multipart/form-data` body (RFC 7578) split into its parts, as the OpenAI Files
/// API receives uploads.
struct MultipartFormData {
    struct Part {
        /// The `name` of its `Content-Disposition`.
        var name: String
        /// The `filename` of its `Content-Disposition`, for a file.
        var filename: String?
        var contentType: String?
        var body: ArraySlice<UInt8>

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    var parts: [Part]

    /// The first part named `name`.
    func part(_ name: String) -> Part? {
        parts.first { $0.name == name }
    }

    /// The boundary of a `multipart/form-data; boundary=…` content type, or nil for
    /// another content type.
    static func boundary(contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmed(of: " \t") }
        guard let type = pieces.first, type.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            var value = Substring(pair[1])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    /// Splits `body`; nil if it is not a well-formed multipart body with `boundary`.
    init?(_ body: [UInt8], boundary: String) {
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = Self.find(delimiter, in: body, from: 0) else { return nil }
        var parts: [Part] = []
        while true {
            position += delimiter.count
            // "--" after a delimiter ends the body.
            if position + 1 < body.count, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") {
                break
            }
            guard let lineEnd = Self.find([13, 10], in: body, from: position) else { return nil }
            let headStart = lineEnd + 2
            guard let headEnd = Self.find([13, 10, 13, 10], in: body, from: headStart - 2) else { return nil }
            let head = String(decoding: body[headStart..<max(headStart, headEnd)], as: UTF8.self)
            let bodyStart = headEnd + 4
            guard let next = Self.find([13, 10] + delimiter, in: body, from: bodyStart) else { return nil }
            guard var part = Self.part(head: head) else { return nil }
            part.body = body[bodyStart..<next]
            parts.append(part)
            position = next + 2
        }
        self.parts = parts
    }

    /// A part from its header lines: `Content-Disposition: form-data; name="…"; filename="…"`.
    private static func part(head: String) -> Part? {
        var part = Part(name: "", body: [])
        var named = false
        for line in head.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let field = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmed(of: " \t")
            switch field {
            case "content-disposition":
                for piece in value.split(separator: ";").map({ $0.trimmed(of: " \t") }) {
                    let pair = piece.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2 else { continue }
                    var text = Substring(pair[1])
                    if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
                        text = text.dropFirst().dropLast()
                    }
                    switch pair[0].lowercased() {
                    case "name":
                        part.name = String(text)
                        named = true
                    case "filename": part.filename = String(text)
                    default: break
                    }
                }
            case "content-type":
                part.contentType = value
            default:
                break
            }
        }
        return named ? part : nil
    }

    /// The offset of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        var index = max(0, start)
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters from `characters`.
    func trimmed(of characters: String) -> String {
        var text = Substring(self)
        while let first = text.first, characters.contains(first) { text.removeFirst() }
        while let last = text.last, characters.contains(last) { text.removeLast() }
        return String(text)
    }
}
