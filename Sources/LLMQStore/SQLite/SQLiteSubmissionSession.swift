import Foundation
import GRDB
import GRDBSQLite
import LLMQCore

/// Adds requests inside the submission's transaction. The insert runs through
/// SQLite's C API with prepared statements: it is the bulk path of `llmq submit`.
final class SQLiteSubmissionSession: SubmissionSession {
    private let db: Database
    private let jobID: Int64
    private let submissionID: Int64
    private let replace: Bool
    private let now: Int64
    private let insert: Statement
    private let lookup: Statement
    private let touch: Statement
    private var added = 0
    private var unchanged = 0
    private var replaced = 0
    /// custom_ids this submission used in a conflict, and the line where: the row
    /// was left alone, so its submission_id cannot tell a later repeat apart.
    private var conflicted: [String: Int] = [:]
    /// Changes to the job's per-state counters.
    private var deltas = CounterDeltas()

    init(db: Database, jobID: Int64, submissionID: Int64, replace: Bool, now: Int64) throws {
        self.db = db
        self.jobID = jobID
        self.submissionID = submissionID
        self.replace = replace
        self.now = now
        insert = try db.makeStatement(
            sql: """
                INSERT INTO requests (job_id, custom_id, submission_id, line, provider, model, cache_key, request,
                    metadata, est_input_tokens, max_tokens, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
                ON CONFLICT (job_id, custom_id) DO NOTHING
                """)
        lookup = try db.makeStatement(
            sql: "SELECT id, submission_id, line, cache_key, state FROM requests WHERE job_id = ? AND custom_id = ?")
        touch = try db.makeStatement(sql: "UPDATE requests SET submission_id = ?, line = ? WHERE id = ?")
    }

    func add(_ requests: [NewRequest]) throws -> [AddOutcome] {
        var outcomes: [AddOutcome] = []
        outcomes.reserveCapacity(requests.count)
        let connection = db.sqliteConnection
        let statement = insert.sqliteStatement
        sqlite3_bind_int64(statement, 1, jobID)
        sqlite3_bind_int64(statement, 3, submissionID)
        sqlite3_bind_int64(statement, 12, now)
        for index in requests.indices {
            // Bytes are bound without copying (SQLITE_STATIC): they stay valid until
            // the step, inside these closures.
            let code = requests[index].withBoundRow(statement) { sqlite3_step(statement) }
            sqlite3_reset(statement)
            guard code == SQLITE_DONE else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)))
            }
            if sqlite3_changes(connection) == 1 {
                added += 1
                outcomes.append(.added)
            } else {
                outcomes.append(try resolveExisting(requests[index]))
            }
        }
        return outcomes
    }

    /// Decides what a known custom_id means: a duplicate in this file, the same
    /// request again, or a different one (a conflict, or a replacement).
    private func resolveExisting(_ item: NewRequest) throws -> AddOutcome {
        let request = item.request
        guard let row = try Row.fetchOne(lookup, arguments: [jobID, request.customID]) else {
            throw DatabaseError(message: "custom_id \(request.customID) neither inserted nor found")
        }
        let rowID: Int64 = row["id"]
        if row["submission_id"] as Int64 == submissionID {
            return .duplicate(line: row["line"])
        }
        if let line = conflicted[request.customID] {
            return .duplicate(line: line)
        }
        if CacheKey(bytes: row["cache_key"] as Data) == request.cacheKey {
            try touch.execute(arguments: [submissionID, item.line, rowID])
            unchanged += 1
            return .unchanged
        }
        guard replace else {
            conflicted[request.customID] = item.line
            return .conflict(line: row["line"])
        }
        let oldState = RequestState(rawValue: row["state"])!
        try db.execute(
            sql: """
                UPDATE requests SET submission_id = ?, line = ?, provider = ?, model = ?, cache_key = ?, request = ?,
                    metadata = ?, est_input_tokens = ?, max_tokens = ?, state = 'queued', attempt = 0, not_before = 0,
                    lease_owner = NULL, lease_expires_at = NULL, result = NULL, usage = NULL, cost_usd = NULL,
                    error = NULL, started_at = NULL, finished_at = NULL, exported_at = NULL, updated_at = ?
                WHERE id = ?
                """,
            arguments: [
                submissionID, item.line, request.route.provider.rawValue, request.route.model,
                Data(request.cacheKey.bytes),
                request.canonicalText, request.metadata.map { String(decoding: $0, as: UTF8.self) },
                request.estimatedInputTokens, request.maxTokens, now, rowID,
            ])
        deltas.move(jobID, from: oldState, to: .queued)
        replaced += 1
        return .replaced
    }

    /// Brings the job's counters and the submission's record up to date.
    func finish() throws {
        var deltas = self.deltas
        deltas.add(jobID, .queued, added)
        try deltas.apply(db, now: now)
        try db.execute(
            sql: "UPDATE submissions SET added = ?, unchanged = ?, replaced = ? WHERE id = ?",
            arguments: [added, unchanged, replaced, submissionID])
    }
}

extension NewRequest {
    /// Binds this request's own columns (2, 4-11) of the insert statement, then runs
    /// `body` while the bound bytes are still valid.
    fileprivate func withBoundRow(_ statement: OpaquePointer?, _ body: () -> Int32) -> Int32 {
        var customID = request.customID
        var model = request.route.model
        var provider = request.route.provider.rawValue
        return customID.withUTF8 { id in
            model.withUTF8 { model in
                provider.withUTF8 { provider in
                    request.canonical.withUnsafeBytes { canonical in
                        request.cacheKey.withUnsafeBytes { key in
                            bindText(statement, 2, UnsafeRawBufferPointer(id))
                            sqlite3_bind_int64(statement, 4, Int64(line))
                            bindText(statement, 5, UnsafeRawBufferPointer(provider))
                            bindText(statement, 6, UnsafeRawBufferPointer(model))
                            sqlite3_bind_blob(statement, 7, key.baseAddress, Int32(key.count), sqliteStatic)
                            bindText(statement, 8, canonical)
                            sqlite3_bind_int64(statement, 10, Int64(request.estimatedInputTokens))
                            if let cap = request.maxTokens {
                                sqlite3_bind_int64(statement, 11, Int64(cap))
                            } else {
                                sqlite3_bind_null(statement, 11)
                            }
                            guard let metadata = request.metadata else {
                                sqlite3_bind_null(statement, 9)
                                return body()
                            }
                            return metadata.withUnsafeBytes { metadata in
                                bindText(statement, 9, metadata)
                                return body()
                            }
                        }
                    }
                }
            }
        }
    }
}

private func bindText(_ statement: OpaquePointer?, _ index: Int32, _ bytes: UnsafeRawBufferPointer) {
    // A zero-length text must still bind a non-null pointer, or SQLite stores NULL.
    let pointer = bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)
    sqlite3_bind_text(statement, index, pointer.assumingMemoryBound(to: CChar.self), Int32(bytes.count), sqliteStatic)
}

/// SQLite's SQLITE_STATIC: the bytes outlive the statement's use of them.
let sqliteStatic: sqlite3_destructor_type? = nil
/// SQLite's SQLITE_TRANSIENT, which Swift does not import: SQLite copies the bytes.
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
