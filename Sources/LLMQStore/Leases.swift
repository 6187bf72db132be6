import LLMQCore

/// A request a worker has claimed, with everything needed to send it.
public struct ClaimedRequest: Sendable, Equatable {
    /// The store's id of the request (the fence for every later transition).
    public var id: Int64
    public var job: String
    public var customID: String
    public var provider: Provider
    public var model: String
    public var cacheKey: CacheKey
    /// The canonical request (an OpenAI chat-completions body), as JSON bytes.
    public var request: [UInt8]
    /// The attempt this claim starts (1 for the first).
    public var attempt: Int
    /// 1-based input line it was last submitted from.
    public var line: Int
    public var priority: Int

    public init(
        id: Int64, job: String, customID: String, provider: Provider, model: String, cacheKey: CacheKey,
        request: [UInt8], attempt: Int, line: Int, priority: Int
    ) {
        self.id = id
        self.job = job
        self.customID = customID
        self.provider = provider
        self.model = model
        self.cacheKey = cacheKey
        self.request = request
        self.attempt = attempt
        self.line = line
        self.priority = priority
    }
}

/// What happened to a claimed request, to be written by `QueueStore.finish`.
public enum RequestOutcome: Sendable, Equatable {
    /// Answered: the result and usage (JSON texts), and its cost when the price is
    /// known (nil: unknown, never counted as 0).
    case succeeded(result: String, usage: String, costUSD: Double?)
    /// Failed for good, with the error (a JSON text).
    case failed(error: String)
    /// Back to the queue, not to be claimed before `notBefore` (unix ms). With
    /// `refundAttempt` the attempt does not count (a 429, an overload, our own
    /// shutdown); `error` records why, if anything went wrong.
    case retry(notBefore: Int64, refundAttempt: Bool, error: String?)
}

/// One transition for `QueueStore.finish`.
public struct Completion: Sendable, Equatable {
    public var id: Int64
    public var outcome: RequestOutcome

    public init(id: Int64, outcome: RequestOutcome) {
        self.id = id
        self.outcome = outcome
    }
}

/// A worker process that has registered with the queue.
public struct WorkerRecord: Sendable, Equatable {
    /// Unique per process: the lease owner of everything it claims.
    public var owner: String
    public var host: String
    public var pid: Int32
    /// Unix milliseconds.
    public var startedAt: Int64
    public var heartbeatAt: Int64
    /// The worker's latest progress figures (a JSON text), for `llmq status`.
    public var stats: String?

    public init(owner: String, host: String, pid: Int32, startedAt: Int64, heartbeatAt: Int64, stats: String? = nil) {
        self.owner = owner
        self.host = host
        self.pid = pid
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.stats = stats
    }
}

/// A finished request (done or failed) waiting to be written to the job's files.
public struct FinishedRequest: Sendable, Equatable {
    public var id: Int64
    public var customID: String
    public var state: RequestState
    public var provider: Provider
    public var model: String
    /// The result, usage and error JSON texts the worker stored.
    public var result: String?
    public var usage: String?
    public var costUSD: Double?
    public var error: String?
    public var attempt: Int
    public var line: Int
    /// Unix milliseconds.
    public var finishedAt: Int64
}
