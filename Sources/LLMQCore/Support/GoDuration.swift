import Foundation

/// Formats durations as Go's `time.Duration.String` does (`12ms`, `1s`, `6m0s`,
/// `1h2m3.5s`), the form OpenAI uses in `x-ratelimit-reset-*` headers.
public enum GoDuration {
    /// The Go-style text of a duration, rounded up to whole milliseconds so a client
    /// that waits exactly that long is never early.
    public static func string(nanoseconds: Int64) -> String {
        guard nanoseconds > 0 else { return "0s" }
        let milliseconds = (nanoseconds + 999_999) / 1_000_000
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let hours = milliseconds / 3_600_000
        let minutes = milliseconds / 60_000 % 60
        let seconds = milliseconds / 1000 % 60
        let fraction = milliseconds % 1000
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        text += "\(seconds)"
        if fraction > 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 3 - digits.count) + digits
            while digits.last == "0" { digits.removeLast() }
            text += "." + digits
        }
        return text + "s"
    }

    /// Parses the Go-style text back into nanoseconds (`1h2m3.5s`, `12ms`, `250us`),
    /// or nil when it is not one: OpenAI's reset headers, Gemini's `retryDelay`,
    /// `llmq mock`'s flags.
    public static func nanoseconds(_ text: String) -> Int64? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        var total: Double = 0
        while !rest.isEmpty {
            let numberEnd = rest.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? rest.endIndex
            guard numberEnd != rest.startIndex, let number = Double(rest[..<numberEnd]) else { return nil }
            rest = rest[numberEnd...]
            let unitEnd = rest.firstIndex { $0.isASCII && ($0.isNumber || $0 == ".") } ?? rest.endIndex
            let scale: Double
            switch rest[..<unitEnd] {
            case "h": scale = 3_600_000_000_000
            case "m": scale = 60_000_000_000
            case "s": scale = 1_000_000_000
            case "ms": scale = 1_000_000
            case "us", "µs": scale = 1000
            case "ns": scale = 1
            default: return nil
            }
            rest = rest[unitEnd...]
            total += number * scale
        }
        guard total < Double(Int64.max) else { return nil }
        return Int64(total.rounded())
    }
}
