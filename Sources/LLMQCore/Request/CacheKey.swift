/// The SHA-256 of a canonical request: the key of the response cache, and how llmq
/// tells whether a resubmitted request changed. Stored inline (no heap allocation).
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// The key of some canonical bytes.
    public init(of canonical: UnsafeRawBufferPointer) {
        withUnsafeMutableBytes(of: &words) { output in
            SHA256.hash(canonical, into: output)
        }
    }

    /// The key of some canonical bytes.
    public init(of canonical: [UInt8]) {
        self = canonical.withUnsafeBytes { CacheKey(of: $0) }
    }

    /// A key from its 32 bytes; nil if there are not 32.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        withUnsafeMutableBytes(of: &words) { output in
            for (offset, byte) in bytes.enumerated() { output[offset] = byte }
        }
    }

    /// Calls `body` with the 32 bytes of the key.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { withUnsafeBytes { [UInt8]($0) } }

    /// Lowercase hex, 64 characters.
    public var hex: String { SHA256.hex(bytes) }

    public var description: String { hex }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
