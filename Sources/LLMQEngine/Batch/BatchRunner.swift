import Foundation
import LLMQCore
import LLMQProviders
import LLMQStore
import Synchronization

/// Sends batch-mode jobs through the providers' batch APIs: plans queued requests
/// into batch files (the response cache first), then advances each batch one
/// recorded step at a time — upload, create, poll, download, collect — so a crash
/// at any instant resumes where it stopped and never creates a batch twice.
final class BatchRunner: Sendable {
    struct Configuration: Sendable {
        /// First poll interval; it grows by half at each poll up to `pollCapMilliseconds`.
        var pollMilliseconds: Int64 = 5_000
        var pollCapMilliseconds: Int64 = 300_000
        var jobs: [String]?
        var useCache = true
        var raw = false
        /// At most this many requests per batch (below the provider's own limit).
        var maxRequests: Int?
        /// How long this worker holds a batch (renewed at every step).
        var leaseMilliseconds: Int64 = 120_000
    }

    /// A provider's batch API and keys, or nil if it has none (then its requests
    /// are sent online).
    typealias APIs = @Sendable (Provider) throws -> (api: any ProviderBatchAPI, keys: [String])?

    let store: any QueueStore
    let home: QueueHome
    let runner: ProviderRunner
    let prices: PriceTable?
    let apis: APIs
    let owner: String
    let configuration: Configuration
    /// Requests of providers without a batch API, handed to the online path.
    let sendOnline: @Sendable (ClaimedRequest) -> Void
    private let nextKey = Mutex<[Provider: Int]>([:])

    init(
        store: any QueueStore, home: QueueHome, runner: ProviderRunner, prices: PriceTable?, apis: @escaping APIs,
        owner: String, configuration: Configuration, sendOnline: @escaping @Sendable (ClaimedRequest) -> Void
    ) {
        self.store = store
        self.home = home
        self.runner = runner
        self.prices = prices
        self.apis = apis
        self.owner = owner
        self.configuration = configuration
        self.sendOnline = sendOnline
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// What one step did.
    struct Step: Sendable {
        /// Outcomes written (cache hits, collected results), for the run's summary.
        var summary = Worker.Summary()
        /// Batches not collected yet (any worker's) in the jobs worked on.
        var unfinished = 0
        /// When this worker has something to do next (unix ms), if anything.
        var nextDue: Int64?
    }

    /// Plans what is queued, then advances every batch this worker holds that is due.
    func step() async throws -> Step {
        var step = Step()
        step.summary = try await plan()
        let held = try store.leaseBatches(
            owner: owner, leaseMilliseconds: configuration.leaseMilliseconds, jobs: configuration.jobs)
        for record in held {
            // Advanced in place: after an error, what was recorded so far (an
            // intent to create, above all) is what gets saved, never older state.
            var batch = record
            do {
                let summary = try await advance(&batch)
                step.summary = Worker.add(step.summary, summary)
                if !batch.isFinal {
                    step.nextDue = min(step.nextDue ?? .max, batch.nextPollAt)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Recorded on the batch and tried again later; never fatal to the run.
                var failed = batch
                failed.error = "\(error)"
                failed.pollIntervalMilliseconds = nextInterval(batch.pollIntervalMilliseconds)
                failed.nextPollAt = Self.now() + failed.pollIntervalMilliseconds
                try store.updateBatch(failed, owner: owner)
                step.nextDue = min(step.nextDue ?? .max, failed.nextPollAt)
            }
        }
        step.unfinished = try store.batches(job: nil, unfinished: true).filter {
            configuration.jobs?.contains($0.job) ?? true
        }.count
        return step
    }

    // MARK: Planning

    /// Claims queued requests of batch-mode jobs, answers what the cache holds, and
    /// records the rest in batch files, per (job, provider, model) within the
    /// provider's limits.
    func plan() async throws -> Worker.Summary {
        let jobs = try store.jobs().filter {
            $0.mode == JobMode.batch.rawValue && $0.queued > 0 && (configuration.jobs?.contains($0.name) ?? true)
        }
        guard !jobs.isEmpty else { return Worker.Summary() }
        let claimed = try store.claimForBatch(
            limit: 200_000, owner: owner, leaseMilliseconds: 600_000, jobs: jobs.map(\.name))
        var summary = Worker.Summary()
        var completions: [Completion] = []
        var groups: [String: [ClaimedRequest]] = [:]
        var order: [String] = []
        for request in claimed {
            guard let route = ModelRouter.route(request.model) else {
                let (outcome, figures) = Outcomes.failed(
                    ProviderFailure(status: nil, type: "routing", message: "no provider serves \(request.model)"))
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
                continue
            }
            if configuration.useCache,
                let hit = try runner.cachedResult(Self.submitted(request, route: route), started: 0)
            {
                let (outcome, figures) = Outcomes.answered(
                    hit.answer, model: request.model, costUSD: 0, cached: true, savedUSD: hit.savedUSD,
                    latencyMilliseconds: nil, attempt: request.attempt, raw: configuration.raw)
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
                continue
            }
            let group = "\(request.job)\u{0}\(route.provider.rawValue)\u{0}\(request.model)"
            if groups[group] == nil { order.append(group) }
            groups[group, default: []].append(request)
        }
        for group in order {
            let requests = groups[group]!
            let route = ModelRouter.route(requests[0].model)!
            guard let (api, keys) = try apis(route.provider) else {
                for request in requests { sendOnline(request) }
                continue
            }
            summary = Worker.add(
                summary, try write(requests, route: route, api: api, keyCount: keys.count, completions: &completions))
        }
        if !completions.isEmpty { _ = try store.finish(completions, owner: owner) }
        return summary
    }

    /// Writes `requests` into batch files within the API's limits and records each.
    private func write(
        _ requests: [ClaimedRequest], route: Route, api: any ProviderBatchAPI, keyCount: Int,
        completions: inout [Completion]
    ) throws -> Worker.Summary {
        let limit = min(api.maxRequests, configuration.maxRequests ?? .max)
        var summary = Worker.Summary()
        var lines: [UInt8] = []
        var members: [Int64] = []
        func flush() throws {
            guard !members.isEmpty else { return }
            try record(lines, members: members, job: requests[0].job, route: route, keyCount: keyCount)
            lines.removeAll(keepingCapacity: true)
            members.removeAll(keepingCapacity: true)
        }
        for request in requests {
            let line: [UInt8]
            do {
                line = try api.inputLine(
                    customID: Self.batchCustomID(request.id), canonical: try JSONParser.parse(request.request),
                    route: route)
            } catch let failure as ProviderFailure {
                let (outcome, figures) = Outcomes.failed(failure)
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
                continue
            }
            if members.count >= limit || lines.count + line.count + 1 > api.maxBytes { try flush() }
            lines += line
            lines.append(0x0A)
            members.append(request.id)
        }
        try flush()
        return summary
    }

    /// Writes one batch file (fsynced), then records the batch and moves its
    /// requests into it; if any request was lost meanwhile, nothing is recorded and
    /// the file is removed.
    private func record(_ bytes: [UInt8], members: [Int64], job: String, route: Route, keyCount: Int) throws {
        let llmqID = "llmq-\(UUID().uuidString.lowercased().prefix(18))"
        let folder = home.jobFolder(job).appendingPathComponent("batches")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("\(llmqID).jsonl")
        let writer = try AtomicFileWriter(url: file)
        try writer.write(bytes)
        try writer.commit()
        let keyIndex = nextKey.withLock { keys in
            defer { keys[route.provider, default: 0] += 1 }
            return keys[route.provider, default: 0] % max(1, keyCount)
        }
        do {
            _ = try store.recordBatch(
                NewBatch(
                    job: job, llmqID: llmqID, provider: route.provider, model: route.model, keyIndex: keyIndex,
                    localFile: file.path, fileSHA256: SHA256.hex(SHA256.hash(bytes)), bytes: Int64(bytes.count),
                    requestIDs: members, pollIntervalMilliseconds: configuration.pollMilliseconds),
                owner: owner)
        } catch let lost as BatchLeaseLost {
            try? FileManager.default.removeItem(at: file)
            _ = try store.finish(
                members.map { Completion(id: $0, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil)) },
                owner: owner)
            throw lost
        }
    }

    /// The id a request goes by inside a batch: the store's id, which every
    /// provider accepts (Anthropic allows only `[A-Za-z0-9_-]{1,64}`).
    static func batchCustomID(_ id: Int64) -> String { "llmq-\(id)" }

    static func requestID(batchCustomID: String) -> Int64? {
        batchCustomID.hasPrefix("llmq-") ? Int64(batchCustomID.dropFirst(5)) : nil
    }

    static func submitted(_ request: ClaimedRequest, route: Route) -> SubmittedRequest {
        SubmittedRequest(
            customID: request.customID, route: route, canonical: request.request, cacheKey: request.cacheKey,
            metadata: nil, estimatedInputTokens: 0, maxTokens: nil)
    }

    // MARK: Advancing a batch

    /// Takes a batch one step further (or as far as it goes without waiting).
    func advance(_ batch: inout BatchRecord) async throws -> Worker.Summary {
        guard let (api, keys) = try apis(batch.provider) else {
            throw ProviderFailure(status: nil, type: "setup", message: "\(batch.provider.rawValue) has no batch API")
        }
        guard batch.keyIndex < keys.count else {
            throw ProviderFailure(
                status: nil, type: "setup",
                message:
                    "batch \(batch.llmqID) was sent with key #\(batch.keyIndex + 1) of \(batch.provider.rawValue), "
                    + "and only \(keys.count) are set now: set the same keys again to collect it")
        }
        let key = keys[batch.keyIndex]
        let file = URL(fileURLWithPath: batch.localFile)
        let route =
            ModelRouter.route(batch.model)
            ?? Route(provider: batch.provider, model: batch.model, providerModel: batch.model)
        while true {
            switch batch.state {
            case .planned, .uploading:
                // An upload cut short by a crash is simply made again: an orphan
                // file at the provider costs nothing.
                batch.state = .uploading
                batch.intentAt = Self.now()
                try save(batch)
                batch.inputFileID = try await api.upload(file: file, name: file.lastPathComponent, key: key)
                CrashPoint.reached("uploaded")
                batch.state = .uploaded
                try save(batch)
            case .uploaded:
                batch.state = .creating
                batch.intentAt = Self.now()
                try save(batch)
                try await created(&batch, try await create(api, batch, file: file, route: route, key: key))
            case .creating:
                // We may have created it and crashed before recording: look first.
                if let found = try await api.find(
                    llmqID: batch.llmqID, inputFileID: batch.inputFileID, requestCount: batch.requestCount,
                    createdAfter: batch.intentAt ?? batch.createdAt,
                    excluding: Set(try store.batches(job: nil, unfinished: false).compactMap(\.remoteID)), key: key)
                {
                    try await created(&batch, found)
                } else {
                    batch.intentAt = Self.now()
                    try save(batch)
                    try await created(&batch, try await create(api, batch, file: file, route: route, key: key))
                }
            case .created:
                guard Self.now() >= batch.nextPollAt else { return Worker.Summary() }
                var remote = try await api.get(remote(batch), key: key)
                CrashPoint.reached("polled")
                if batch.cancelRequested && remote.phase == .running {
                    remote = try await api.cancel(remote, key: key)
                }
                update(&batch, from: remote)
                if remote.phase == .ended {
                    batch.state = .ended
                    batch.endedAt = Self.now()
                    batch.failure = remote.message
                } else {
                    batch.pollIntervalMilliseconds = nextInterval(batch.pollIntervalMilliseconds)
                    batch.nextPollAt = Self.now() + batch.pollIntervalMilliseconds
                }
                try save(batch)
                if batch.state != .ended { return Worker.Summary() }
            case .ended:
                return try await collect(&batch, api: api, key: key)
            case .collected, .failed:
                return Worker.Summary()
            }
        }
    }

    private func create(_ api: any ProviderBatchAPI, _ batch: BatchRecord, file: URL, route: Route, key: String)
        async throws -> RemoteBatch
    {
        let remote = try await api.create(
            file: file, inputFileID: batch.inputFileID, llmqID: batch.llmqID, route: route, key: key)
        CrashPoint.reached("created")
        return remote
    }

    private func created(_ batch: inout BatchRecord, _ remote: RemoteBatch) async throws {
        batch.state = .created
        batch.remoteID = remote.id
        update(&batch, from: remote)
        batch.nextPollAt = Self.now() + batch.pollIntervalMilliseconds
        batch.error = nil
        try save(batch)
    }

    private func update(_ batch: inout BatchRecord, from remote: RemoteBatch) {
        batch.remoteStatus = remote.status
        batch.total = remote.total ?? batch.total
        batch.succeeded = remote.succeeded ?? batch.succeeded
        batch.failed = remote.failed ?? batch.failed
        batch.outputLocation = remote.outputLocation ?? batch.outputLocation
        batch.errorLocation = remote.errorLocation ?? batch.errorLocation
    }

    private func remote(_ batch: BatchRecord) -> RemoteBatch { Self.remote(batch) }

    /// The provider's batch as last recorded.
    static func remote(_ batch: BatchRecord) -> RemoteBatch {
        RemoteBatch(
            id: batch.remoteID ?? "", status: batch.remoteStatus ?? "",
            phase: batch.state == .ended ? .ended : .running,
            total: batch.total, succeeded: batch.succeeded, failed: batch.failed, outputLocation: batch.outputLocation,
            errorLocation: batch.errorLocation, llmqID: batch.llmqID, inputFileID: batch.inputFileID)
    }

    /// Downloads an ended batch's results, matches them to its requests by id and
    /// writes their outcomes; what did not run goes back to the queue (or is
    /// cancelled, if the user cancelled).
    private func collect(_ batch: inout BatchRecord, api: any ProviderBatchAPI, key: String) async throws
        -> Worker.Summary
    {
        let results = URL(fileURLWithPath: batch.localFile).deletingPathExtension().appendingPathExtension(
            "results.jsonl")
        try await api.download(remote(batch), key: key, to: results)
        CrashPoint.reached("downloaded")
        var requests: [Int64: BatchedRequest] = [:]
        for request in try store.batchedRequests(batch: batch.id) { requests[request.id] = request }
        var completions: [Completion] = []
        var summary = Worker.Summary()
        let remoteID = batch.remoteID ?? batch.llmqID
        try api.results(in: results) { result in
            guard let id = Self.requestID(batchCustomID: result.customID),
                let request = requests.removeValue(forKey: id)
            else { return }
            switch result.outcome {
            case .answer(let answer):
                let cost = prices?.cost(of: answer.usage, model: request.model, batch: true)
                if let route = ModelRouter.route(request.model) {
                    try runner.storeInCache(
                        SubmittedRequest(
                            customID: request.customID, route: route, canonical: [], cacheKey: request.cacheKey,
                            metadata: nil, estimatedInputTokens: 0, maxTokens: nil), answer: answer, costUSD: cost)
                }
                let (outcome, figures) = Outcomes.answered(
                    answer, model: request.model, costUSD: cost, cached: false, savedUSD: nil, latencyMilliseconds: nil,
                    attempt: request.attempt, raw: configuration.raw, batchID: remoteID)
                completions.append(Completion(id: id, outcome: outcome))
                summary = Worker.add(summary, figures)
            case .failure(let failure):
                let (outcome, figures) = Outcomes.failed(failure)
                completions.append(Completion(id: id, outcome: outcome))
                summary = Worker.add(summary, figures)
            case .notRun:
                break
            }
        }
        // A batch the provider failed as a whole has no results: its requests fail
        // with the provider's reason (sending them again would fail the same way).
        if let failure = batch.failure {
            for request in requests.values {
                let (outcome, figures) = Outcomes.failed(
                    ProviderFailure(status: nil, type: "batch_failed", message: failure))
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
            }
        }
        CrashPoint.reached("collecting")
        var collected = batch
        collected.state = .collected
        guard try store.collectBatch(collected, owner: owner, completions: completions) else {
            return Worker.Summary()
        }
        batch = collected
        return summary
    }

    private func save(_ batch: BatchRecord) throws {
        guard try store.updateBatch(batch, owner: owner) else { throw CancellationError() }
    }

    private func nextInterval(_ interval: Int64) -> Int64 {
        min(configuration.pollCapMilliseconds, max(configuration.pollMilliseconds, interval + interval / 2))
    }
}
