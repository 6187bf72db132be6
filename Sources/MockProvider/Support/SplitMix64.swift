/// A small, fast, seedable random generator (Steele, Lea and Flood's SplitMix64).
///
/// The fake server draws reply words, jitter and fault choices from it, so the same
/// seed always gives the same sequence and tests are never flaky.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// A uniform value in [0, 1) with 53 random bits.
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// The SplitMix64 finaliser: a good 64-bit mixer on its own.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// FNV-1a, 64 bits: a stable hash (unlike `Hasher`, which is seeded per process), so
/// a reply computed by a test equals the one the server sends.
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func combine(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    mutating func combine(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            for byte in bytes { combine(byte) }
        }
    }

    mutating func combine(_ number: UInt64) {
        var number = number
        for _ in 0..<8 {
            combine(UInt8(truncatingIfNeeded: number))
            number >>= 8
        }
    }
}

/// Base-62 digits for ids that look like the real ones (`chatcmpl-B9MBs8Cjcv…`).
enum Base62 {
    private static let digits = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Appends `count` base-62 digits drawn from `generator`.
    static func append(_ count: Int, from generator: inout SplitMix64, to output: inout [UInt8]) {
        var bits = generator.next()
        var left = 10  // a 64-bit value holds ten full base-62 digits
        for _ in 0..<count {
            if left == 0 {
                bits = generator.next()
                left = 10
            }
            output.append(digits[Int(bits % 62)])
            bits /= 62
            left -= 1
        }
    }

    /// Writes `count` base-62 digits drawn from `generator`, six bits per digit (two
    /// digits come up twice as often; ids need to look right, not be uniform).
    static func write(_ count: Int, from generator: inout SplitMix64, to buffer: inout ByteWriter) {
        var bits = generator.next()
        var left = 10
        for _ in 0..<count {
            if left == 0 {
                bits = generator.next()
                left = 10
            }
            buffer.writeByte(sixBitDigits[Int(bits & 63)])
            bits >>= 6
            left -= 1
        }
    }

    private static let sixBitDigits = digits + Array("ab".utf8)

    /// A string of `count` base-62 digits drawn from `generator`.
    static func string(_ count: Int, from generator: inout SplitMix64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        append(count, from: &generator, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
