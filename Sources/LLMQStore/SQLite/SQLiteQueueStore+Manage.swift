import Foundation
import GRDB
import LLMQCore

/// What `llmq results`, `llmq retry` and `llmq cancel` do to the queue.
///
/// Retry and cancel are one transaction each, keep the jobs' counters in step, and
/// never touch a running request: its lease holder still owns it and finishes it.
extension SQLiteQueueStore {
    public func finishedRequests(job: String, pageSize: Int, _ body: ([FinishedRequest]) throws -> Void) throws
        -> JobSummary?
    {
        let pageSize = max(1, pageSize)
        // One read transaction: every page comes from the same snapshot, whatever
        // workers, retries or cancels commit meanwhile. The partial index
        // requests_finished_line walks the rows in input order, so nothing is sorted
        // and one cursor streams them.
        return try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE name = ?", arguments: [job]) else {
                return nil
            }
            let jobID: Int64 = row["id"]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, custom_id, state, provider, model, result, usage, cost_usd, error, attempt, line,
                        finished_at
                    FROM requests INDEXED BY requests_finished_line
                    WHERE job_id = ? AND (state = 'done' OR state = 'failed')
                    ORDER BY line, id
                    """, arguments: [jobID])
            var page: [FinishedRequest] = []
            page.reserveCapacity(pageSize)
            while let row = try rows.next() {
                page.append(Self.finishedRequest(row))
                if page.count == pageSize {
                    try body(page)
                    page.removeAll(keepingCapacity: true)
                }
            }
            if !page.isEmpty { try body(page) }
            return Self.summary(row)
        }
    }

    public func retry(job: String, includeCancelled: Bool) throws -> Requeued? {
        try write { db, now in
            guard let jobID = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job]) else {
                return nil
            }
            let requeue = try db.cachedStatement(
                sql: """
                    UPDATE requests
                    SET state = 'queued', attempt = 0, not_before = 0, error = NULL, result = NULL, usage = NULL,
                        cost_usd = NULL, lease_owner = NULL, lease_expires_at = NULL, started_at = NULL,
                        finished_at = NULL, exported_at = NULL, updated_at = ?
                    WHERE job_id = ? AND state = ?
                    """)
            var requeued = Requeued()
            var deltas = CounterDeltas()
            for state in includeCancelled ? [RequestState.failed, .cancelled] : [.failed] {
                try requeue.execute(arguments: [now, jobID, state.rawValue])
                let count = db.changesCount
                deltas.add(jobID, state, -count)
                deltas.add(jobID, .queued, count)
                if state == .failed { requeued.failed = count } else { requeued.cancelled = count }
            }
            try deltas.apply(db, now: now)
            return requeued
        }
    }

    public func cancel(job: String) throws -> Int? {
        try write { db, now in
            guard let jobID = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job]) else {
                return nil
            }
            // The attempt count and any error of an earlier attempt stay, for the record.
            try db.execute(
                sql: """
                    UPDATE requests SET state = 'cancelled', updated_at = ?
                    WHERE job_id = ? AND state = 'queued'
                    """, arguments: [now, jobID])
            let count = db.changesCount
            var deltas = CounterDeltas()
            deltas.add(jobID, .queued, -count)
            deltas.add(jobID, .cancelled, count)
            try deltas.apply(db, now: now)
            return count
        }
    }

    /// A finished request from a row of the `requests` table.
    static func finishedRequest(_ row: Row) -> FinishedRequest {
        FinishedRequest(
            id: row["id"], customID: row["custom_id"], state: RequestState(rawValue: row["state"]) ?? .failed,
            provider: Provider(rawValue: row["provider"]) ?? .openaiCompatible, model: row["model"],
            result: row["result"], usage: row["usage"], costUSD: row["cost_usd"], error: row["error"],
            attempt: row["attempt"], line: row["line"], finishedAt: row["finished_at"] ?? 0)
    }
}
