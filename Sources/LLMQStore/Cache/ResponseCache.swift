import Foundation
import GRDB
import LLMQCore

/// A complete, successful answer kept so the same request is never paid for twice.
public struct CachedResponse: Sendable, Equatable {
    public var provider: Provider
    public var model: String
    /// The answer as llmq records it in results (a JSON text).
    public var response: String
    /// The usage it was paid for (a JSON text, `Usage.json`).
    public var usage: String
    /// What it cost when it was paid for; nil when the price was unknown.
    public var costUSD: Double?
    /// Unix milliseconds.
    public var createdAt: Int64

    public init(
        provider: Provider, model: String, response: String, usage: String, costUSD: Double?, createdAt: Int64
    ) {
        self.provider = provider
        self.model = model
        self.response = response
        self.usage = usage
        self.costUSD = costUSD
        self.createdAt = createdAt
    }
}

/// What `llmq cache stats` shows.
public struct CacheStats: Sendable, Equatable {
    public var entries: Int
    /// Size of the cache file's pages in use.
    public var bytes: Int64
    /// Answers served from the cache instead of a provider.
    public var hits: Int
    /// Sum of the known costs those hits did not pay again.
    public var savedUSD: Double
}

/// Answers keyed by the SHA-256 of the canonical request, shared by all jobs.
public protocol ResponseCache: Sendable {
    /// The answer for a request, if one was stored.
    func lookup(_ key: CacheKey) throws -> CachedResponse?
    /// Stores an answer (only complete successful ones belong here); an existing
    /// entry for the key is kept.
    func store(_ key: CacheKey, _ response: CachedResponse) throws
    /// Counts hits and what they saved, many in one transaction.
    func recordHits(_ hits: [(key: CacheKey, savedUSD: Double?)]) throws
    func stats() throws -> CacheStats
    /// Deletes every entry; returns how many there were.
    @discardableResult
    func clear() throws -> Int
}

/// The response cache in its own SQLite file (`cache.sqlite` in the home, or
/// `--cache PATH` / `LLMQ_CACHE`), so it can be shared wider than one queue.
public final class SQLiteResponseCache: ResponseCache, Sendable {
    let pool: DatabasePool
    let now: @Sendable () -> Int64

    public init(url: URL, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) })
        throws
    {
        self.now = now
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(30)
        config.label = "llmq.cache"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: url.path, configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: responses") { db in
            try db.execute(
                sql: """
                    CREATE TABLE responses (
                        key BLOB PRIMARY KEY,
                        provider TEXT NOT NULL,
                        model TEXT NOT NULL,
                        response TEXT NOT NULL,
                        usage TEXT NOT NULL,
                        cost_usd REAL,
                        created_at INTEGER NOT NULL,
                        hits INTEGER NOT NULL DEFAULT 0,
                        saved_usd REAL NOT NULL DEFAULT 0,
                        last_hit_at INTEGER
                    ) WITHOUT ROWID;
                    """)
        }
        // Two `llmq work` processes starting on a new cache both created the table.
        try FileLock.withLock(url.path + ".migrate-lock") { try migrator.migrate(pool) }
    }

    /// The cache a command should use: `--cache PATH`, else `LLMQ_CACHE`, else
    /// `cache.sqlite` in the queue home.
    public static func url(
        option: String?, home: QueueHome, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> URL {
        if let path = option ?? environment["LLMQ_CACHE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            return URL(fileURLWithPath: path)
        }
        return home.cacheDatabase
    }

    public func lookup(_ key: CacheKey) throws -> CachedResponse? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM responses WHERE key = ?", arguments: [Data(key.bytes)]).map {
                row in
                CachedResponse(
                    provider: Provider(rawValue: row["provider"]) ?? .openaiCompatible, model: row["model"],
                    response: row["response"], usage: row["usage"], costUSD: row["cost_usd"],
                    createdAt: row["created_at"])
            }
        }
    }

    public func store(_ key: CacheKey, _ response: CachedResponse) throws {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO responses (key, provider, model, response, usage, cost_usd, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
                    """,
                arguments: [
                    Data(key.bytes), response.provider.rawValue, response.model, response.response, response.usage,
                    response.costUSD, response.createdAt,
                ])
        }
    }

    public func recordHits(_ hits: [(key: CacheKey, savedUSD: Double?)]) throws {
        guard !hits.isEmpty else { return }
        let time = now()
        try pool.write { db in
            let statement = try db.cachedStatement(
                sql: "UPDATE responses SET hits = hits + 1, saved_usd = saved_usd + ?, last_hit_at = ? WHERE key = ?")
            for hit in hits {
                try statement.execute(arguments: [hit.savedUSD ?? 0, time, Data(hit.key.bytes)])
            }
        }
    }

    public func stats() throws -> CacheStats {
        try pool.read { db in
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) AS n, COALESCE(SUM(hits), 0) AS hits, COALESCE(SUM(saved_usd), 0) AS saved FROM responses"
            )!
            let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            return CacheStats(entries: row["n"], bytes: pages * pageSize, hits: row["hits"], savedUSD: row["saved"])
        }
    }

    @discardableResult
    public func clear() throws -> Int {
        let removed = try pool.write { db in
            try db.execute(sql: "DELETE FROM responses")
            return db.changesCount
        }
        try pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
        return removed
    }
}
