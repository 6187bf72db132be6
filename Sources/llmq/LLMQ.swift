import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore

@main
struct LLMQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmq",
        abstract: "Run large sets of LLM prompts through a persistent queue.",
        discussion: """
            llmq submit prompts.jsonl     validate and enqueue a JSONL file as a job
            llmq status                   show every job's progress and cost
            llmq results JOB --out FILE   write a job's outcomes in input order
            llmq call "PROMPT" --model M  send one request (checks keys, base URLs, prices)
            """,
        version: "0.1.0",
        subcommands: [
            Submit.self, Work.self, Status.self, Results.self, Retry.self, Cancel.self, Call.self, Mock.self,
            Cache.self, Prices.self,
        ]
    )
}

/// Options every command that touches the queue accepts.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: "Folder of the queue state (default: $LLMQ_HOME, else ./jobs).")
    var home: String?
}

extension HomeOptions {
    /// The home and its queue, for a command on one job; a clear error naming the
    /// home and its jobs if there is no such job.
    func openStore(job: String) throws -> (QueueHome, SQLiteQueueStore) {
        let home = QueueHome.resolve(option: self.home)
        guard home.hasQueue else {
            throw ValidationError("no job named \"\(job)\": there is no queue in \(home.path) yet")
        }
        let store = try SQLiteQueueStore(home: home)
        guard try store.job(named: job) != nil else { throw unknownJob(job, home: home, store: store) }
        return (home, store)
    }

    /// The error for a job the queue does not hold.
    func unknownJob(_ job: String, home: QueueHome, store: some QueueStore) -> ValidationError {
        let known = (try? store.jobs().map(\.name)) ?? []
        return ValidationError(
            "no job named \"\(job)\" in \(home.path)"
                + (known.isEmpty ? "" : "; jobs: " + known.joined(separator: ", ")))
    }
}

/// The price table option, shared by every command that prices something.
struct PriceOptions: ParsableArguments {
    @Option(help: "Price table (default: $LLMQ_PRICES, else ./prices.csv).")
    var prices: String?

    /// The table, or nil when none was found.
    func load() throws -> PriceTable? { try PriceLoader.load(option: prices) }
}

/// The response cache options of the commands that send requests.
struct CacheOptions: ParsableArguments {
    @Flag(help: "Neither read nor write the response cache.")
    var noCache = false

    @Option(help: "The response cache file (default: $LLMQ_CACHE, else cache.sqlite in the home).")
    var cache: String?

    /// The cache to use, or nil with --no-cache.
    func open(home: QueueHome) throws -> SQLiteResponseCache? {
        noCache ? nil : try SQLiteResponseCache(url: SQLiteResponseCache.url(option: cache, home: home))
    }
}

/// Runs async work from a synchronous command and waits for it.
///
/// The root command stays synchronous on purpose: `llmq mock` blocks SIGINT and
/// SIGTERM before any thread starts and waits for them with sigwait, which an async
/// root (whose runtime threads start first) would break.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = BlockingOutcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            outcome.result = .success(try await body())
        } catch {
            outcome.result = .failure(error)
        }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}

/// The result a blocked thread waits for; written once before the semaphore signals.
private final class BlockingOutcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
