import NIOCore

extension MockProviderServer {
    /// The fake provider's knobs. The defaults give an instant, unlimited, fault-free
    /// server on a free port of 127.0.0.1.
    public struct Configuration: Sendable, Equatable {
        /// The address to listen on. Default `127.0.0.1`: the fake is for this machine.
        public var host = "127.0.0.1"
        /// The TCP port; 0 (the default) picks a free one, readable as `server.port`.
        public var port = 0
        /// Event-loop threads. Default: one per core.
        public var threads = System.coreCount
        /// The only API key accepted, or nil (the default) to accept any non-empty key.
        public var apiKey: String?
        /// The models served, or nil (the default) to serve any model name. A request
        /// for another model gets 404 `model_not_found`.
        public var models: Set<String>?
        /// Reply length in words, one completion token each. Default 16.
        public var replyTokens = MockReplies.defaultTokens
        /// Report cached prompt tokens as OpenAI's automatic caching would: a prompt
        /// of at least 1024 tokens whose whole text, or all messages but the last, was
        /// seen before gets that prefix as `cached_tokens`, in 128-token steps.
        /// Default true.
        public var promptCaching = true
        /// How long answers take.
        public var latency = Latency()
        /// Server-side rate limits, answered with 429.
        public var rateLimit = RateLimit()
        /// Faults to inject into successful answers.
        public var faults = Faults()
        /// Seed of the generator behind jitter and fault choices, so runs repeat.
        public var seed: UInt64 = 0
        /// Largest request body accepted; larger ones get 413. Default 256 MiB: the
        /// largest body a real API here takes (an Anthropic batch create, 256 MB).
        public var maximumBodyBytes = 256 << 20
        /// How the batch APIs behave: how long a batch takes, lines that fail, batches
        /// that expire.
        public var batches = Batches()

        public init() {}

        /// Checks the knobs, so a bad value fails at start rather than mid-run.
        public func validate() throws(ConfigurationError) {
            guard (0...65535).contains(port) else { throw .invalid("port must be 0...65535, not \(port)") }
            guard threads >= 1 else { throw .invalid("threads must be at least 1") }
            guard replyTokens >= 1 else { throw .invalid("reply tokens must be at least 1") }
            if let apiKey, apiKey.isEmpty { throw .invalid("the API key must not be empty") }
            try latency.validate()
            try rateLimit.validate()
            try faults.validate()
            try batches.validate()
        }
    }

    /// Latency added to answers that reach the provider stage (not to 4xx and 429).
    public struct Latency: Sendable, Equatable {
        /// Added to every answer before its first byte.
        public var fixed: Duration = .zero
        /// A uniform random extra in [0, jitter], drawn from the seeded generator.
        public var jitter: Duration = .zero
        /// Per completion token: between stream chunks, and × completion tokens before
        /// a non-streamed answer, so both take as long.
        public var perToken: Duration = .zero

        public init(fixed: Duration = .zero, jitter: Duration = .zero, perToken: Duration = .zero) {
            self.fixed = fixed
            self.jitter = jitter
            self.perToken = perToken
        }

        func validate() throws(ConfigurationError) {
            guard fixed >= .zero, jitter >= .zero, perToken >= .zero else {
                throw .invalid("latencies must not be negative")
            }
        }
    }

    /// Server-side limits. Each is off when nil.
    ///
    /// Requests and tokens are token buckets, checked after validation: a request
    /// costs one request and its `total_tokens` (prompt + completion, known in
    /// advance since replies are deterministic). The `x-ratelimit-limit-*` headers
    /// report the bucket capacities (`burst`, `tokensPerMinute`), `remaining-*` the
    /// current level and `reset-*` the time until the bucket is full again.
    public struct RateLimit: Sendable, Equatable {
        /// Requests per second refilled into the request bucket.
        public var requestsPerSecond: Double?
        /// Capacity of the request bucket. Default: requestsPerSecond rounded up, at least 1.
        public var burst: Int?
        /// Capacity of the token bucket, refilled evenly over a minute.
        public var tokensPerMinute: Int?
        /// Most requests answered at once; more get 429 at once.
        public var maxInFlight: Int?

        public init(
            requestsPerSecond: Double? = nil, burst: Int? = nil, tokensPerMinute: Int? = nil, maxInFlight: Int? = nil
        ) {
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
            self.tokensPerMinute = tokensPerMinute
            self.maxInFlight = maxInFlight
        }

        /// Whether the request or token bucket is on (and so the `x-ratelimit-*` headers).
        public var hasBuckets: Bool { requestsPerSecond != nil || tokensPerMinute != nil }

        var effectiveBurst: Int? {
            guard let requestsPerSecond else { return nil }
            return burst ?? max(1, Int(requestsPerSecond.rounded(.up)))
        }

        func validate() throws(ConfigurationError) {
            if let requestsPerSecond, !(requestsPerSecond > 0 && requestsPerSecond.isFinite) {
                throw .invalid("requests per second must be a positive number")
            }
            if let burst, burst < 1 { throw .invalid("burst must be at least 1") }
            if burst != nil, requestsPerSecond == nil { throw .invalid("burst needs requests per second") }
            if let tokensPerMinute, tokensPerMinute < 1 { throw .invalid("tokens per minute must be at least 1") }
            if let maxInFlight, maxInFlight < 1 { throw .invalid("max in flight must be at least 1") }
        }
    }

    /// Fractions of provider answers (0...1 each, at most 1 together) replaced by a
    /// fault. Which answers is decided by the seeded generator, one draw per answer.
    public struct Faults: Sendable, Equatable {
        /// 500 with the provider's `server_error` body.
        public var serverErrors = 0.0
        /// 503 with the provider's overloaded body.
        public var overloaded = 0.0
        /// The head and half the body (or half the stream's frames), then a TCP reset.
        public var resets = 0.0
        /// A 200 whose body is cut in half with a matching `Content-Length` (a stream:
        /// half the frames, half a frame, then the end of the chunked body).
        public var truncatedBodies = 0.0
        /// The head and half the body or frames, then nothing more while the
        /// connection stays open.
        public var stalls = 0.0
        /// Streams only: half the frames, then the provider's in-stream error event,
        /// then the end of the stream. Non-streamed answers are left alone.
        public var streamErrors = 0.0

        public init(
            serverErrors: Double = 0, overloaded: Double = 0, resets: Double = 0, truncatedBodies: Double = 0,
            stalls: Double = 0, streamErrors: Double = 0
        ) {
            self.serverErrors = serverErrors
            self.overloaded = overloaded
            self.resets = resets
            self.truncatedBodies = truncatedBodies
            self.stalls = stalls
            self.streamErrors = streamErrors
        }

        var fractions: [(MockFault, Double)] {
            [
                (.serverError, serverErrors), (.overloaded, overloaded), (.connectionReset, resets),
                (.truncatedBody, truncatedBodies), (.stall, stalls), (.streamError, streamErrors),
            ]
        }

        /// Whether any fault can happen.
        public var isEnabled: Bool { fractions.contains { $0.1 > 0 } }

        func validate() throws(ConfigurationError) {
            for (fault, fraction) in fractions where !(0...1).contains(fraction) {
                throw .invalid("the \(fault.rawValue) fraction must be within 0...1, not \(fraction)")
            }
            let total = fractions.reduce(0) { $0 + $1.1 }
            guard total <= 1 + 1e-9 else { throw .invalid("fault fractions add up to \(total), more than 1") }
        }
    }

    /// The batch APIs' knobs (OpenAI files and batches, Anthropic Message Batches,
    /// Gemini Batch Mode).
    ///
    /// Progress is a function of the time since a batch was created, so a client that
    /// stops and polls again later sees the batch where time has taken it. Which lines
    /// fail and which batches expire is decided by hashing (the `custom_id` or `key`,
    /// the batch id) with the server's seed, so a rerun with the same ids repeats it.
    public struct Batches: Sendable, Equatable {
        /// From a batch's creation to its end. Zero (the default) ends a batch at the
        /// first poll after its creation (the create answer itself still shows it just
        /// begun). Otherwise the first 5 % is validation, requests complete evenly
        /// until 95 %, and the rest is finalizing.
        public var duration: Duration = .zero
        /// The fraction of lines (0...1), picked by their `custom_id`/`key`, answered
        /// with the provider's 500 error instead of their answer.
        public var failingLines = 0.0
        /// The fraction of batches (0...1), picked by their id, that expire: at their
        /// end only the first half of their requests have run; those keep their
        /// answers, the rest are reported expired.
        public var expiring = 0.0

        public init(duration: Duration = .zero, failingLines: Double = 0, expiring: Double = 0) {
            self.duration = duration
            self.failingLines = failingLines
            self.expiring = expiring
        }

        func validate() throws(ConfigurationError) {
            guard duration >= .zero else { throw .invalid("the batch duration must not be negative") }
            guard (0...1).contains(failingLines) else {
                throw .invalid("the failing batch lines fraction must be within 0...1, not \(failingLines)")
            }
            guard (0...1).contains(expiring) else {
                throw .invalid("the expiring batches fraction must be within 0...1, not \(expiring)")
            }
        }
    }

    /// A knob with a value the server cannot run with.
    public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
        case invalid(String)

        public var description: String {
            switch self {
            case .invalid(let reason): return "invalid mock provider configuration: \(reason)"
            }
        }
    }
}

/// A fault the server can inject, as named in stats.
public enum MockFault: String, Sendable, CaseIterable, Codable {
    case serverError = "server_error"
    case overloaded = "overloaded"
    case connectionReset = "connection_reset"
    case truncatedBody = "truncated_body"
    case stall = "stall"
    case streamError = "stream_error"
}
