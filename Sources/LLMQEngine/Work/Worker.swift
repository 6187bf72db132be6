import Foundation
import LLMQCore
import LLMQProviders
import LLMQStore
import Synchronization

/// Drains the queue: claims requests with a lease, runs each through the
/// `ProviderRunner`, writes outcomes in group commits and exports finished requests
/// to each job's results.jsonl and ledger.jsonl exactly once.
public final class Worker: Sendable {
    public struct Configuration: Sendable {
        /// Requests in flight at once, for the whole process.
        public var concurrency = 32
        /// Jobs to work on (nil: every job; batch-mode jobs need `batchAPIs`).
        public var jobs: [String]?
        /// How long a claim is leased; renewed at a third of it while in flight.
        public var leaseMilliseconds: Int64 = 120_000
        /// Read and write the response cache.
        public var useCache = true
        /// Keep the provider's own body in results.
        public var raw = false
        /// After a stop request, how long requests in flight may take to finish.
        public var graceMilliseconds: Int64 = 30_000
        /// Keep waiting for new submissions when nothing is left (until stopped).
        public var follow = false
        /// How often `onProgress` is called, and how often the heartbeat (with the
        /// same figures) is written to the store.
        public var progressMilliseconds: Int64 = 500
        public var heartbeatMilliseconds: Int64 = 2_000
        /// Called from the worker's loop with fresh figures (keep it quick).
        public var onProgress: (@Sendable (WorkProgress) -> Void)?
        /// The providers' batch APIs, for batch-mode jobs (nil: batch-mode jobs wait).
        public var batchAPIs: (@Sendable (Provider) throws -> (api: any ProviderBatchAPI, keys: [String])?)?
        /// First interval between polls of a provider batch (it grows to a cap).
        public var pollMilliseconds: Int64 = 5_000
        /// At most this many requests per provider batch (below the provider's limit).
        public var maxBatchRequests: Int?
        /// Requests an expired batch did not run go online, not into the next batch.
        public var fallbackOnline = false
        /// Outcomes written per transaction while collecting a batch's results.
        var batchCollectChunk = 5_000
        /// After a create with no clear answer, how long a batch is looked for at the
        /// provider before it is created again.
        public var ambiguousCreateMilliseconds: Int64 = 120_000
        /// Called once per thing the user should know that is not an error (a
        /// batch-mode job's provider has no batch API, so it runs online).
        public var onNote: (@Sendable (String) -> Void)?

        public init() {}
    }

    /// What a run did.
    public struct Summary: Sendable, Equatable {
        public var succeeded = 0
        public var failed = 0
        public var cached = 0
        /// Known cost; answers of `unpricedModels` are not in it.
        public var costUSD = 0.0
        public var tokens = 0
        public var unpriced = 0
        public var unpricedModels: Set<String> = []
    }

    let store: any QueueStore
    let runner: ProviderRunner
    let home: QueueHome
    let prices: PriceTable?
    let configuration: Configuration
    public let owner: String
    private let pending = Mutex<[(Completion, Summary)]>([])
    private let inFlight = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)
    private let tasks = Mutex<[Int64: Task<Void, Never>]>([:])
    /// Wakes the claim loop when a request finishes (or a stop is asked for).
    private let wake = WakeSignal()
    /// A moving average of how long requests take, in milliseconds.
    private let averageLatency = Mutex<Double>(0)
    /// What the batch loop has written so far.
    private let batchSummary = Mutex(Summary())

    /// Stops claiming; requests in flight may finish for `graceMilliseconds`, then
    /// the rest go back to the queue with their attempt refunded. Safe from any thread.
    public func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Puts everything this worker holds back in the queue at once, attempts
    /// refunded (the second Ctrl-C).
    public func abandon() throws {
        try store.releaseLeases(owner: owner, refundAttempt: true)
        try store.removeWorker(owner: owner)
    }

    public init(
        store: any QueueStore, runner: ProviderRunner, home: QueueHome, prices: PriceTable?,
        configuration: Configuration = Configuration()
    ) {
        self.store = store
        self.runner = runner
        self.home = home
        self.prices = prices
        self.configuration = configuration
        owner = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max))"
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Milliseconds between exports while working (each export fsyncs the files).
    static let exportInterval: Int64 = 200

    /// Works until nothing is left to do in the chosen jobs.
    public func run() async throws -> Summary {
        try store.rescueExpiredLeases()
        try releaseDeadLocalWorkers()
        try store.heartbeat(
            WorkerRecord(
                owner: owner, host: ProcessInfo.processInfo.hostName, pid: getpid(), startedAt: Self.now(),
                heartbeatAt: Self.now()))
        defer {
            // Whatever this worker still holds (only after an error: a normal end
            // holds nothing) goes back to the queue at once, not when leases expire.
            _ = try? store.releaseLeases(owner: owner, refundAttempt: true)
            try? store.removeWorker(owner: owner)
        }
        var total = Summary()
        var lastRenewal = Self.now()
        var stopDeadline: Int64?
        var reporter = ProgressReporter(worker: self)
        let exports = ExportLoop(
            store: store, home: home, jobs: configuration.jobs, intervalMilliseconds: Self.exportInterval
        ) { OutputLines.lines(for: $0, prices: self.prices) }
        exports.start()
        defer { exports.halt() }
        let batches = batchRunner().map { runner in Task { try await batchLoop(runner) } }
        defer { batches?.cancel() }
        // Claimed ahead of the free slots (a quarter of them), so a slot that frees
        // up is refilled at once, not after the next transaction: at 1,024 slots the
        // first wave of answers otherwise took ~0.4 s to refill.
        var ready: [ClaimedRequest] = []
        let readyTarget = configuration.concurrency / 4
        while true {
            if let error = exports.error { throw error }
            let stopping = stopRequested.load(ordering: .acquiring)
            if stopping && !ready.isEmpty {
                // Never sent: back to the queue with the next commit, attempt refunded.
                pending.withLock {
                    for request in ready {
                        $0.append(
                            (
                                Completion(
                                    id: request.id, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil)),
                                Summary()
                            ))
                    }
                }
                ready.removeAll()
            }
            var running = inFlight.load(ordering: .acquiring)
            while running < configuration.concurrency, !ready.isEmpty {
                start(ready.removeFirst())
                running += 1
            }
            // One transaction a turn: the outcomes gathered so far (a group commit)
            // and a claim for the free slots and the ready list.
            let batch = pending.withLock { pending in
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            let wanted = configuration.concurrency - running + readyTarget - ready.count
            let (applied, claimed) = try store.finishAndClaim(
                batch.map(\.0), owner: owner, limit: stopping || wanted < max(1, readyTarget / 2) ? 0 : wanted,
                leaseMilliseconds: configuration.leaseMilliseconds, jobs: configuration.jobs)
            for (index, item) in batch.enumerated() where applied[index] { total = Self.add(total, item.1) }
            for request in claimed {
                if inFlight.load(ordering: .relaxed) < configuration.concurrency {
                    start(request)
                } else {
                    ready.append(request)
                }
            }
            // A batch loop that ended by itself failed: its error ends the run.
            if let batches, batchLoopEnded.load(ordering: .acquiring) { try await batches.value }
            try await reporter.tick(
                Self.add(total, batchSummary.withLock { $0 }), inFlight: inFlight.load(ordering: .relaxed))
            if stopping {
                let deadline = stopDeadline ?? Self.now() + configuration.graceMilliseconds
                stopDeadline = deadline
                if inFlight.load(ordering: .acquiring) == 0 && pending.withLock({ $0.isEmpty }) {
                    // The batch loop's last step may still hand requests over.
                    if try await endBatchLoop(batches, deadline: deadline) { continue }
                    break
                }
                if Self.now() >= deadline {
                    // Cancelled requests go back to the queue, their attempt refunded.
                    for task in tasks.withLock({ Array($0.values) }) { task.cancel() }
                }
                await wake.wait(milliseconds: 10)
                continue
            }
            var idle = false
            let quiet = claimed.isEmpty && ready.isEmpty && running == 0 && pending.withLock({ $0.isEmpty })
            if quiet {
                let jobs = try store.jobs().filter { configuration.jobs?.contains($0.name) ?? true }
                idle = jobs.allSatisfy { $0.queued == 0 && $0.running == 0 }
                if idle && !configuration.follow {
                    if try await endBatchLoop(batches) { continue }
                    break
                }
            }
            if Self.now() - lastRenewal > configuration.leaseMilliseconds / 3 {
                try store.renewLeases(owner: owner, leaseMilliseconds: configuration.leaseMilliseconds)
                lastRenewal = Self.now()
            }
            // Until enough requests finished to refill in a batch, or 1/32 of a
            // request's usual time passed with any in flight (2 to 20 ms: a slot
            // waits about 1/64 of a request's time on average, yet turns stay
            // few), or a retry may be due.
            let refill = Int(min(20, max(2, averageLatency.withLock { $0 } / 64)))
            // Nothing of ours in flight and nothing to claim (waiting for batches or
            // for retries to come due): look again a few times a second.
            await wake.wait(milliseconds: idle || quiet ? 250 : inFlight.load(ordering: .relaxed) > 0 ? refill : 20)
        }
        total = Self.add(total, try flush())
        _ = try await endBatchLoop(batches)
        total = Self.add(total, batchSummary.withLock { $0 })
        try exports.stop()
        try await reporter.tick(total, inFlight: 0, force: true)
        return total
    }

    /// Puts back the leases of workers on this host whose process is gone (killed,
    /// crashed): they will never finish them, and waiting for the leases to expire
    /// would stall the job.
    func releaseDeadLocalWorkers() throws {
        let host = ProcessInfo.processInfo.hostName
        for worker in try store.workers() where worker.host == host && worker.owner != owner {
            if kill(worker.pid, 0) != 0 && errno == ESRCH {
                try store.releaseLeases(owner: worker.owner, refundAttempt: false)
                try store.removeWorker(owner: worker.owner)
            }
        }
    }

    static func add(_ a: Summary, _ b: Summary) -> Summary {
        Summary(
            succeeded: a.succeeded + b.succeeded, failed: a.failed + b.failed, cached: a.cached + b.cached,
            costUSD: a.costUSD + b.costUSD, tokens: a.tokens + b.tokens, unpriced: a.unpriced + b.unpriced,
            unpricedModels: a.unpricedModels.union(b.unpricedModels))
    }

    /// Sends one request and queues its outcome for the next group commit.
    func process(_ claimed: ClaimedRequest) async {
        defer {
            _ = tasks.withLock { $0.removeValue(forKey: claimed.id) }
            inFlight.subtract(1, ordering: .releasing)
        }
        let started = Self.now()
        let (outcome, summary) = await outcome(of: claimed)
        if case .succeeded = outcome {
            let latency = Double(Self.now() - started)
            averageLatency.withLock { $0 = $0 == 0 ? latency : $0 * 0.95 + latency * 0.05 }
        }
        let waiting = pending.withLock {
            $0.append((Completion(id: claimed.id, outcome: outcome), summary))
            return $0.count
        }
        // Refill in small batches: one claim and one commit per 1/64 of the slots.
        if waiting >= max(1, configuration.concurrency / 64) { wake.signal() }
    }

    /// Sends a claimed request in a task of its own, counted in flight.
    func start(_ request: ClaimedRequest) {
        inFlight.add(1, ordering: .relaxed)
        tasks.withLock { $0[request.id] = Task { await self.process(request) } }
    }

    /// Sends one request (or finds its answer in the cache) and says what to store.
    func outcome(of claimed: ClaimedRequest) async -> (RequestOutcome, Summary) {
        do {
            guard let route = ModelRouter.route(claimed.model) else {
                throw ProviderFailure(status: nil, type: "routing", message: "no provider serves \(claimed.model)")
            }
            let request = SubmittedRequest(
                customID: claimed.customID, route: route, canonical: claimed.request, cacheKey: claimed.cacheKey,
                metadata: nil, estimatedInputTokens: 0, maxTokens: nil)
            // With the cache on, identical requests in flight are sent once: the
            // others wait their turn and find the answer in the cache.
            let result =
                runner.sharesAnswers(useCache: configuration.useCache)
                ? try await sameRequests.run(claimed.cacheKey) { try await runner.run(request, useCache: true) }
                : try await runner.run(request, useCache: false)
            return Outcomes.answered(
                result.answer, model: claimed.model, costUSD: result.costUSD, cached: result.cached,
                savedUSD: result.savedUSD, latencyMilliseconds: result.latencyMilliseconds, attempt: claimed.attempt,
                raw: configuration.raw)
        } catch is CancellationError {
            // Our own shutdown: back to the queue, the attempt does not count.
            return (.retry(notBefore: 0, refundAttempt: true, error: nil), Summary())
        } catch {
            return Outcomes.failed((error as? RunFailure)?.failure ?? ProviderRunner.providerFailure(error))
        }
    }

    private let notes = Mutex<Set<String>>([])
    private let sameRequests = KeyedTurns()

    func noteOnce(_ text: String) {
        if notes.withLock({ $0.insert(text).inserted }) { configuration.onNote?(text) }
    }

    /// Stops the batch loop and waits for it. True if it then left requests to
    /// finish (sent online), so the caller keeps going until they are done.
    ///
    /// With a `deadline` (a stop was asked for), a step still running then (a
    /// large upload, a slow download) is cancelled: every step resumes from what
    /// was recorded, an upload is made again, an interrupted create looked for.
    private func endBatchLoop(_ batches: Task<Void, any Error>?, deadline: Int64? = nil) async throws -> Bool {
        guard let batches, !batchJoined.load(ordering: .acquiring) else { return false }
        batchStop.store(true, ordering: .releasing)
        if let deadline {
            while !batchLoopEnded.load(ordering: .acquiring) && Self.now() < deadline {
                await wake.wait(milliseconds: 50)
            }
            if !batchLoopEnded.load(ordering: .acquiring) { batches.cancel() }
            do {
                try await batches.value
            } catch is CancellationError {
                // Stopped as asked.
            }
        } else {
            try await batches.value
        }
        batchJoined.store(true, ordering: .releasing)
        return inFlight.load(ordering: .acquiring) > 0 || !pending.withLock { $0.isEmpty }
    }

    private let batchJoined = Atomic<Bool>(false)
    private let batchStop = Atomic<Bool>(false)
    private let batchLoopEnded = Atomic<Bool>(false)

    /// The batch runner, when batch APIs are configured.
    func batchRunner() -> BatchRunner? {
        guard let apis = configuration.batchAPIs else { return nil }
        var settings = BatchRunner.Configuration()
        settings.pollMilliseconds = configuration.pollMilliseconds
        settings.jobs = configuration.jobs
        settings.useCache = configuration.useCache
        settings.raw = configuration.raw
        settings.maxRequests = configuration.maxBatchRequests
        settings.fallbackOnline = configuration.fallbackOnline
        settings.collectChunk = configuration.batchCollectChunk
        settings.ambiguousCreateMilliseconds = configuration.ambiguousCreateMilliseconds
        settings.maxAttempts = runner.configuration.retry.maxAttempts
        return BatchRunner(
            store: store, home: home, runner: runner, prices: prices, apis: apis, owner: owner,
            configuration: settings
        ) { [self] request, reason in
            // A provider without a batch API, or the fallback for an expired batch.
            noteOnce(reason)
            start(request)
        } onError: { [self] message in
            noteOnce(message)
        }
    }

    /// Plans and advances provider batches until stopped, sleeping until the next
    /// poll is due (at most a second, so new batch-mode work is seen soon).
    func batchLoop(_ runner: BatchRunner) async throws {
        defer { batchLoopEnded.store(true, ordering: .releasing) }
        while !batchStop.load(ordering: .acquiring) && !stopRequested.load(ordering: .acquiring) {
            var wait: Int64
            do {
                let step = try await runner.step {
                    self.batchStop.load(ordering: .acquiring) || self.stopRequested.load(ordering: .acquiring)
                }
                batchSummary.withLock { $0 = Self.add($0, step.summary) }
                wait = min(1_000, max(0, (step.nextDue ?? .max) - Self.now()))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // The store or the disk failed under the batch loop: say so, and try
                // again in a while rather than stop the online work beside it.
                noteOnce("batch mode: \(error); trying again")
                wait = 5_000
            }
            while wait > 0 && !batchStop.load(ordering: .acquiring) && !stopRequested.load(ordering: .acquiring) {
                try await Task.sleep(for: .milliseconds(min(wait, 100)))
                wait -= 100
            }
        }
    }

    /// Writes the outcomes gathered so far in one transaction (a group commit).
    func flush() throws -> Summary {
        let batch = pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        var summary = Summary()
        if !batch.isEmpty {
            let applied = try store.finish(batch.map(\.0), owner: owner)
            for (index, item) in batch.enumerated() where applied[index] { summary = Self.add(summary, item.1) }
        }
        return summary
    }
}

/// Gathers the worker's figures every `progressMilliseconds` for `onProgress`, and
/// records them with the heartbeat every `heartbeatMilliseconds`.
struct ProgressReporter {
    let worker: Worker
    let startedAt = Worker.now()
    var lastProgress: Int64 = 0
    var lastHeartbeat: Int64 = 0
    var meter = RateMeter()

    init(worker: Worker) { self.worker = worker }

    mutating func tick(_ summary: Worker.Summary, inFlight: Int, force: Bool = false) async throws {
        let configuration = worker.configuration
        let now = Worker.now()
        let progressDue = configuration.onProgress != nil && now - lastProgress >= configuration.progressMilliseconds
        let heartbeatDue = now - lastHeartbeat >= configuration.heartbeatMilliseconds
        guard force || progressDue || heartbeatDue else { return }
        let progress = try await figures(summary, inFlight: inFlight, now: now)
        if force || progressDue {
            lastProgress = now
            configuration.onProgress?(progress)
        }
        if heartbeatDue && !force {
            lastHeartbeat = now
            try worker.store.heartbeat(
                WorkerRecord(
                    owner: worker.owner, host: ProcessInfo.processInfo.hostName, pid: getpid(), startedAt: startedAt,
                    heartbeatAt: now, stats: CanonicalJSON.string(progress.json)))
        }
    }

    mutating func figures(_ summary: Worker.Summary, inFlight: Int, now: Int64) async throws -> WorkProgress {
        var progress = WorkProgress()
        progress.elapsedSeconds = Double(now - startedAt) / 1000
        progress.succeeded = summary.succeeded
        progress.failed = summary.failed
        progress.cached = summary.cached
        progress.costUSD = summary.costUSD
        progress.unpriced = summary.unpriced
        progress.tokens = summary.tokens
        let rates = meter.record(
            time: Double(now) / 1000, requests: summary.succeeded + summary.failed, tokens: summary.tokens)
        progress.requestsPerSecond = rates.requests
        progress.tokensPerSecond = rates.tokens
        progress.inFlight = inFlight
        for job in try worker.store.jobs() where worker.configuration.jobs?.contains(job.name) ?? true {
            progress.total += job.total
            progress.finished += job.done + job.failed + job.cancelled
            progress.remaining += job.queued + job.running
        }
        let clock = ProviderRunner.milliseconds()
        for lane in worker.runner.lanes() {
            let stats = await lane.stats
            progress.lanes.append(
                WorkProgress.LaneFigures(
                    name: lane.name, window: stats.window, inFlight: stats.inFlight, rateLimited: stats.congestions,
                    pausedMilliseconds: Int64(max(0, stats.pausedUntil - clock))))
        }
        return progress
    }
}
