import LLMQCore

/// The states a request moves through.
public enum RequestState: String, Sendable, CaseIterable, Codable {
    case queued, running, done, failed, cancelled
}

/// Counts and cost of one job, as `llmq status` shows them.
public struct JobSummary: Sendable, Equatable {
    public var name: String
    public var mode: String
    /// Unix milliseconds.
    public var createdAt: Int64
    public var queued: Int
    public var running: Int
    public var done: Int
    public var failed: Int
    public var cancelled: Int
    /// Sum of the known costs of finished requests.
    public var costUSD: Double

    public var total: Int { queued + running + done + failed + cancelled }

    public init(
        name: String, mode: String = "online", createdAt: Int64, queued: Int = 0, running: Int = 0, done: Int = 0,
        failed: Int = 0, cancelled: Int = 0, costUSD: Double = 0
    ) {
        self.name = name
        self.mode = mode
        self.createdAt = createdAt
        self.queued = queued
        self.running = running
        self.done = done
        self.failed = failed
        self.cancelled = cancelled
        self.costUSD = costUSD
    }
}

/// A request to enqueue: a validated input line and where it came from.
public struct NewRequest: Sendable {
    public var request: SubmittedRequest
    /// 1-based line number in the submitted file.
    public var line: Int

    public init(_ request: SubmittedRequest, line: Int) {
        self.request = request
        self.line = line
    }
}

/// What happened to one request handed to a submission.
public enum AddOutcome: Sendable, Equatable {
    /// A new custom_id: enqueued.
    case added
    /// The job already has this custom_id with the same request: nothing to do.
    case unchanged
    /// The job had this custom_id with another request, and `replace` was set:
    /// the new request replaced it and is queued afresh.
    case replaced
    /// The same custom_id appeared earlier in this submission, on `line`.
    case duplicate(line: Int)
    /// The job has this custom_id with a different request (last submitted from
    /// `line`), and `replace` was not set. Nothing was changed.
    case conflict(line: Int)
}

/// Options of one submission.
public struct SubmitOptions: Sendable {
    /// Where the requests came from (a file name, or "-" for standard input), for the record.
    public var source: String
    /// Replace requests whose custom_id is known but whose request differs.
    public var replace: Bool
    /// Sets the job's mode with the submission (nil: a new job is online, a known
    /// one keeps its mode).
    public var mode: JobMode?

    public init(source: String, replace: Bool = false, mode: JobMode? = nil) {
        self.source = source
        self.replace = replace
        self.mode = mode
    }
}

/// The requests added to a job by one submission, inside its transaction.
public protocol SubmissionSession: AnyObject {
    /// Adds requests in order, returning one outcome per request.
    func add(_ requests: [NewRequest]) throws -> [AddOutcome]
}

/// The persistent queue: jobs and their requests.
///
/// Implementations: `SQLiteQueueStore` (the default, one file). A Postgres store is
/// meant to follow behind this protocol and pass the same conformance tests.
public protocol QueueStore: Sendable {
    /// Runs `body` inside one transaction that adds requests to `job` (created if
    /// new). If `body` throws, everything it added is rolled back, the job included
    /// if it was new, and the error is rethrown: the queue is left as it was.
    /// `body` runs synchronously on the calling thread or one the store picks.
    func submit<T>(job: String, options: SubmitOptions, _ body: (any SubmissionSession) throws -> T) throws -> T

    /// Every job, oldest first. Reads maintained counters, so it is quick on any size.
    func jobs() throws -> [JobSummary]

    /// One job, or nil if there is none of that name.
    func job(named name: String) throws -> JobSummary?

    // MARK: Work: claims, leases and outcomes

    /// Claims up to `limit` queued requests whose `not_before` has passed, by
    /// priority then age, for `owner`, leased for `leaseMilliseconds`; in one
    /// statement. `jobs` restricts the claim to those jobs (nil: any job).
    func claim(limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws -> [ClaimedRequest]

    /// Extends every lease `owner` holds to now + `leaseMilliseconds`; returns how many.
    @discardableResult
    func renewLeases(owner: String, leaseMilliseconds: Int64) throws -> Int

    /// Writes many outcomes in one transaction (a group commit). Each is fenced on
    /// the request still being running under `owner`'s lease; returns, per
    /// completion, whether it was applied (false: the lease was lost, drop it).
    func finish(_ completions: [Completion], owner: String) throws -> [Bool]

    /// `finish` then `claim`, in one transaction: the worker's loop does both each
    /// turn, and one commit instead of two halves what is written to the journal.
    func finishAndClaim(
        _ completions: [Completion], owner: String, limit: Int, leaseMilliseconds: Int64, jobs: [String]?
    ) throws -> (applied: [Bool], claimed: [ClaimedRequest])

    /// Puts `owner`'s running requests back in the queue, refunding their attempt
    /// when `refundAttempt` (our own shutdown) and not otherwise (a dead worker),
    /// and lets go of the provider batches it held. Returns how many requests.
    @discardableResult
    func releaseLeases(owner: String, refundAttempt: Bool) throws -> Int

    /// Puts running requests whose lease expired back in the queue (attempt kept).
    @discardableResult
    func rescueExpiredLeases() throws -> Int

    // MARK: Export (exactly-once output files)

    /// Finished requests of `job` not yet exported, oldest finish first.
    func finishedUnexported(job: String, limit: Int) throws -> [FinishedRequest]

    /// Marks requests exported and records the files' new lengths, in one
    /// transaction: after a crash, each file is cut back to its recorded length
    /// and the unmarked requests are written again.
    func recordExport(job: String, ids: [Int64], offsets: [String: Int64]) throws

    /// The recorded length of each of a job's files (missing: 0).
    func exportOffsets(job: String) throws -> [String: Int64]

    // MARK: Workers

    /// Registers (or refreshes) a worker and its heartbeat.
    func heartbeat(_ worker: WorkerRecord) throws

    /// Every registered worker.
    func workers() throws -> [WorkerRecord]

    /// Forgets a worker (after it stopped, or after its leases were released).
    func removeWorker(owner: String) throws

    // MARK: Manage: results, retry, cancel

    /// Hands every finished (done or failed) request of `job` to `body`, in input
    /// order (by line, then id), at most `pageSize` at a time, all read from one
    /// snapshot of the queue, so memory stays flat on any size. Returns the job's
    /// counts as of that snapshot, or nil (and calls nothing) if there is no such job.
    func finishedRequests(job: String, pageSize: Int, _ body: ([FinishedRequest]) throws -> Void) throws
        -> JobSummary?

    /// Puts `job`'s failed requests back in the queue, and its cancelled ones too
    /// when `includeCancelled`, in one transaction: attempts start again from 0, the
    /// error is cleared, and each is marked not exported, so its new outcome is
    /// appended to the job's files. Running requests are left alone. Returns how
    /// many moved, or nil if there is no such job.
    func retry(job: String, includeCancelled: Bool) throws -> Requeued?

    /// Cancels `job`'s queued requests (those waiting for a retry too), in one
    /// transaction; running requests are left to finish. A cancelled request is
    /// never claimed. Returns how many, or nil if there is no such job.
    func cancel(job: String) throws -> Int?

    // MARK: Batches: provider batch APIs

    /// Sends `job` online or through the batch APIs from now on (requests already
    /// running stay where they are). False if there is no such job.
    func setMode(job: String, mode: JobMode) throws -> Bool

    /// As `claim`, from batch-mode jobs only (`claim` takes online jobs only).
    func claimForBatch(limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws
        -> [ClaimedRequest]

    /// Records a planned batch and moves its requests, leased to `owner`, into it
    /// (leased to the batch, with no expiry), in one transaction. Throws
    /// `BatchLeaseLost` (recording nothing) if any is no longer `owner`'s.
    func recordBatch(_ batch: NewBatch, owner: String) throws -> BatchRecord

    /// Moves requests leased to `owner` into a batch that is not collected yet, as
    /// followers (`NewBatch.followerIDs`: identical to one of its requests, with no
    /// line of their own). Returns the ids moved; the others are still `owner`'s.
    func joinBatch(_ batch: Int64, followers: [Int64], owner: String) throws -> [Int64]

    /// Batches of `job` (nil: every job), oldest first; `unfinished` leaves out
    /// collected and failed ones.
    func batches(job: String?, unfinished: Bool) throws -> [BatchRecord]

    /// Takes (or keeps) the right to advance unfinished batches for
    /// `leaseMilliseconds`: a batch is advanced by one worker at a time. Returns the
    /// batches `owner` now holds.
    func leaseBatches(owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws -> [BatchRecord]

    /// Writes a batch's progress (every field but its identity), fenced on `owner`
    /// holding it. False if another worker holds it now.
    @discardableResult
    func updateBatch(_ batch: BatchRecord, owner: String) throws -> Bool

    /// Extends `owner`'s hold on one batch; false if another worker holds it now.
    func renewBatch(_ id: Int64, owner: String, leaseMilliseconds: Int64) throws -> Bool

    /// The requests in a batch (leased to it).
    func batchedRequests(batch id: Int64) throws -> [BatchedRequest]

    /// Writes the outcomes of a batch's requests and marks it collected, in one
    /// transaction (fenced on `owner` holding the batch; nil if it does not). Requests
    /// of the batch with no outcome given go back to the queue, attempt refunded (or
    /// are cancelled, when the batch's cancel was requested) — or, with
    /// `handOverLeftovers`, are leased to `owner` for that long and returned, to be
    /// sent online.
    func collectBatch(
        _ batch: BatchRecord, owner: String, completions: [Completion], handOverLeftovers: Int64?
    ) throws -> [ClaimedRequest]?

    /// Asks for `job`'s unfinished batches to be cancelled at the provider; returns them.
    func requestBatchCancel(job: String) throws -> [BatchRecord]
}

/// How many requests `QueueStore.retry` put back in the queue, by former state.
public struct Requeued: Sendable, Equatable {
    public var failed: Int
    public var cancelled: Int

    public var total: Int { failed + cancelled }

    public init(failed: Int = 0, cancelled: Int = 0) {
        self.failed = failed
        self.cancelled = cancelled
    }
}
