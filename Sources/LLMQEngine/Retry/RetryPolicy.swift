/// What to do after a failed attempt, and when.
///
/// Congestion (429, 529, an overloaded 503) is a snooze that does not burn an
/// attempt, up to `maxRateLimitSnoozes` in a row; other 5xx, timeouts and connection
/// resets burn one and back off exponentially with full jitter; other 4xx (except
/// 408 and 409), and any failure the provider says retrying cannot help, fail at
/// once with the provider's message. A provider's own `retry-after` wins over the
/// backoff; a `retry-after` of 0 or less is no hint, so the backoff applies.
public struct RetryPolicy: Sendable, Equatable {
    /// How a failed attempt is classified.
    public enum Failure: Sendable, Equatable {
        /// HTTP status from the provider (with its retry-after, if it sent one).
        case status(Int, retryAfterMilliseconds: Int64?)
        /// The provider said retrying cannot help (`x-should-retry: false`, no credit
        /// left, a request larger than the whole rate limit), whatever the status.
        case permanent
        /// The connection failed, was reset, or timed out.
        case transport
    }

    /// The decision.
    public enum Decision: Sendable, Equatable {
        /// Try again after the delay; the attempt counts unless `refundAttempt`.
        case retry(afterMilliseconds: Int64, refundAttempt: Bool)
        /// Give up: the request has failed for good.
        case fail
    }

    /// Attempts before giving up (each counted attempt, snoozes not included).
    public var maxAttempts = 6
    /// First backoff ceiling; doubles each attempt.
    public var baseDelayMilliseconds: Int64 = 500
    /// Largest backoff ceiling.
    public var maxDelayMilliseconds: Int64 = 60_000
    /// Congestion snoozes in a row for one request before it fails: a backstop for a
    /// provider that answers 429 for ever (a quota that will not come back, a limit
    /// no wait satisfies) without saying so.
    public var maxRateLimitSnoozes = 50

    public init(
        maxAttempts: Int = 6, baseDelayMilliseconds: Int64 = 500, maxDelayMilliseconds: Int64 = 60_000,
        maxRateLimitSnoozes: Int = 50
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
        self.maxRateLimitSnoozes = maxRateLimitSnoozes
    }

    /// Whether a status is the provider asking us to slow down.
    public static func isCongestion(_ status: Int) -> Bool { status == 429 || status == 529 || status == 503 }

    /// Decides after `attempt` (1-based, the one that just failed), with `snoozes`
    /// congestion snoozes already taken in a row for this request. `random` returns
    /// a value in 0..<1 (injected, so tests are deterministic).
    public func decide(_ failure: Failure, attempt: Int, snoozes: Int = 0, random: () -> Double) -> Decision {
        switch failure {
        case .status(let status, let retryAfter) where Self.isCongestion(status):
            guard snoozes < maxRateLimitSnoozes else { return .fail }
            return .retry(
                afterMilliseconds: Self.hint(retryAfter) ?? backoff(attempt: attempt, random: random),
                refundAttempt: true)
        case .status(let status, let retryAfter) where status >= 500 || status == 408 || status == 409:
            guard attempt < maxAttempts else { return .fail }
            return .retry(
                afterMilliseconds: Self.hint(retryAfter) ?? backoff(attempt: attempt, random: random),
                refundAttempt: false)
        case .status, .permanent:
            return .fail
        case .transport:
            guard attempt < maxAttempts else { return .fail }
            return .retry(afterMilliseconds: backoff(attempt: attempt, random: random), refundAttempt: false)
        }
    }

    /// A provider's wait, if it is one: 0 or less is none.
    public static func hint(_ retryAfterMilliseconds: Int64?) -> Int64? {
        retryAfterMilliseconds.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Full jitter: uniform in 0...min(max, base × 2^(attempt-1)).
    public func backoff(attempt: Int, random: () -> Double) -> Int64 {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelayMilliseconds, baseDelayMilliseconds << Int64(exponent))
        return Int64((Double(ceiling) * random()).rounded(.down))
    }
}
