import Foundation
import GRDB
import LLMQCore

/// Provider batches: what `llmq work` records as it sends batch-mode jobs through
/// the providers' batch APIs. A batch's requests stay `running`, leased to
/// `batch:<id>` with no expiry, from the moment its file is recorded until its
/// results are collected; the batch itself is advanced by one worker at a time
/// (`owner`, with an expiring lease).
extension SQLiteQueueStore {
    public func setMode(job: String, mode: JobMode) throws -> Bool {
        try write { db, now in
            try db.execute(
                sql: "UPDATE jobs SET mode = ?, updated_at = ? WHERE name = ?", arguments: [mode.rawValue, now, job])
            return db.changesCount > 0
        }
    }

    public func claimForBatch(limit: Int, owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws
        -> [ClaimedRequest]
    {
        try claim(limit: limit, owner: owner, leaseMilliseconds: leaseMilliseconds, jobs: jobs, mode: .batch)
    }

    public func recordBatch(_ batch: NewBatch, owner: String) throws -> BatchRecord {
        try write { db, now in
            guard let jobID = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [batch.job])
            else { throw DatabaseError(message: "no job named \(batch.job)") }
            try db.execute(
                sql: """
                    INSERT INTO provider_batches (job_id, llmq_id, provider, model, key_index, state, local_file,
                        file_sha256, request_count, bytes, poll_interval_ms, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    jobID, batch.llmqID, batch.provider.rawValue, batch.model, batch.keyIndex, batch.localFile,
                    batch.fileSHA256, batch.requestIDs.count, batch.bytes, batch.pollIntervalMilliseconds, now, now,
                ])
            let id = db.lastInsertedRowID
            let move = try db.cachedStatement(
                sql: """
                    UPDATE requests SET lease_owner = ?, lease_expires_at = NULL, batch_id = ?, updated_at = ?
                    WHERE id = ? AND state = 'running' AND lease_owner = ?
                    """)
            var moved = 0
            for requestID in batch.requestIDs + batch.followerIDs {
                try move.execute(arguments: [BatchRecord.requestOwner(id), id, now, requestID, owner])
                moved += db.changesCount
            }
            // Rolls the whole transaction back: a request another worker holds now
            // must not be sent twice.
            let expected = batch.requestIDs.count + batch.followerIDs.count
            if moved != expected { throw BatchLeaseLost(missing: expected - moved) }
            return try fetchBatch(db, id: id)!
        }
    }

    public func joinBatch(_ batch: Int64, followers: [Int64], owner: String) throws -> [Int64] {
        guard !followers.isEmpty else { return [] }
        return try write { db, now in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM provider_batches WHERE id = ? AND state NOT IN ('collected', 'failed')",
                    arguments: [batch]) != nil
            else { return [] }
            let move = try db.cachedStatement(
                sql: """
                    UPDATE requests SET lease_owner = ?, lease_expires_at = NULL, batch_id = ?, updated_at = ?
                    WHERE id = ? AND state = 'running' AND lease_owner = ?
                    """)
            var moved: [Int64] = []
            for id in followers {
                try move.execute(arguments: [BatchRecord.requestOwner(batch), batch, now, id, owner])
                if db.changesCount > 0 { moved.append(id) }
            }
            return moved
        }
    }

    public func batches(job: String?, unfinished: Bool) throws -> [BatchRecord] {
        try pool.read { db in
            var sql = Self.batchSelect
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let job {
                conditions.append("b.job_id = (SELECT id FROM jobs WHERE name = ?)")
                arguments.append(job)
            }
            if unfinished { conditions.append("b.state NOT IN ('collected', 'failed')") }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY b.id"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map(Self.batchRecord)
        }
    }

    public func leaseBatches(owner: String, leaseMilliseconds: Int64, jobs: [String]?) throws -> [BatchRecord] {
        try write { db, now in
            var jobFilter = ""
            var arguments: [(any DatabaseValueConvertible)?] = [owner, now + leaseMilliseconds, now, owner, now]
            if let jobs {
                jobFilter =
                    " AND job_id IN (SELECT id FROM jobs WHERE name IN ("
                    + Array(repeating: "?", count: jobs.count).joined(separator: ", ") + "))"
                arguments += jobs.map { $0 as (any DatabaseValueConvertible)? }
            }
            try db.execute(
                sql: """
                    UPDATE provider_batches SET owner = ?, owner_expires_at = ?, updated_at = ?
                    WHERE state NOT IN ('collected', 'failed')
                        AND (owner IS NULL OR owner = ? OR owner_expires_at < ?)\(jobFilter)
                    """, arguments: StatementArguments(arguments))
            return try Row.fetchAll(
                db,
                sql: Self.batchSelect + " WHERE b.owner = ? AND b.state NOT IN ('collected', 'failed') ORDER BY b.id",
                arguments: [owner]
            ).map(Self.batchRecord)
        }
    }

    @discardableResult
    public func updateBatch(_ batch: BatchRecord, owner: String) throws -> Bool {
        try write { db, now in
            try db.execute(
                sql: """
                    UPDATE provider_batches SET state = ?, input_file_id = ?, remote_id = ?, remote_status = ?,
                        total = ?, succeeded = ?, failed = ?, output_location = ?, error_location = ?, intent_at = ?,
                        next_poll_at = ?, poll_interval_ms = ?, cancel_requested = MAX(cancel_requested, ?),
                        error = ?, failure = ?, ended_at = ?, collected_at = ?, updated_at = ?
                    WHERE id = ? AND owner = ?
                    """,
                arguments: [
                    batch.state.rawValue, batch.inputFileID, batch.remoteID, batch.remoteStatus, batch.total,
                    batch.succeeded, batch.failed, batch.outputLocation, batch.errorLocation, batch.intentAt,
                    batch.nextPollAt, batch.pollIntervalMilliseconds, batch.cancelRequested ? 1 : 0, batch.error,
                    batch.failure, batch.endedAt, batch.collectedAt, now, batch.id, owner,
                ])
            return db.changesCount > 0
        }
    }

    public func renewBatch(_ id: Int64, owner: String, leaseMilliseconds: Int64) throws -> Bool {
        try write { db, now in
            try db.execute(
                sql: "UPDATE provider_batches SET owner_expires_at = ? WHERE id = ? AND owner = ?",
                arguments: [now + leaseMilliseconds, id, owner])
            return db.changesCount > 0
        }
    }

    public func batchedRequests(batch id: Int64) throws -> [BatchedRequest] {
        try pool.read { db in
            // Read through a cursor, each row straight into its small value, and
            // model names shared: a batch can hold 100,000 requests.
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, custom_id, model, cache_key, attempt,
                        CASE WHEN length(cache_key) = 32 THEN NULL ELSE request END AS request
                    FROM requests INDEXED BY requests_owner
                    WHERE state = 'running' AND lease_owner = ?
                    """, arguments: [BatchRecord.requestOwner(id)])
            var requests: [BatchedRequest] = []
            var models: [String: String] = [:]
            while let row = try rows.next() {
                let model: String = row["model"]
                let shared = models[model] ?? model
                models[model] = shared
                // The request itself is read only if its stored key is unusable.
                let key: Data = row["cache_key"]
                let request: Data? = row["request"]
                requests.append(
                    BatchedRequest(
                        id: row["id"], customID: row["custom_id"], model: shared,
                        cacheKey: CacheKey(bytes: key) ?? CacheKey(of: [UInt8](request ?? Data())),
                        attempt: row["attempt"]))
            }
            return requests
        }
    }

    public func collectBatch(
        _ batch: BatchRecord, owner: String, completions: [Completion], handOverLeftovers leaseMilliseconds: Int64?
    ) throws -> [ClaimedRequest]? {
        try write { db, now -> [ClaimedRequest]? in
            // The stored flag, not the caller's copy: `llmq cancel` may have set it since.
            guard
                let cancelRequested = try Bool.fetchOne(
                    db, sql: "SELECT cancel_requested FROM provider_batches WHERE id = ? AND owner = ?",
                    arguments: [batch.id, owner])
            else { return nil }
            var deltas = CounterDeltas()
            _ = try finishRows(db, now: now, completions, owner: batch.requestOwner, deltas: &deltas)
            // With the online fallback, what did not run stays running, leased to
            // the collecting worker, which sends it online now.
            var handedOver: [ClaimedRequest] = []
            if let leaseMilliseconds, !cancelRequested {
                let names = try jobNames(db)
                handedOver = try Row.fetchAll(
                    db,
                    sql: """
                        UPDATE requests SET lease_owner = ?, lease_expires_at = ?, updated_at = ?
                        WHERE state = 'running' AND lease_owner = ?
                        RETURNING id, job_id, custom_id, provider, model, cache_key, request, attempt, line, priority
                        """, arguments: [owner, now + leaseMilliseconds, now, batch.requestOwner]
                ).map { Self.claimedRequest($0, jobNames: names) }
            }
            // Whatever did not run goes back to the queue (the attempt counts: a
            // request that batch after batch leaves unrun must end), or is cancelled
            // if that is what the user asked for.
            let leftover: RequestState = cancelRequested ? .cancelled : .queued
            let jobIDs = try Int64.fetchAll(
                db,
                sql: """
                    UPDATE requests
                    SET state = ?, attempt = CASE WHEN ? THEN MAX(attempt - 1, 0) ELSE attempt END,
                        lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                    WHERE state = 'running' AND lease_owner = ?
                    RETURNING job_id
                    """, arguments: [leftover.rawValue, cancelRequested, now, batch.requestOwner])
            for jobID in jobIDs { deltas.move(jobID, from: .running, to: leftover) }
            try deltas.apply(db, now: now)
            var collected = batch
            collected.state = batch.state == .failed ? .failed : .collected
            collected.collectedAt = now
            try db.execute(
                sql: """
                    UPDATE provider_batches SET state = ?, collected_at = ?, owner = NULL, owner_expires_at = NULL,
                        total = ?, succeeded = ?, failed = ?, remote_status = ?, error = ?, ended_at = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    collected.state.rawValue, now, batch.total, batch.succeeded, batch.failed, batch.remoteStatus,
                    batch.error, batch.endedAt ?? now, now, batch.id,
                ])
            return handedOver
        }
    }

    public func requestBatchCancel(job: String) throws -> [BatchRecord] {
        try write { db, now in
            try db.execute(
                sql: """
                    UPDATE provider_batches SET cancel_requested = 1, updated_at = ?
                    WHERE job_id = (SELECT id FROM jobs WHERE name = ?) AND state NOT IN ('collected', 'failed')
                    """, arguments: [now, job])
            return try Row.fetchAll(
                db,
                sql: Self.batchSelect
                    + " WHERE b.job_id = (SELECT id FROM jobs WHERE name = ?) AND b.state NOT IN ('collected', 'failed')",
                arguments: [job]
            ).map(Self.batchRecord)
        }
    }

    static let batchSelect = "SELECT b.*, j.name AS job_name FROM provider_batches b JOIN jobs j ON j.id = b.job_id"

    func fetchBatch(_ db: Database, id: Int64) throws -> BatchRecord? {
        try Row.fetchOne(db, sql: Self.batchSelect + " WHERE b.id = ?", arguments: [id]).map(Self.batchRecord)
    }

    static func batchRecord(_ row: Row) -> BatchRecord {
        BatchRecord(
            id: row["id"], job: row["job_name"], llmqID: row["llmq_id"],
            provider: Provider(rawValue: row["provider"]) ?? .openai, model: row["model"], keyIndex: row["key_index"],
            state: BatchRecord.State(rawValue: row["state"]) ?? .failed, localFile: row["local_file"],
            fileSHA256: row["file_sha256"], requestCount: row["request_count"], bytes: row["bytes"],
            inputFileID: row["input_file_id"], remoteID: row["remote_id"], remoteStatus: row["remote_status"],
            total: row["total"], succeeded: row["succeeded"], failed: row["failed"],
            outputLocation: row["output_location"], errorLocation: row["error_location"], intentAt: row["intent_at"],
            nextPollAt: row["next_poll_at"], pollIntervalMilliseconds: row["poll_interval_ms"],
            cancelRequested: row["cancel_requested"] != 0, error: row["error"], failure: row["failure"],
            createdAt: row["created_at"],
            updatedAt: row["updated_at"], endedAt: row["ended_at"], collectedAt: row["collected_at"])
    }
}
