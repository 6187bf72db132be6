/// Small formats the batch surfaces share: times, ids, base64.
enum BatchFormats {
    /// `2025-08-21T12:40:59.123456Z` for unix seconds with a fraction.
    static func rfc3339(_ seconds: Double) -> String {
        let whole = seconds.rounded(.down)
        let text = AnthropicSurface.rfc3339(unixTime: Int(whole))
        let micros = min(999_999, Int(((seconds - whole) * 1_000_000).rounded(.down)))
        var digits = String(micros)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        return text.dropLast() + "." + digits + "Z"
    }

    /// `count` lowercase letters and digits, as Gemini's batch and file names have.
    static func lowercaseID(_ count: Int, from generator: inout SplitMix64) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var bits = generator.next()
        for index in 0..<count {
            if index % 10 == 0 { bits = generator.next() }
            bytes.append(alphabet[Int(bits % 36)])
            bits /= 36
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Standard base64 with padding (Gemini's `sha256Hash`).
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = 0
            for (position, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * position) }
            for position in 0..<4 {
                out.append(position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 63] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `http://HOST` from the request's `Host` field, for URLs the answer hands out.
    static func origin(_ request: MockRequest) -> String {
        "http://" + (request.headers.first(name: "host") ?? "127.0.0.1")
    }
}
