import Foundation
import LLMQCore
import LLMQTransport

/// Reading rate-limit and retry hints from response headers.
public enum RateLimitHeaders {
    /// `retry-after-ms` (checked first, as the OpenAI SDK does), else `retry-after`
    /// as seconds (integer or decimal) or an HTTP date relative to `now`.
    ///
    /// A wait of 0 or less (or a date already past) is no hint, as in openai-python:
    /// the caller's own backoff applies rather than a retry at once.
    public static func retryAfterMilliseconds(_ headers: HTTPHeaders, now: Date = Date()) -> Int64? {
        if let text = headers["retry-after-ms"], let value = Double(text.trimmingCharacters(in: .whitespaces)),
            value > 0
        {
            return Int64(value.rounded(.up))
        }
        guard let text = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(text) { return seconds > 0 ? Int64((seconds * 1000).rounded(.up)) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        let milliseconds = Int64((date.timeIntervalSince(now) * 1000).rounded(.up))
        return milliseconds > 0 ? milliseconds : nil
    }

    /// `x-should-retry` (OpenAI, Anthropic), which their SDKs obey over the status:
    /// false when the provider says retrying cannot help; nil when not sent.
    public static func shouldRetry(_ headers: HTTPHeaders) -> Bool? {
        switch headers["x-should-retry"]?.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }

    /// OpenAI's `x-ratelimit-*` headers plus the retry hint; Together's names too.
    ///
    /// OpenAI sends `x-ratelimit-{remaining,reset}-{requests,tokens}`, resets as Go
    /// durations. Together sends `x-ratelimit-remaining` (requests),
    /// `x-tokenlimit-remaining` (tokens) and one `x-ratelimit-reset` in seconds: the
    /// request budget's reset, or the token budget's when no request budget is given
    /// (on a 429, the wait until the request would pass).
    public static func openAI(_ headers: HTTPHeaders, now: Date = Date()) -> RateLimitInfo {
        let togetherReset = headers["x-ratelimit-reset"].flatMap { secondsMilliseconds($0, now: now) }
        let requestsRemaining = (headers["x-ratelimit-remaining-requests"] ?? headers["x-ratelimit-remaining"])
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let tokensRemaining = (headers["x-ratelimit-remaining-tokens"] ?? headers["x-tokenlimit-remaining"])
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let requestsReset = headers["x-ratelimit-reset-requests"].flatMap(goDurationMilliseconds) ?? togetherReset
        var tokensReset = headers["x-ratelimit-reset-tokens"].flatMap(goDurationMilliseconds)
        if tokensReset == nil, requestsRemaining == nil { tokensReset = togetherReset }
        return RateLimitInfo(
            remainingRequests: requestsRemaining, remainingTokens: tokensRemaining,
            resetRequestsMilliseconds: requestsReset, resetTokensMilliseconds: tokensReset,
            retryAfterMilliseconds: retryAfterMilliseconds(headers, now: now))
    }

    /// Milliseconds in a Go-style duration (`12ms`, `1s`, `6m0s`, `1h2m3.5s`,
    /// `250us`), rounded up; nil if it is not one.
    public static func goDurationMilliseconds(_ text: String) -> Int64? {
        GoDuration.nanoseconds(text).map { ($0 + 999_999) / 1_000_000 }
    }

    /// Milliseconds in a count of seconds (`1`, `0.5`), rounded up. A value too large
    /// to be a wait (after 2001 as a Unix time) is taken as the Unix time of the reset.
    static func secondsMilliseconds(_ text: String, now: Date) -> Int64? {
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds >= 0 else {
            return nil
        }
        let wait = seconds >= 1_000_000_000 ? seconds - now.timeIntervalSince1970 : seconds
        return max(0, Int64((wait * 1000).rounded(.up)))
    }
}
