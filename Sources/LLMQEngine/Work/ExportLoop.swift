import Foundation
import LLMQCore
import LLMQStore

/// Exports finished requests to the jobs' files on a thread of its own, every
/// `interval` milliseconds, so the fsyncs never hold up claiming and sending.
final class ExportLoop: @unchecked Sendable {
    private let store: any QueueStore
    private let home: QueueHome
    private let jobs: [String]?
    private let format: (FinishedRequest) -> JobExporter.Lines
    private let interval: Double
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var failure: (any Error)?
    /// Only touched on the export thread (and after it finished).
    private var exporters: [String: JobExporter] = [:]

    init(
        store: any QueueStore, home: QueueHome, jobs: [String]?, intervalMilliseconds: Int64,
        format: @escaping (FinishedRequest) -> JobExporter.Lines
    ) {
        self.store = store
        self.home = home
        self.jobs = jobs
        self.format = format
        interval = Double(intervalMilliseconds) / 1000
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
                let stop = stopping
                condition.unlock()
                if stop { break }
                do {
                    try exportAll()
                } catch {
                    condition.withLock { failure = error }
                    break
                }
            }
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }
        thread.name = "llmq-export"
        thread.start()
    }

    /// The error that stopped the thread, if any (the worker then stops too).
    var error: (any Error)? { condition.withLock { failure } }

    /// Stops the thread, then exports whatever is left, on the caller's thread.
    func stop() throws {
        halt()
        if let failure = error { throw failure }
        try exportAll()
    }

    /// Stops the thread and waits for it (a no-op once stopped).
    func halt() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
    }

    private func exportAll() throws {
        for job in try jobs ?? store.jobs().map(\.name) {
            if exporters[job] == nil {
                exporters[job] = JobExporter(store: store, home: home, job: job, files: OutputLines.files)
            }
            try exporters[job]!.exportPending(format: format)
        }
    }
}
