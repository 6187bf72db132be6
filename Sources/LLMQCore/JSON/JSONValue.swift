#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A parsed JSON value.
///
/// Numbers are normalised when parsed: a number whose value is a whole number that
/// fits in 64 bits is `.int` whatever its spelling (`1`, `1.0`, `1e0`), any other is
/// `.double`. That makes equal values compare equal and print the same way.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The members of an object, or nil.
    public var objectValue: JSONObject? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The elements of an array, or nil.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The string, or nil.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The number as a `Double`, or nil if this is not a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The number as an integer, or nil if this is not a whole number.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// A short name of the value's type, for error messages ("a string", "an array").
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

extension JSONValue {
    /// Builds a number value with the same normalisation the parser applies.
    public static func number(_ value: Double) -> JSONValue {
        if let whole = Int64(exactly: value) { return .int(whole) }
        return .double(value)
    }
}

/// The members of a JSON object, in the order they were written.
///
/// Objects in requests are small, so members live in an array and lookups scan it:
/// much cheaper than hashing every key into a dictionary. Two objects are equal when
/// they have the same members, whatever their order.
public struct JSONObject: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    public typealias Member = (key: String, value: JSONValue)

    public private(set) var members: [Member] = []

    public init() {}

    /// An empty object with room for `capacity` members.
    public init(minimumCapacity capacity: Int) {
        members.reserveCapacity(capacity)
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public init(_ dictionary: [String: JSONValue]) {
        for (key, value) in dictionary { self[key] = value }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

    public subscript(key: String) -> JSONValue? {
        get {
            for member in members where sameBytes(member.key, key) { return member.value }
            return nil
        }
        set {
            if let position = members.firstIndex(where: { sameBytes($0.key, key) }) {
                if let newValue { members[position].value = newValue } else { members.remove(at: position) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    /// Sets a member and returns the value it replaced, if any.
    @discardableResult
    public mutating func updateValue(_ value: JSONValue, forKey key: String) -> JSONValue? {
        let old = self[key]
        self[key] = value
        return old
    }

    /// Appends a member without checking for an existing key (the parser checks).
    mutating func appendUnchecked(_ key: String, _ value: JSONValue) {
        members.append((key, value))
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = members.firstIndex(where: { sameBytes($0.key, key) }) else { return nil }
        return members.remove(at: position).value
    }

    /// Calls `body` with the member indices in key order (UTF-8 byte order), sorted
    /// in a stack buffer: the canonical writer calls this for every object.
    public func withSortedOrder<R>(_ body: (UnsafeBufferPointer<Int>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: members.count) { order in
            for index in 0..<members.count {
                // Insertion sort: objects in requests have a handful of keys.
                var position = index
                while position > 0
                    && members[index].key.utf8.lexicographicallyPrecedes(members[order[position - 1]].key.utf8)
                {
                    order[position] = order[position - 1]
                    position -= 1
                }
                order[position] = index
            }
            return try body(UnsafeBufferPointer(order))
        }
    }

    /// Members sorted by key (UTF-8 byte order), as the canonical form writes them.
    public var sortedMembers: [Member] {
        members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for member in lhs.members where rhs[member.key] != member.value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for member in sortedMembers {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}

/// Whether two strings have the same UTF-8 bytes. Unlike `==`, which treats
/// canonically equivalent strings as equal, this is how JSON compares keys.
@inline(__always)
func sameBytes(_ a: String, _ b: String) -> Bool {
    let left = a.utf8
    let right = b.utf8
    guard left.count == right.count else { return false }
    let compared = left.withContiguousStorageIfAvailable { l in
        right.withContiguousStorageIfAvailable { r in
            l.count == 0 || memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0
        }
    }
    if let compared, let result = compared { return result }
    return left.elementsEqual(right)
}
