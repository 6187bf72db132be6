import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore
import LLMQTransport

extension LLMQ {
    struct Work: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain the queue through the providers into results.jsonl and ledger.jsonl.",
            discussion: """
                Claims queued requests, sends them (response cache first, then each provider's
                lanes), and writes each job's results.jsonl and ledger.jsonl exactly once. Exits
                when nothing is left: 0 if every request succeeded, 3 if some failed for good.
                """)

        @Option(help: "Requests in flight at once.")
        var concurrency = 32

        @Option(help: "Work on this job only (repeatable; default: every job).")
        var job: [String] = []

        @Option(
            name: .customLong("batch"),
            help: "Switch this job to batch mode first (repeatable): what is still queued goes through batch APIs.")
        var batchJobs: [String] = []

        @Option(help: "Seconds between polls of a provider batch at first (it grows to 5 minutes).")
        var pollInterval = 5.0

        @Option(
            help: """
                What an expired batch did not run: batch (into the next batch, the default) or online \
                (sent online at once, at full price).
                """)
        var fallback: Fallback = .batch

        enum Fallback: String, ExpressibleByArgument, CaseIterable { case batch, online }

        @Option(help: .hidden)
        var maxBatchRequests: Int?

        /// Seconds to look for a batch whose create had no clear answer before
        /// creating it again (tests shorten it; the fake provider lists at once).
        @Option(help: .hidden)
        var createSettle: Double = 120

        @Option(help: "Attempts before a request fails (rate-limit snoozes do not count).")
        var maxAttempts = 6

        @Flag(help: "Keep each provider's own response body in results.jsonl.")
        var raw = false

        @Flag(help: "When nothing is left, wait for new submissions instead of exiting (stop with Ctrl-C).")
        var follow = false

        @Flag(help: "Print nothing but errors and warnings (no progress, no summary).")
        var quiet = false

        @Option(help: "Seconds between progress lines when stderr is not a terminal.")
        var progressInterval = 5.0

        @OptionGroup var cacheOptions: CacheOptions

        @OptionGroup var priceOptions: PriceOptions

        @OptionGroup var homeOptions: HomeOptions

        func validate() throws {
            guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
            guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
            guard progressInterval > 0 else { throw ValidationError("--progress-interval must be above 0") }
            guard pollInterval > 0 else { throw ValidationError("--poll-interval must be above 0") }
        }

        func run() throws {
            let home = QueueHome.resolve(option: homeOptions.home)
            guard home.hasQueue else { throw ValidationError("no queue in \(home.path): llmq submit FILE first") }
            let store = try SQLiteQueueStore(home: home)
            for name in job + batchJobs where try store.job(named: name) == nil {
                throw ValidationError("no job named \"\(name)\" in \(home.path)")
            }
            for name in batchJobs { _ = try store.setMode(job: name, mode: .batch) }
            let table = try priceOptions.load()
            var runnerConfiguration = ProviderRunner.Configuration()
            runnerConfiguration.retry.maxAttempts = maxAttempts
            runnerConfiguration.window.maximum = Double(concurrency)
            // Start at what the user asked for: the first 429 halves the window, and
            // from then on it grows back carefully. Starting low and doubling per
            // round trip left most of a 1,024-slot window unused for seconds.
            runnerConfiguration.window.initial = Double(concurrency)
            let transport = CurlTransport()
            let runner = ProviderRunner(
                transport: transport, prices: table,
                cache: try cacheOptions.open(home: home),
                configuration: runnerConfiguration)
            var configuration = Worker.Configuration()
            configuration.concurrency = concurrency
            configuration.jobs = job.isEmpty ? nil : job
            configuration.useCache = !cacheOptions.noCache
            configuration.raw = raw
            configuration.follow = follow
            configuration.pollMilliseconds = Int64(pollInterval * 1000)
            configuration.maxBatchRequests = maxBatchRequests
            configuration.ambiguousCreateMilliseconds = Int64(max(0, createSettle) * 1000)
            configuration.fallbackOnline = fallback == .online
            configuration.batchAPIs = { provider in
                let endpoint = try runner.endpoint(for: provider)
                return endpoint.batchAPI(transport: transport).map { ($0, endpoint.keys) }
            }
            let display = ProgressDisplay(quiet: quiet, plainInterval: progressInterval)
            configuration.onProgress = { display.update($0) }
            configuration.onNote = { display.message("note: " + $0) }
            let worker = Worker(store: store, runner: runner, home: home, prices: table, configuration: configuration)
            let signals = ShutdownSignals(
                first: {
                    display.message("stopping: finishing requests in flight (Ctrl-C again to stop at once)")
                    worker.requestStop()
                },
                second: {
                    try? worker.abandon()
                    display.message("stopped; unfinished requests are back in the queue")
                    Foundation.exit(130)
                })
            defer { signals.cancel() }
            let summary = try runBlocking { try await worker.run() }
            display.finish()
            if !summary.unpricedModels.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        ("warning: no price for " + summary.unpricedModels.sorted().joined(separator: ", ")
                            + " in the price table: the cost of \(summary.unpriced) answers is unknown and not "
                            + "counted (add the model to prices.csv, or pass --prices FILE)\n").utf8))
            }
            if !quiet {
                let jobs = job.isEmpty ? try store.jobs().map(\.name) : job
                FileHandle.standardError.write(
                    Data(
                        ("done: \(summary.succeeded) ok (\(summary.cached) from the cache), \(summary.failed) failed, "
                            + "\(money(summary.costUSD)); results in "
                            + jobs.map { home.jobFolder($0).appendingPathComponent("results.jsonl").path }
                            .joined(separator: ", ") + "\n").utf8))
            }
            if summary.failed > 0 { throw ExitCode(3) }
        }
    }
}

/// SIGINT and SIGTERM for `llmq work`: the first asks for a graceful stop, the
/// second for an immediate one.
final class ShutdownSignals: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []
    private let lock = NSLock()
    private var count = 0

    init(first: @escaping @Sendable () -> Void, second: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "llmq.signals")
        // A parent may have started us with these signals blocked (a Swift program
        // spawning from its thread pool does): Ctrl-C would then never arrive.
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        sigaddset(&unblocked, SIGINT)
        sigaddset(&unblocked, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
        for number in [SIGINT, SIGTERM] {
            // The default action would kill the process before the source sees it.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                let seen = lock.withLock {
                    count += 1
                    return count
                }
                if seen == 1 { first() } else { second() }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
