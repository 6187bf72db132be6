import ArgumentParser
import Foundation
import LLMQEngine
import LLMQStore
import LLMQTransport

extension LLMQ {
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a job's queued requests and its provider batches; running ones finish.",
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
            let batches = try store.requestBatchCancel(job: job)
            guard !batches.isEmpty else { return }
            let runner = ProviderRunner(transport: CurlTransport(), prices: nil, cache: nil)
            let lines = try runBlocking {
                await RemoteBatches.cancel(batches, runner: runner, transport: CurlTransport())
            }
            print(
                "cancelling \(batches.count) provider batch\(batches.count == 1 ? "" : "es") "
                    + "(what they finished is kept; llmq work collects it):")
            for line in lines { print("  " + line) }
        }
    }
}
