import Foundation
import LLMQCore
import LLMQStore

/// Appends a job's finished requests to its JSONL files exactly once.
///
/// The store is the source of truth. Lines are appended and fsynced first; then the
/// requests are marked exported and the files' new lengths recorded, in one
/// transaction. On start, `recover()` cuts each file back to its recorded length,
/// so a crash between the two steps (or mid-line) leaves no torn or doubled line:
/// the unmarked requests are simply written again.
public final class JobExporter {
    public let job: String
    let store: any QueueStore
    let folder: URL

    /// What `format` returns for one request: lines to append, by file name.
    public typealias Lines = [String: [JSONValue]]

    public init(store: any QueueStore, home: QueueHome, job: String) {
        self.store = store
        self.job = job
        folder = home.jobFolder(job)
    }

    public func url(_ file: String) -> URL { folder.appendingPathComponent(file) }

    /// Cuts every file this job has a recorded length for back to that length (a
    /// file longer than its record holds lines of requests not marked exported).
    /// `files` are created empty if missing.
    public func recover(files: [String]) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let offsets = try store.exportOffsets(job: job)
        for file in Set(files).union(offsets.keys) {
            let handle = try open(file)
            defer { try? handle.close() }
            let recorded = UInt64(offsets[file] ?? 0)
            if try handle.seekToEnd() != recorded {
                try handle.truncate(atOffset: recorded)
                try handle.synchronize()
            }
        }
    }

    /// Exports every finished, unexported request, `batch` at a time. Returns how
    /// many were exported. Call `recover(files:)` once before the first export.
    @discardableResult
    public func exportPending(batch: Int = 1_000, format: (FinishedRequest) -> Lines) throws -> Int {
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
