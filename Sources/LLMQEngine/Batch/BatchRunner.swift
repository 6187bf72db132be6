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
        /// How long this worker holds a batch: renewed before every call to the
        /// provider, and far longer than any one call may take, so no other worker
        /// takes a batch over while this one is still talking to the provider.
        var leaseMilliseconds: Int64 = 900_000
        /// After a create that failed without a clear answer (a timeout, a reset, a
        /// 5xx), how long to keep looking for the batch before creating it again:
        /// the provider may still be taking it in.
        var ambiguousCreateMilliseconds: Int64 = 120_000
        /// A request not run by this many batches in a row (they expired) fails.
        var maxAttempts = 6
        /// Send what an expired (or provider-cancelled) batch did not run online,
        /// rather than in the next batch.
        var fallbackOnline = false
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
    /// Requests to send online (the provider has no batch API, or the fallback
    /// for an expired batch), with the note to show once.
    let sendOnline: @Sendable (ClaimedRequest, String) -> Void
    /// Told of errors met while advancing batches (they are retried later).
    let onError: @Sendable (String) -> Void
    private let nextKey = Mutex<[Provider: Int]>([:])

    init(
        store: any QueueStore, home: QueueHome, runner: ProviderRunner, prices: PriceTable?, apis: @escaping APIs,
        owner: String, configuration: Configuration, sendOnline: @escaping @Sendable (ClaimedRequest, String) -> Void,
        onError: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.onError = onError
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

    /// Another worker holds the batch now (our lease on it ran out).
    struct BatchLost: Error {}

    /// What one step did.
    struct Step: Sendable {
        /// Outcomes written (cache hits, collected results), for the run's summary.
        var summary = Worker.Summary()
        /// When this worker has something to do next (unix ms), if anything.
        var nextDue: Int64?
    }

    /// Plans what is queued, then advances every batch this worker holds that is due.
    func step(stop: @Sendable () -> Bool = { false }) async throws -> Step {
        var step = Step()
        step.summary = try await plan()
        let held = try store.leaseBatches(
            owner: owner, leaseMilliseconds: configuration.leaseMilliseconds, jobs: configuration.jobs)
        for record in held {
            if stop() { break }
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
            } catch is BatchLost {
                // Another worker holds it now; it carries on from what is recorded.
                continue
            } catch let failure as ProviderFailure
                where Self.isRefusal(failure) && [.planned, .uploading, .uploaded].contains(batch.state)
            {
                // The provider refused the file or the batch outright: sending it
                // again would be refused the same way. Its requests fail with the
                // provider's message.
                batch.failure = failure.message
                batch.state = .failed
                step.summary = Worker.add(step.summary, try collect(&batch, results: nil))
            } catch {
                // Recorded on the batch and tried again later; never fatal to the run.
                var failed = batch
                failed.error = "\(error)"
                failed.pollIntervalMilliseconds = nextInterval(batch.pollIntervalMilliseconds)
                failed.nextPollAt = Self.now() + failed.pollIntervalMilliseconds
                _ = try store.updateBatch(failed, owner: owner)
                step.nextDue = min(step.nextDue ?? .max, failed.nextPollAt)
                onError("\(batch.provider.rawValue) batch \(batch.remoteID ?? batch.llmqID): \(error); trying again")
            }
        }
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
            if request.attempt > configuration.maxAttempts {
                // Claims count as attempts; batches that expire do not refund them.
                let (outcome, figures) = Outcomes.failed(
                    ProviderFailure(
                        status: nil, type: "batch_expired",
                        message: "not run by \(configuration.maxAttempts) batches in a row (they expired); "
                            + "llmq retry \(request.job) tries again"))
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
            let resolved: (api: any ProviderBatchAPI, keys: [String])?
            do {
                resolved = try apis(route.provider)
            } catch {
                // A missing key, say: these requests fail with the reason, as online.
                for request in requests {
                    let (outcome, figures) = Outcomes.failed(ProviderRunner.providerFailure(error))
                    completions.append(Completion(id: request.id, outcome: outcome))
                    summary = Worker.add(summary, figures)
                }
                continue
            }
            guard let (api, keys) = resolved else {
                for request in requests {
                    sendOnline(
                        request, "\(request.model) has no batch API at its provider: job \(request.job) sends it online"
                    )
                }
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
        var llmqID = Self.newLLMQID()
        func flush() throws {
            guard !members.isEmpty else { return }
            try record(
                lines, members: members, llmqID: llmqID, job: requests[0].job, route: route, keyCount: keyCount)
            lines.removeAll(keepingCapacity: true)
            members.removeAll(keepingCapacity: true)
            llmqID = Self.newLLMQID()
        }
        for request in requests {
            var line: [UInt8]
            do {
                let canonical = try JSONParser.parse(request.request)
                line = try api.inputLine(
                    customID: Self.batchCustomID(request.id, llmqID: llmqID), canonical: canonical, route: route)
                if members.count >= limit || lines.count + line.count + 1 > api.maxBytes {
                    try flush()
                    // The line names the batch it is in: encode it for the next one.
                    line = try api.inputLine(
                        customID: Self.batchCustomID(request.id, llmqID: llmqID), canonical: canonical, route: route)
                }
            } catch let failure as ProviderFailure {
                let (outcome, figures) = Outcomes.failed(failure)
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
                continue
            }
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
    private func record(
        _ bytes: [UInt8], members: [Int64], llmqID: String, job: String, route: Route, keyCount: Int
    ) throws {
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

    /// llmq's id for a new batch: `llmq-` and 18 random hex digits.
    static func newLLMQID() -> String {
        "llmq-" + UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(18)
    }

    /// The id a request goes by inside a batch: the batch's own id and the store's
    /// id of the request (`llmq-1f…-42`, which every provider accepts: Anthropic
    /// allows only `[A-Za-z0-9_-]{1,64}`). Naming the batch means a result line of
    /// another batch (another queue's, adopted by mistake) never matches a request.
    static func batchCustomID(_ id: Int64, llmqID: String) -> String { "\(llmqID)-\(id)" }

    static func requestID(batchCustomID: String, llmqID: String) -> Int64? {
        batchCustomID.hasPrefix(llmqID + "-") ? Int64(batchCustomID.dropFirst(llmqID.count + 1)) : nil
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
        // After an error, wait out the backoff, whatever the step.
        guard Self.now() >= batch.nextPollAt else { return Worker.Summary() }
        // Cancelled before the provider has it: it never will.
        if batch.cancelRequested && [.planned, .uploading, .uploaded].contains(batch.state) {
            return try collect(&batch, results: nil)
        }
        while true {
            // Fresh before every call to the provider: see `leaseMilliseconds`.
            try renew(batch)
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
                } else if batch.error != nil,
                    Self.now() - (batch.intentAt ?? 0) < configuration.ambiguousCreateMilliseconds
                {
                    // The last create failed without a clear answer: the provider may
                    // still be taking it in. Look again before creating another.
                    batch.nextPollAt = Self.now() + min(15_000, configuration.ambiguousCreateMilliseconds / 4)
                    try save(batch)
                    return Worker.Summary()
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
                    // Only a failed batch fails its requests; an expired or cancelled
                    // one's unrun requests go back to the queue.
                    batch.failure =
                        Self.isFailedStatus(remote.status)
                        ? remote.message ?? "\(batch.provider.rawValue) failed the batch (\(remote.status))" : nil
                } else {
                    batch.pollIntervalMilliseconds = nextInterval(batch.pollIntervalMilliseconds)
                    batch.nextPollAt = Self.now() + batch.pollIntervalMilliseconds
                }
                try save(batch)
                if batch.state != .ended { return Worker.Summary() }
            case .ended:
                let results = URL(fileURLWithPath: batch.localFile).deletingPathExtension()
                    .appendingPathExtension("results.jsonl")
                try await api.download(remote(batch), key: key, to: results)
                CrashPoint.reached("downloaded")
                return try collect(&batch, results: (api, results))
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

    /// Matches an ended batch's downloaded results (none for a batch that never
    /// reached the provider or that it refused) to its requests by id and writes
    /// their outcomes; what did not run goes back to the queue (or is cancelled, if
    /// the user cancelled; or fails, if the provider failed the whole batch).
    private func collect(_ batch: inout BatchRecord, results: (api: any ProviderBatchAPI, file: URL)?) throws
        -> Worker.Summary
    {
        var requests: [Int64: BatchedRequest] = [:]
        for request in try store.batchedRequests(batch: batch.id) { requests[request.id] = request }
        var completions: [Completion] = []
        var summary = Worker.Summary()
        let remoteID = batch.remoteID ?? batch.llmqID
        let llmqID = batch.llmqID
        // Results keyed by position (`#<index>`) name the input file's lines.
        var positional: [String]?
        let inputFile = batch.localFile
        try results?.api.results(in: results!.file) { result in
            var customID = result.customID
            if customID.hasPrefix("#"), let index = Int(customID.dropFirst()) {
                if positional == nil { positional = Self.inputIDs(inputFile) }
                guard let ids = positional, ids.indices.contains(index) else { return }
                customID = ids[index]
            }
            guard let id = Self.requestID(batchCustomID: customID, llmqID: llmqID),
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
        // A batch the provider failed (or refused) as a whole has no results: its
        // requests fail with the provider's reason (sent again, they would fail the
        // same way).
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
        if collected.state != .failed { collected.state = .collected }
        guard
            let leftovers = try store.collectBatch(
                collected, owner: owner, completions: completions,
                handOverLeftovers: configuration.fallbackOnline ? configuration.leaseMilliseconds : nil)
        else { throw BatchLost() }
        for request in leftovers {
            sendOnline(request, "what expired batches did not run is sent online (--fallback online)")
        }
        batch = collected
        return summary
    }

    /// The ids of a batch input file's lines, in order (`custom_id`, or Gemini's `key`).
    static func inputIDs(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { line in
            let json = try? JSONParser.parse(String(line))
            return json?["custom_id"]?.stringValue ?? json?["key"]?.stringValue ?? ""
        }
    }

    /// Keeps this worker's hold on the batch; throws `BatchLost` if another took it.
    private func renew(_ batch: BatchRecord) throws {
        guard try store.renewBatch(batch.id, owner: owner, leaseMilliseconds: configuration.leaseMilliseconds)
        else { throw BatchLost() }
    }

    /// A 4xx that is the provider's answer to this file or batch (not a rate limit,
    /// a timeout or a conflict): sending it again would get the same answer.
    static func isRefusal(_ failure: ProviderFailure) -> Bool {
        guard let status = failure.status else { return false }
        return (400..<500).contains(status) && ![401, 403, 408, 409, 429].contains(status)
    }

    /// The provider's words for a batch it failed as a whole.
    static func isFailedStatus(_ status: String) -> Bool {
        ["failed", "BATCH_STATE_FAILED", "JOB_STATE_FAILED"].contains(status)
    }

    private func save(_ batch: BatchRecord) throws {
        guard try store.updateBatch(batch, owner: owner) else { throw BatchLost() }
    }

    private func nextInterval(_ interval: Int64) -> Int64 {
        min(configuration.pollCapMilliseconds, max(configuration.pollMilliseconds, interval + interval / 2))
    }
}
