import ArgumentParser
import Foundation
import LLMQStore

extension LLMQ {
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a job's queued requests; running ones finish.",
            discussion: """
                In one transaction, every queued request of the job (waiting for a retry too) \
                becomes cancelled and is never sent; requests a worker is running finish, and a \
                worker on the job stops when they have. llmq retry JOB --cancelled queues them again.
                """)

        @Argument(help: "The job.")
        var job: String

        @OptionGroup var homeOptions: HomeOptions

        func run() throws {
            let (home, store) = try homeOptions.openStore(job: job)
            guard let count = try store.cancel(job: job) else {
                throw homeOptions.unknownJob(job, home: home, store: store)
            }
            let running = try store.job(named: job)?.running ?? 0
            var text = "job \(job): cancelled \(count) queued request\(count == 1 ? "" : "s")"
            if running > 0 { text += "; \(running) running will finish" }
            if count > 0 { text += "; llmq retry \(job) --cancelled queues them again" }
            print(text)
        }
    }
}
