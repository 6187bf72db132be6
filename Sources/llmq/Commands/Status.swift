import ArgumentParser
import Foundation
import LLMQCore
import LLMQStore

extension LLMQ {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each job's requests by state and its cost so far.")

        @Argument(help: "Show only this job.")
        var job: String?

        @Flag(
            help:
                "Print JSON: {\"jobs\":[{\"name\",\"total\",\"queued\",\"running\",\"done\",\"failed\",\"cancelled\",\"cost_usd\",…}],\"workers\":[…],\"batches\":[…]}."
        )
        var json = false

        @OptionGroup var homeOptions: HomeOptions

        func run() throws {
            let home = QueueHome.resolve(option: homeOptions.home)
            var jobs: [JobSummary] = []
            var workers: [WorkerRecord] = []
            var batches: [BatchRecord] = []
            if home.hasQueue {
                let store = try SQLiteQueueStore(home: home)
                if let job {
                    guard let summary = try store.job(named: job) else {
                        let known = try store.jobs().map(\.name)
                        throw ValidationError(
                            "no job named \"\(job)\" in \(home.path)"
                                + (known.isEmpty ? "" : "; jobs: " + known.joined(separator: ", ")))
                    }
                    jobs = [summary]
                } else {
                    jobs = try store.jobs()
                }
                workers = try store.workers()
                batches = try store.batches(job: job, unfinished: false)
            } else if let job {
                throw ValidationError("no job named \"\(job)\": there is no queue in \(home.path) yet")
            }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            if json {
                print(StatusFormatter.json(jobs, workers: workers, batches: batches, now: now))
            } else {
                print(StatusFormatter.table(jobs, home: home))
                if !batches.isEmpty { print("\n" + StatusFormatter.batches(batches, now: now)) }
                if !workers.isEmpty { print("\n" + StatusFormatter.workers(workers, now: now)) }
            }
        }
    }
}
