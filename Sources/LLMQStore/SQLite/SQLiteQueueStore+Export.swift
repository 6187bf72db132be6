import Foundation
import GRDB
import LLMQCore

/// Export bookkeeping: which finished requests are in the job's files, and how long
/// those files are known to be.
extension SQLiteQueueStore {
    public func finishedUnexported(job: String, limit: Int) throws -> [FinishedRequest] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, custom_id, state, provider, model, result, usage, cost_usd, error, attempt, line,
                        finished_at
                    FROM requests
                    WHERE job_id = (SELECT id FROM jobs WHERE name = ?) AND exported_at IS NULL
                        AND (state = 'done' OR state = 'failed')
                    ORDER BY finished_at, id LIMIT ?
                    """, arguments: [job, limit]
            ).map(Self.finishedRequest)
        }
    }

    public func recordExport(job: String, ids: [Int64], offsets: [String: Int64]) throws {
        try write { db, now in
            guard let jobID = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job]) else {
                throw DatabaseError(message: "no job named \(job)")
            }
            // Fenced on the request still being finished: one retried (or replaced)
            // since it was read is queued again, and its next outcome must be exported.
            let mark = try db.cachedStatement(
                sql: """
                    UPDATE requests SET exported_at = ?
                    WHERE id = ? AND job_id = ? AND exported_at IS NULL AND (state = 'done' OR state = 'failed')
                    """)
            for id in ids { try mark.execute(arguments: [now, id, jobID]) }
            for (file, offset) in offsets {
                try db.execute(
                    sql: """
                        INSERT INTO exports (job_id, file, byte_offset) VALUES (?, ?, ?)
                        ON CONFLICT (job_id, file) DO UPDATE SET byte_offset = excluded.byte_offset
                        """, arguments: [jobID, file, offset])
            }
        }
    }

    public func exportOffsets(job: String) throws -> [String: Int64] {
        try pool.read { db in
            var offsets: [String: Int64] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT file, byte_offset FROM exports WHERE job_id = (SELECT id FROM jobs WHERE name = ?)",
                arguments: [job])
            {
                offsets[row["file"]] = row["byte_offset"]
            }
            return offsets
        }
    }
}
