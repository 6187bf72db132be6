import Foundation
import GRDB
import LLMQCore

/// Claims, leases, outcomes and workers: what `llmq work` does to the queue.
///
/// Every transition out of `running` is fenced on the lease owner, so a worker that
/// lost its lease (expired and rescued, or released) cannot overwrite what another
/// did since. Each method is one transaction and keeps the jobs' counters in step.
extension SQLiteQueueStore {
    public func claim(limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws
        -> [ClaimedRequest]
    {
        try claim(limit: limit, owner: owner, leaseMilliseconds: leaseMilliseconds, jobs: jobs, mode: .online)
    }

    /// One claim transaction for the queued requests of jobs in `mode`.
    func claim(limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?, mode: JobMode) throws
        -> [ClaimedRequest]
    {
        guard limit > 0 else { return [] }
        if let jobs, jobs.isEmpty { return [] }
        return try write { db, now in
            var deltas = CounterDeltas()
            let claimed = try claimRows(
                db, now: now, limit: limit, owner: owner, leaseMilliseconds: leaseMilliseconds, jobs: jobs,
                mode: mode, deltas: &deltas)
            try deltas.apply(db, now: now)
            return claimed
        }
    }

    public func finishAndClaim(
        _ completions: [Completion], owner: String, limit: Int, leaseMilliseconds: Int64, jobs: [String]?
    ) throws -> (applied: [Bool], claimed: [ClaimedRequest]) {
        let claiming = limit > 0 && jobs?.isEmpty != true
        guard !completions.isEmpty || claiming else { return ([], []) }
        return try write { db, now in
            var deltas = CounterDeltas()
            let applied = try finishRows(db, now: now, completions, owner: owner, deltas: &deltas)
            let claimed =
                claiming
                ? try claimRows(
                    db, now: now, limit: limit, owner: owner, leaseMilliseconds: leaseMilliseconds, jobs: jobs,
                    mode: .online, deltas: &deltas) : []
            try deltas.apply(db, now: now)
            return (applied, claimed)
        }
    }

    /// The claim's statement, inside the caller's transaction: queued requests of
    /// the jobs in `mode`.
    func claimRows(
        _ db: Database, now: Int64, limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?,
        mode: JobMode, deltas: inout CounterDeltas
    ) throws -> [ClaimedRequest] {
        var arguments: [(any DatabaseValueConvertible)?] = [
            owner, now + leaseMilliseconds, now, now, now, mode.rawValue,
        ]
        var jobFilter = ""
        if let jobs {
            jobFilter =
                " AND job_id IN (SELECT id FROM jobs WHERE name IN ("
                + Array(repeating: "?", count: jobs.count).joined(separator: ", ") + "))"
            arguments += jobs.map { $0 as (any DatabaseValueConvertible)? }
        }
        arguments.append(limit)
        // The claim index is (priority, not_before, id) over queued rows: fresh
        // requests (not_before 0) go out in input order, retries when they are due.
        // The unary + keeps SQLite from walking the job's rows by (job_id, custom_id)
        // for the mode filter instead, which made each claim scan the whole job.
        let rows = try Row.fetchAll(
            db,
            sql: """
                UPDATE requests
                SET state = 'running', attempt = attempt + 1, lease_owner = ?, lease_expires_at = ?,
                    started_at = COALESCE(started_at, ?), updated_at = ?
                WHERE id IN (
                    SELECT id FROM requests
                    WHERE state = 'queued' AND not_before <= ?
                        AND +job_id IN (SELECT id FROM jobs WHERE mode = ?)\(jobFilter)
                    ORDER BY priority, not_before, id LIMIT ?)
                RETURNING id, job_id, custom_id, provider, model, cache_key, request, attempt, line, priority
                """, arguments: StatementArguments(arguments))
        guard !rows.isEmpty else { return [] }
        let names = try jobNames(db)
        var claimed: [ClaimedRequest] = []
        claimed.reserveCapacity(rows.count)
        for row in rows {
            deltas.move(row["job_id"], from: .queued, to: .running)
            claimed.append(Self.claimedRequest(row, jobNames: names))
        }
        // RETURNING gives no order; hand requests out in the order they were picked.
        return claimed.sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }
    }

    /// A claimed request from a row (id, job_id, custom_id, provider, model,
    /// cache_key, request, attempt, line, priority).
    static func claimedRequest(_ row: Row, jobNames names: [Int64: String]) -> ClaimedRequest {
        let jobID: Int64 = row["job_id"]
        let providerName: String = row["provider"]
        let key: Data = row["cache_key"]
        let request: Data = row["request"]
        return ClaimedRequest(
            id: row["id"], job: names[jobID] ?? "", customID: row["custom_id"],
            provider: Provider(rawValue: providerName) ?? .openaiCompatible, model: row["model"],
            cacheKey: CacheKey(bytes: key) ?? CacheKey(of: [UInt8](request)), request: [UInt8](request),
            attempt: row["attempt"], line: row["line"], priority: row["priority"])
    }

    @discardableResult
    public func renewLeases(owner: String, leaseMilliseconds: Int64) throws -> Int {
        try write { db, now in
            try db.execute(
                sql: "UPDATE requests SET lease_expires_at = ? WHERE state = 'running' AND lease_owner = ?",
                arguments: [now + leaseMilliseconds, owner])
            return db.changesCount
        }
    }

    public func finish(_ completions: [Completion], owner: String) throws -> [Bool] {
        guard !completions.isEmpty else { return [] }
        return try write { db, now in
            var deltas = CounterDeltas()
            let applied = try finishRows(db, now: now, completions, owner: owner, deltas: &deltas)
            try deltas.apply(db, now: now)
            return applied
        }
    }

    /// The outcomes' statements, inside the caller's transaction.
    func finishRows(
        _ db: Database, now: Int64, _ completions: [Completion], owner: String, deltas: inout CounterDeltas
    ) throws -> [Bool] {
        let succeed = try db.cachedStatement(
            sql: """
                UPDATE requests
                SET state = 'done', result = ?, usage = ?, cost_usd = ?, error = NULL, lease_owner = NULL,
                    lease_expires_at = NULL, finished_at = ?, updated_at = ?
                WHERE id = ? AND state = 'running' AND lease_owner = ?
                RETURNING job_id
                """)
        let fail = try db.cachedStatement(
            sql: """
                UPDATE requests
                SET state = 'failed', error = ?, lease_owner = NULL, lease_expires_at = NULL, finished_at = ?,
                    updated_at = ?
                WHERE id = ? AND state = 'running' AND lease_owner = ?
                RETURNING job_id
                """)
        let retry = try db.cachedStatement(
            sql: """
                UPDATE requests
                SET state = 'queued', not_before = ?, attempt = attempt - ?, error = COALESCE(?, error),
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                WHERE id = ? AND state = 'running' AND lease_owner = ?
                RETURNING job_id
                """)
        var applied: [Bool] = []
        applied.reserveCapacity(completions.count)
        for completion in completions {
            let jobID: Int64?
            switch completion.outcome {
            case .succeeded(let result, let usage, let cost):
                jobID = try Int64.fetchOne(
                    succeed, arguments: [result, usage, cost, now, now, completion.id, owner])
                if let jobID {
                    deltas.move(jobID, from: .running, to: .done)
                    deltas.addCost(jobID, cost ?? 0)
                }
            case .failed(let error):
                jobID = try Int64.fetchOne(fail, arguments: [error, now, now, completion.id, owner])
                if let jobID { deltas.move(jobID, from: .running, to: .failed) }
            case .retry(let notBefore, let refund, let error):
                jobID = try Int64.fetchOne(
                    retry, arguments: [notBefore, refund ? 1 : 0, error, now, completion.id, owner])
                if let jobID { deltas.move(jobID, from: .running, to: .queued) }
            }
            applied.append(jobID != nil)
        }
        return applied
    }

    @discardableResult
    public func releaseLeases(owner: String, refundAttempt: Bool) throws -> Int {
        let released = try requeueRunning(where: "lease_owner = ?", refund: refundAttempt) { _ in owner }
        // The provider batches it was advancing, too: another worker takes them on.
        try write { db, now in
            try db.execute(
                sql:
                    "UPDATE provider_batches SET owner = NULL, owner_expires_at = NULL, updated_at = ? WHERE owner = ?",
                arguments: [now, owner])
        }
        return released
    }

    @discardableResult
    public func rescueExpiredLeases() throws -> Int {
        try requeueRunning(where: "lease_expires_at < ?", refund: false) { now in now }
    }

    /// Puts running requests matching `condition` back in the queue; `argument`
    /// gives the condition's one parameter from the current time.
    private func requeueRunning(
        where condition: String, refund: Bool, argument: (Int64) -> any DatabaseValueConvertible
    ) throws -> Int {
        try write { db, now in
            let jobIDs = try Int64.fetchAll(
                db,
                sql: """
                    UPDATE requests
                    SET state = 'queued', attempt = MAX(attempt - ?, 0), lease_owner = NULL,
                        lease_expires_at = NULL, updated_at = ?
                    WHERE state = 'running' AND \(condition)
                    RETURNING job_id
                    """, arguments: [refund ? 1 : 0, now, argument(now)])
            var deltas = CounterDeltas()
            for jobID in jobIDs { deltas.move(jobID, from: .running, to: .queued) }
            try deltas.apply(db, now: now)
            return jobIDs.count
        }
    }

    public func heartbeat(_ worker: WorkerRecord) throws {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO workers (owner, host, pid, started_at, heartbeat_at, stats) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stats = excluded.stats
                    """,
                arguments: [
                    worker.owner, worker.host, worker.pid, worker.startedAt, worker.heartbeatAt, worker.stats,
                ])
        }
    }

    public func workers() throws -> [WorkerRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workers ORDER BY started_at, owner").map { row in
                WorkerRecord(
                    owner: row["owner"], host: row["host"], pid: row["pid"], startedAt: row["started_at"],
                    heartbeatAt: row["heartbeat_at"], stats: row["stats"])
            }
        }
    }

    public func removeWorker(owner: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM workers WHERE owner = ?", arguments: [owner])
        }
    }

    /// Runs `body` in an IMMEDIATE transaction with the store's clock reading.
    func write<T>(_ body: (Database, Int64) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db, configuration.now())
                return .commit
            }
            return result!
        }
    }

    func jobNames(_ db: Database) throws -> [Int64: String] {
        var names: [Int64: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, name FROM jobs") { names[row["id"]] = row["name"] }
        return names
    }
}

/// Changes to the jobs' per-state counters and costs, gathered over one transaction
/// and written once per job at its end.
struct CounterDeltas {
    private var counts: [Int64: [RequestState: Int]] = [:]
    private var costs: [Int64: Double] = [:]

    mutating func move(_ job: Int64, from old: RequestState, to new: RequestState) {
        counts[job, default: [:]][old, default: 0] -= 1
        counts[job, default: [:]][new, default: 0] += 1
    }

    mutating func add(_ job: Int64, _ state: RequestState, _ count: Int) {
        counts[job, default: [:]][state, default: 0] += count
    }

    mutating func addCost(_ job: Int64, _ cost: Double) {
        costs[job, default: 0] += cost
    }

    func apply(_ db: Database, now: Int64) throws {
        for job in Set(counts.keys).union(costs.keys) {
            let delta = counts[job] ?? [:]
            try db.execute(
                sql: """
                    UPDATE jobs SET n_queued = n_queued + ?, n_running = n_running + ?, n_done = n_done + ?,
                        n_failed = n_failed + ?, n_cancelled = n_cancelled + ?, cost_usd = cost_usd + ?,
                        updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    delta[.queued] ?? 0, delta[.running] ?? 0, delta[.done] ?? 0, delta[.failed] ?? 0,
                    delta[.cancelled] ?? 0, costs[job] ?? 0, now, job,
                ])
        }
    }
}
