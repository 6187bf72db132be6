import Synchronization

/// The server-side request and token buckets behind 429 answers.
///
/// Time is passed in (nanoseconds on a monotonic clock) so the arithmetic is
/// testable without sleeping. One lock guards both buckets; it is taken only when a
/// limit is configured.
final class RateLimiter: Sendable {
    /// One bucket's state, as reported in the `x-ratelimit-*` headers.
    struct BucketReport: Sendable, Equatable {
        var limit: Int
        var remaining: Int
        /// Time until the bucket is full again.
        var resetNanoseconds: Int64
    }

    /// Both buckets' state after (or, on a rejection, instead of) taking a request.
    struct Report: Sendable, Equatable {
        var requests: BucketReport?
        var tokens: BucketReport?
    }

    /// Why a request was refused.
    enum Limit: Sendable, Equatable {
        case requests
        case tokens
        /// The request alone needs more tokens than the bucket holds: it can never pass.
        case requestTooLarge
    }

    struct Rejection: Sendable, Equatable {
        var limit: Limit
        /// How long until the request would pass.
        var retryAfterNanoseconds: Int64
        /// Tokens (or requests) the request asked for.
        var requested: Int
        var report: Report
    }

    enum Decision: Sendable, Equatable {
        case allowed(Report)
        case rejected(Rejection)
    }

    private struct Bucket {
        let capacity: Double
        let perNanosecond: Double
        var level: Double
        var updatedAt: UInt64

        mutating func refill(now: UInt64) {
            guard now > updatedAt else { return }
            level = min(capacity, level + Double(now - updatedAt) * perNanosecond)
            updatedAt = now
        }

        func nanoseconds(until amount: Double) -> Int64 {
            amount <= level ? 0 : Int64(((amount - level) / perNanosecond).rounded(.up))
        }

        var report: BucketReport {
            BucketReport(
                limit: Int(capacity), remaining: max(0, Int(level.rounded(.down))),
                resetNanoseconds: nanoseconds(until: capacity))
        }
    }

    private struct State {
        var requests: Bucket?
        var tokens: Bucket?

        var report: Report { Report(requests: requests?.report, tokens: tokens?.report) }
    }

    private let state: Mutex<State>

    /// A limiter with the configured buckets, both full at `now`.
    init(_ limits: MockProviderServer.RateLimit, now: UInt64) {
        var state = State()
        if let rate = limits.requestsPerSecond, let burst = limits.effectiveBurst {
            state.requests = Bucket(
                capacity: Double(burst), perNanosecond: rate / 1e9, level: Double(burst), updatedAt: now)
        }
        if let perMinute = limits.tokensPerMinute {
            state.tokens = Bucket(
                capacity: Double(perMinute), perNanosecond: Double(perMinute) / 60e9, level: Double(perMinute),
                updatedAt: now)
        }
        self.state = Mutex(state)
    }

    /// Takes one request and `tokens` tokens if both buckets allow it; takes nothing
    /// otherwise.
    func acquire(tokens: Int, now: UInt64) -> Decision {
        state.withLock { state in
            state.requests?.refill(now: now)
            state.tokens?.refill(now: now)
            if let bucket = state.requests, bucket.level < 1 {
                return .rejected(
                    Rejection(
                        limit: .requests, retryAfterNanoseconds: bucket.nanoseconds(until: 1), requested: 1,
                        report: state.report))
            }
            if let bucket = state.tokens {
                if Double(tokens) > bucket.capacity {
                    return .rejected(
                        Rejection(
                            limit: .requestTooLarge, retryAfterNanoseconds: 0, requested: tokens, report: state.report))
                }
                if bucket.level < Double(tokens) {
                    return .rejected(
                        Rejection(
                            limit: .tokens, retryAfterNanoseconds: bucket.nanoseconds(until: Double(tokens)),
                            requested: tokens, report: state.report))
                }
            }
            state.requests?.level -= 1
            state.tokens?.level -= Double(tokens)
            return .allowed(state.report)
        }
    }

    /// The buckets' state without taking anything.
    func report(now: UInt64) -> Report {
        state.withLock { state in
            state.requests?.refill(now: now)
            state.tokens?.refill(now: now)
            return state.report
        }
    }
}
