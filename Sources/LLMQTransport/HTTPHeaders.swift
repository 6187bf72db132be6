/// HTTP header fields in order, with case-insensitive lookup and repeated names kept.
///
/// Its `description` hides the values of credential headers (`Authorization`,
/// API-key headers, cookies).
public struct HTTPHeaders: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public typealias Element = (name: String, value: String)

    private var fields: [Field]

    fileprivate struct Field: Hashable, Sendable {
        var name: String
        var value: String
    }

    public init() { fields = [] }

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Number of fields, counting each repeated name.
    public var count: Int { fields.count }

    public var isEmpty: Bool { fields.isEmpty }

    /// The first value of the field `name` (any letter case), or nil.
    public subscript(name: String) -> String? {
        fields.first { Self.namesEqual($0.name, name) }?.value
    }

    /// Every value of the field `name` (any letter case), in order.
    public func values(for name: String) -> [String] {
        fields.compactMap { Self.namesEqual($0.name, name) ? $0.value : nil }
    }

    public func contains(_ name: String) -> Bool {
        fields.contains { Self.namesEqual($0.name, name) }
    }

    /// Appends a field, keeping any earlier one with the same name.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every field named `name` with one field.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name)
        add(name: name, value: value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { Self.namesEqual($0.name, name) }
    }

    public func makeIterator() -> Iterator { Iterator(base: fields.makeIterator()) }

    /// Yields `(name, value)` pairs in order.
    public struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[Field]>

        public mutating func next() -> Element? {
            base.next().map { (name: $0.name, value: $0.value) }
        }
    }

    public var description: String {
        let shown = fields.map { field in
            Self.isCredential(field.name) ? "\(field.name): <redacted>" : "\(field.name): \(field.value)"
        }
        return "[" + shown.joined(separator: ", ") + "]"
    }

    static func isCredential(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "authorization" || lower == "proxy-authorization" || lower == "cookie"
            || lower == "set-cookie" || lower.contains("api-key") || lower.contains("token")
    }

    static func namesEqual(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x != y && lowerASCII(x) != lowerASCII(y) { return false }
            default: return false
            }
        }
    }

    @inline(__always)
    private static func lowerASCII(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }
}

extension HTTPHeaders {
    /// Parses the header lines curl hands over (`Name: value\r\n` each, status line
    /// and blank line already removed). Continuation lines join the previous value.
    init(rawLines bytes: [UInt8]) {
        self.init()
        var lineStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            if bytes[index] == UInt8(ascii: "\n") {
                addLine(bytes[lineStart..<index])
                lineStart = index + 1
            }
            index += 1
        }
        if lineStart < count { addLine(bytes[lineStart..<count]) }
    }

    private mutating func addLine(_ line: ArraySlice<UInt8>) {
        var line = line
        while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: "\n") { line.removeLast() }
        guard let first = line.first else { return }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            guard !fields.isEmpty else { return }
            fields[fields.count - 1].value += " " + String(decoding: Self.trimmed(line), as: UTF8.self)
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
        let value = String(decoding: Self.trimmed(line[(colon + 1)...]), as: UTF8.self)
        fields.append(Field(name: name, value: value))
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes.removeFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        return bytes
    }
}
