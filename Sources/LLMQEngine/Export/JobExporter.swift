import Foundation
import LLMQCore
import LLMQStore

/// Appends a job's finished requests to its JSONL files exactly once.
///
/// The store is the source of truth. Lines are appended and fsynced first; then the
/// requests are marked exported and the files' new lengths recorded, in one
/// transaction. Each export holds an exclusive lock on the job's folder
/// (`.export.lock`, so several `llmq work` processes take turns) and first cuts each
/// file back to its recorded length: a crash between the two steps (or mid-line)
/// leaves no torn or doubled line, the unmarked requests are simply written again.
public final class JobExporter {
    public let job: String
    let store: any QueueStore
    let folder: URL
    let files: [String]

    /// What `format` returns for one request: lines to append, by file name.
    public typealias Lines = [String: [JSONValue]]

    /// A file is shorter than what llmq recorded writing to it: it was changed
    /// outside llmq, and appending would lose or double lines.
    public struct ShortFileError: Error, CustomStringConvertible {
        public var path: String
        public var length: UInt64
        public var recorded: Int64
        public var job: String

        public var description: String {
            "\(path) holds \(length) bytes but llmq had written \(recorded): it was changed outside llmq. "
                + "Move it back, or move the job's results.jsonl and ledger.jsonl away and write them afresh "
                + "with `llmq results \(job) --out FILE`."
        }
    }

    /// `files` are the files `format` writes to; they are created empty if missing.
    public init(store: any QueueStore, home: QueueHome, job: String, files: [String]) {
        self.store = store
        self.job = job
        self.files = files
        folder = home.jobFolder(job)
    }

    public func url(_ file: String) -> URL { folder.appendingPathComponent(file) }

    /// Exports every finished, unexported request, `batch` at a time, holding the
    /// job's export lock. Returns how many were exported.
    @discardableResult
    public func exportPending(batch: Int = 1_000, format: (FinishedRequest) -> Lines) throws -> Int {
        try withLock {
            try reconcile()
            var exported = 0
            while true {
                let requests = try store.finishedUnexported(job: job, limit: batch)
                if requests.isEmpty { return exported }
                var buffers: [String: [UInt8]] = [:]
                for request in requests {
                    for (file, lines) in format(request) {
                        for line in lines {
                            CanonicalJSON.write(line, to: &buffers[file, default: []])
                            buffers[file, default: []].append(0x0A)
                        }
                    }
                }
                var offsets: [String: Int64] = [:]
                for (file, bytes) in buffers {
                    let handle = try open(file)
                    defer { try? handle.close() }
                    try handle.seekToEnd()
                    try handle.write(contentsOf: bytes)
                    try handle.synchronize()
                    offsets[file] = Int64(try handle.offset())
                }
                try store.recordExport(job: job, ids: requests.map(\.id), offsets: offsets)
                exported += requests.count
            }
        }
    }

    /// Cuts every file back to its recorded length (a longer file holds lines of
    /// requests not marked exported: a writer died before recording them).
    func reconcile() throws {
        let offsets = try store.exportOffsets(job: job)
        for file in Set(files).union(offsets.keys) {
            let handle = try open(file)
            defer { try? handle.close() }
            let recorded = offsets[file] ?? 0
            let length = try handle.seekToEnd()
            if length < UInt64(recorded) {
                throw ShortFileError(path: url(file).path, length: length, recorded: recorded, job: job)
            }
            if length != UInt64(recorded) {
                try handle.truncate(atOffset: UInt64(recorded))
                try handle.synchronize()
            }
        }
    }

    /// Runs `body` holding the job's export lock (an advisory `flock`, released by
    /// the kernel if the process dies).
    func withLock<T>(_ body: () throws -> T) throws -> T {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try FileLock.withLock(url(".export.lock").path, body)
    }

    /// A file of the job opened for writing, created if missing.
    func open(_ file: String) throws -> FileHandle {
        let path = url(file).path
        if !FileManager.default.fileExists(atPath: path),
            !FileManager.default.createFile(atPath: path, contents: nil)
        {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return try FileHandle(forWritingTo: url(file))
    }
}
