import Foundation
import LLMQTransport

/// Reading rate-limit and retry hints from response headers.
public enum RateLimitHeaders {
    /// `retry-after-ms` (checked first, as the OpenAI SDK does), else `retry-after`
    /// as seconds (integer or decimal) or an HTTP date relative to `now`.
    public static func retryAfterMilliseconds(_ headers: HTTPHeaders, now: Date = Date()) -> Int64? {
        if let text = headers["retry-after-ms"], let value = Double(text.trimmingCharacters(in: .whitespaces)),
            value >= 0
        {
            return Int64(value.rounded(.up))
        }
        guard let text = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(text), seconds >= 0 { return Int64((seconds * 1000).rounded(.up)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return max(0, Int64((date.timeIntervalSince(now) * 1000).rounded(.up)))
    }

    /// OpenAI's (and Together's) `x-ratelimit-*` headers plus the retry hint.
    public static func openAI(_ headers: HTTPHeaders, now: Date = Date()) -> RateLimitInfo {
        RateLimitInfo(
            remainingRequests: headers["x-ratelimit-remaining-requests"].flatMap { Int($0) },
            remainingTokens: headers["x-ratelimit-remaining-tokens"].flatMap { Int($0) },
            resetRequestsMilliseconds: headers["x-ratelimit-reset-requests"].flatMap(goDurationMilliseconds),
            resetTokensMilliseconds: headers["x-ratelimit-reset-tokens"].flatMap(goDurationMilliseconds),
            retryAfterMilliseconds: retryAfterMilliseconds(headers, now: now))
    }

    /// Milliseconds in a Go-style duration (`12ms`, `1s`, `6m0s`, `1h2m3.5s`,
    /// `250us`), rounded up; nil if it is not one.
    public static func goDurationMilliseconds(_ text: String) -> Int64? {
        var total = 0.0
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "h": total += value * 3_600_000
            case "m": total += value * 60_000
            case "s": total += value * 1_000
            case "ms": total += value
            case "us", "µs": total += value / 1_000
            case "ns": total += value / 1_000_000
            default: return nil
            }
        }
        return Int64(total.rounded(.up))
    }
}
