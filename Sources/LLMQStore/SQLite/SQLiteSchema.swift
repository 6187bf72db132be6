import GRDB

/// The SQLite schema, as GRDB migrations. Add a new migration for every change;
/// never edit one that has shipped.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, submissions, requests") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        mode TEXT NOT NULL DEFAULT 'online' CHECK (mode = 'online' OR mode = 'batch'),
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        -- Counters kept in step with requests.state by every write, so
                        -- status answers at once on millions of rows.
                        n_queued INTEGER NOT NULL DEFAULT 0,
                        n_running INTEGER NOT NULL DEFAULT 0,
                        n_done INTEGER NOT NULL DEFAULT 0,
                        n_failed INTEGER NOT NULL DEFAULT 0,
                        n_cancelled INTEGER NOT NULL DEFAULT 0,
                        cost_usd REAL NOT NULL DEFAULT 0
                    );

                    CREATE TABLE submissions (
                        id INTEGER PRIMARY KEY,
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        source TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        added INTEGER NOT NULL DEFAULT 0,
                        unchanged INTEGER NOT NULL DEFAULT 0,
                        replaced INTEGER NOT NULL DEFAULT 0
                    );

                    CREATE TABLE requests (
                        id INTEGER PRIMARY KEY,
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        custom_id TEXT NOT NULL,
                        submission_id INTEGER NOT NULL,
                        line INTEGER NOT NULL,
                        -- An OR chain, not IN (…): SQLite builds a temporary b-tree for
                        -- an IN list on every insert, which halved bulk insert speed.
                        state TEXT NOT NULL DEFAULT 'queued'
                            CHECK (state = 'queued' OR state = 'running' OR state = 'done' OR state = 'failed'
                                OR state = 'cancelled'),
                        priority INTEGER NOT NULL DEFAULT 0,
                        attempt INTEGER NOT NULL DEFAULT 0,
                        not_before INTEGER NOT NULL DEFAULT 0,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        provider TEXT NOT NULL,
                        model TEXT NOT NULL,
                        cache_key BLOB NOT NULL,
                        request TEXT NOT NULL,
                        metadata TEXT,
                        est_input_tokens INTEGER NOT NULL DEFAULT 0,
                        max_tokens INTEGER,
                        result TEXT,
                        usage TEXT,
                        cost_usd REAL,
                        error TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        started_at INTEGER,
                        finished_at INTEGER,
                        exported_at INTEGER,
                        UNIQUE (job_id, custom_id)
                    );

                    -- What a worker claims next: queued rows by priority, then age.
                    CREATE INDEX requests_claim ON requests (priority, not_before, id) WHERE state = 'queued';
                    -- Leases to rescue when they expire.
                    CREATE INDEX requests_lease ON requests (lease_expires_at) WHERE state = 'running';
                    """)
        }
        migrator.registerMigration("v2: workers, lease owners") { db in
            try db.execute(
                sql: """
                    -- Registered worker processes: their leases carry `owner`.
                    CREATE TABLE workers (
                        owner TEXT PRIMARY KEY,
                        host TEXT NOT NULL,
                        pid INTEGER NOT NULL,
                        started_at INTEGER NOT NULL,
                        heartbeat_at INTEGER NOT NULL,
                        stats TEXT
                    );

                    -- A worker's own running requests (renewal, release), without a scan.
                    CREATE INDEX requests_owner ON requests (lease_owner) WHERE state = 'running';
                    """)
        }
        migrator.registerMigration("v3: export offsets") { db in
            try db.execute(
                sql: """
                    -- How far each of a job's output files is known good: on start the
                    -- exporter truncates the file to this offset, so a line written but
                    -- not recorded before a crash is written again exactly once.
                    CREATE TABLE exports (
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        file TEXT NOT NULL,
                        byte_offset INTEGER NOT NULL,
                        PRIMARY KEY (job_id, file)
                    ) WITHOUT ROWID;

                    -- Finished requests not yet written to the job's files.
                    CREATE INDEX requests_unexported ON requests (job_id, finished_at, id)
                        WHERE exported_at IS NULL AND (state = 'done' OR state = 'failed');
                    """)
        }
        migrator.registerMigration("v4: finished requests in input order") { db in
            try db.execute(
                sql: """
                    -- `llmq results` walks a job's finished requests in input order with no
                    -- sort. Partial, so submitting (every row starts queued) pays nothing.
                    CREATE INDEX requests_finished_line ON requests (job_id, line, id)
                        WHERE state = 'done' OR state = 'failed';
                    """)
        }
        migrator.registerMigration("v5: provider batches") { db in
            try db.execute(
                sql: """
                    -- Every batch llmq sends to a provider's batch API, and every step of
                    -- it, recorded before the next step starts: the local file and its
                    -- hash, the intent to upload or create (so a crash between the
                    -- provider's answer and our record can be found again, never
                    -- redone blindly), the remote ids, status and counts, collection.
                    CREATE TABLE provider_batches (
                        id INTEGER PRIMARY KEY,
                        job_id INTEGER NOT NULL REFERENCES jobs(id),
                        llmq_id TEXT NOT NULL UNIQUE,
                        provider TEXT NOT NULL,
                        model TEXT NOT NULL,
                        key_index INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        local_file TEXT NOT NULL,
                        file_sha256 TEXT NOT NULL,
                        request_count INTEGER NOT NULL,
                        bytes INTEGER NOT NULL,
                        input_file_id TEXT,
                        remote_id TEXT,
                        remote_status TEXT,
                        total INTEGER,
                        succeeded INTEGER,
                        failed INTEGER,
                        output_location TEXT,
                        error_location TEXT,
                        intent_at INTEGER,
                        next_poll_at INTEGER NOT NULL DEFAULT 0,
                        poll_interval_ms INTEGER NOT NULL DEFAULT 0,
                        cancel_requested INTEGER NOT NULL DEFAULT 0,
                        owner TEXT,
                        owner_expires_at INTEGER,
                        error TEXT,
                        failure TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        ended_at INTEGER,
                        collected_at INTEGER
                    );
                    CREATE INDEX provider_batches_job ON provider_batches (job_id, id);

                    -- The batch a request was last sent in (kept after it finished, for
                    -- the record). While it is in a batch the request is running, leased
                    -- to 'batch:<id>' with no expiry, so no worker rescues it.
                    ALTER TABLE requests ADD COLUMN batch_id INTEGER;
                    """)
        }
        return migrator
    }
}
