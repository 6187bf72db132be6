import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore

extension LLMQ {
    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the current outcome of every finished request of a job, in input order.",
            discussion: """
                Reads the queue, not results.jsonl: that file is an append-only log where a retried \
                or replaced request has one line per outcome, while this writes each finished \
                request once, as it stands now. Requests still queued, running or cancelled are left \
                out, and counted on stderr.

                --format llmq writes results.jsonl's lines; --format openai-batch writes the lines \
                of an OpenAI Batch API output file ({"id","custom_id","response":{"status_code", \
                "request_id","body"},"error"}).
                """)

        @Argument(help: "The job.")
        var job: String

        @Option(help: "Write to this file, replaced atomically when complete (default: standard output).")
        var out: String?

        @Option(
            help: "Line format: llmq (the lines of results.jsonl) or openai-batch (an OpenAI Batch API output file).")
        var format: ResultsFormat = .llmq

        @OptionGroup var homeOptions: HomeOptions

        func validate() throws {
            if let out {
                let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                    throw ValidationError("--out \(out): there is no folder \(folder)")
                }
            }
        }

        func run() throws {
            let (home, store) = try homeOptions.openStore(job: job)
            try checkOutIsNotALog(home: home)
            let export = ResultsExport(store: store, job: job, format: format.engineFormat)
            let report: ResultsExport.Report?
            if let out {
                let file = try AtomicFileWriter(url: URL(fileURLWithPath: out))
                report = try export.run(file.write)
                if report != nil { try file.commit() }
            } else {
                let stdout = FileHandle.standardOutput
                report = try export.run { try stdout.write(contentsOf: $0) }
            }
            guard let report else { throw homeOptions.unknownJob(job, home: home, store: store) }
            FileHandle.standardError.write(Data(ResultsFormatter.summary(report, job: job, out: out).utf8))
        }

        /// Replacing results.jsonl or ledger.jsonl would break the lengths llmq work
        /// recorded for them.
        func checkOutIsNotALog(home: QueueHome) throws {
            guard let out else { return }
            let target = URL(fileURLWithPath: out).resolvingSymlinksInPath().path
            for file in OutputLines.files
            where home.jobFolder(job).appendingPathComponent(file).resolvingSymlinksInPath().path == target {
                throw ValidationError("--out \(out) is the file llmq work appends to; write the results elsewhere")
            }
        }
    }

    /// The values of `llmq results --format`.
    enum ResultsFormat: String, ExpressibleByArgument, CaseIterable {
        case llmq
        case openAIBatch = "openai-batch"

        var engineFormat: ResultsExport.Format {
            switch self {
            case .llmq: .llmq
            case .openAIBatch: .openAIBatch
            }
        }
    }
}

/// How `llmq results` reports on stderr.
enum ResultsFormatter {
    static func summary(_ report: ResultsExport.Report, job: String, out: String?) -> String {
        var lines = [
            "\(job): wrote \(report.written) result\(report.written == 1 ? "" : "s") "
                + "(\(report.succeeded) ok, \(report.failed) failed)"
                + (out.map { " to \($0)" } ?? "")
        ]
        if report.failed > 0 { lines.append("  \(report.failed) failed: llmq retry \(job) queues them again") }
        if report.queued > 0 { lines.append("  left out \(report.queued) still queued: run llmq work") }
        if report.running > 0 {
            lines.append("  left out \(report.running) running: a worker is on them; run llmq results again after")
        }
        if report.cancelled > 0 {
            lines.append("  left out \(report.cancelled) cancelled: llmq retry \(job) --cancelled queues them again")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
