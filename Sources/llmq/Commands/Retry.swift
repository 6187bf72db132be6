import ArgumentParser
import Foundation
import LLMQStore

extension LLMQ {
    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a job's failed requests again (and cancelled ones with --cancelled).",
            discussion: """
                In one transaction, failed requests go back to the queue with their attempts \
                counted afresh and their error cleared; running requests are left alone. Run \
                llmq work to send them: each new outcome is appended to results.jsonl (a second \
                line for that custom_id), and llmq results writes the current one.
                """)

        @Argument(help: "The job.")
        var job: String

        @Flag(help: "Also queue the requests that llmq cancel cancelled.")
        var cancelled = false

        @OptionGroup var homeOptions: HomeOptions

        func run() throws {
            let (home, store) = try homeOptions.openStore(job: job)
            guard let requeued = try store.retry(job: job, includeCancelled: cancelled) else {
                throw homeOptions.unknownJob(job, home: home, store: store)
            }
            var moved = ["\(requeued.failed) failed"]
            if cancelled { moved.append("\(requeued.cancelled) cancelled") }
            if requeued.total == 0 {
                print("job \(job): nothing to retry (no \(cancelled ? "failed or cancelled" : "failed") requests)")
            } else {
                print(
                    "job \(job): queued again \(moved.joined(separator: " and ")) "
                        + "request\(requeued.total == 1 ? "" : "s"); next: llmq work --job \(job)")
            }
        }
    }
}
