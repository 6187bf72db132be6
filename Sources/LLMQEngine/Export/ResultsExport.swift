import Foundation
import LLMQCore
import LLMQStore

/// `llmq results`: the current outcome of every finished request of a job, in input
/// order, read from the store a page at a time.
///
/// The job's results.jsonl is an append-only log (a retried or replaced request gets
/// a second line there after its new outcome); this writes each request once, as it
/// stands now.
public struct ResultsExport {
    public enum Format: String, Sendable, CaseIterable {
        /// The line results.jsonl holds (`OutputLines.resultLine`).
        case llmq
        /// A line of an OpenAI Batch API output file (`OpenAIBatchLine`).
        case openAIBatch = "openai-batch"
    }

    /// What was written, and what was left out because it has no outcome yet.
    public struct Report: Sendable, Equatable {
        public var written = 0
        public var succeeded = 0
        public var failed = 0
        public var queued = 0
        public var running = 0
        public var cancelled = 0
    }

    public let store: any QueueStore
    public let job: String
    public let format: Format
    /// Requests read per page, and so held in memory at once.
    public var pageSize = 1_000

    public init(store: any QueueStore, job: String, format: Format) {
        self.store = store
        self.job = job
        self.format = format
    }

    /// Hands the lines to `write`, many at a time (each chunk ends with a newline).
    /// Returns nil if there is no such job.
    public func run(_ write: ([UInt8]) throws -> Void) throws -> Report? {
        var report = Report()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 17)
        let summary = try store.finishedRequests(job: job, pageSize: pageSize) { page in
            for request in page {
                CanonicalJSON.write(line(for: request), to: &buffer)
                buffer.append(0x0A)
                if request.state == .done { report.succeeded += 1 } else { report.failed += 1 }
            }
            report.written += page.count
            if buffer.count >= 1 << 16 {
                try write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        guard let summary else { return nil }
        if !buffer.isEmpty { try write(buffer) }
        report.queued = summary.queued
        report.running = summary.running
        report.cancelled = summary.cancelled
        return report
    }

    public func line(for request: FinishedRequest) -> JSONValue {
        switch format {
        case .llmq: OutputLines.resultLine(for: request)
        case .openAIBatch: OpenAIBatchLine.line(for: request, job: job)
        }
    }
}
