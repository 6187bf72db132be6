import Foundation
import LLMQCore
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
        GoDuration.nanoseconds(text).map { ($0 + 999_999) / 1_000_000 }
    }
}
