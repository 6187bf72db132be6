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
        /// Most requests one plan claims, and how many it claims at a time (memory
        /// holds one page).
        var planLimit = 200_000
        var planPage = 2_000
        /// Outcomes of a batch's results written per transaction while collecting.
        var collectChunk = 5_000
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

    /// The provider refused an upload or a create outright (see `isRefusal`).
    struct Refused: Error {
        var failure: ProviderFailure
    }

    /// Runs an upload or a create, telling an outright refusal from errors worth
    /// another try.
    private func refusing<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let failure as ProviderFailure where Self.isRefusal(failure) {
            throw Refused(failure: failure)
        }
    }

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
                try await advance(&batch, into: &step.summary)
                if !batch.isFinal {
                    step.nextDue = min(step.nextDue ?? .max, batch.nextPollAt)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch is BatchLost {
                // Another worker holds it now; it carries on from what is recorded.
                continue
            } catch let refused as Refused {
                // The provider refused the file or the batch outright: sending it
                // again would be refused the same way (and it was not created). Its
                // requests fail with the provider's message.
                batch.failure = refused.failure.message
                batch.state = .failed
                try collect(&batch, results: nil, into: &step.summary)
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

    /// Claims queued requests of batch-mode jobs (a page at a time, up to
    /// `planLimit`), answers what the cache holds, and streams the rest into batch
    /// files per (job, provider, model) within the provider's limits, recording each
    /// file as a batch once it is full or the plan ends. Memory holds one page of
    /// requests and each open file's ids, whatever the size of the batches.
    func plan() async throws -> Worker.Summary {
        let jobs = try store.jobs().filter {
            $0.mode == JobMode.batch.rawValue && $0.queued > 0 && (configuration.jobs?.contains($0.name) ?? true)
        }
        guard !jobs.isEmpty else { return Worker.Summary() }
        var summary = Worker.Summary()
        var files: [String: BatchFile] = [:]
        /// Per provider: its batch API and key count, nil (no batch API) or the error
        /// that resolving it gave.
        var resolved: [Provider: Result<(api: any ProviderBatchAPI, keys: [String])?, any Error>] = [:]
        var planned = 0
        // What this plan claimed and did not hand to the online path: if planning
        // fails halfway, these go back to the queue (those already finished or moved
        // into a recorded batch are no longer ours, and are left alone).
        var held: [Int64] = []
        var online: Set<Int64> = []
        func planPages() throws {
            while planned < configuration.planLimit {
                let claimed = try store.claimForBatch(
                    limit: min(configuration.planPage, configuration.planLimit - planned), owner: owner,
                    leaseMilliseconds: 600_000, jobs: jobs.map(\.name))
                if claimed.isEmpty { break }
                planned += claimed.count
                held += claimed.map(\.id)
                var completions: [Completion] = []
                func finish(_ request: ClaimedRequest, _ result: (RequestOutcome, Worker.Summary)) {
                    completions.append(Completion(id: request.id, outcome: result.0))
                    summary = Worker.add(summary, result.1)
                }
                for request in claimed {
                    guard let route = ModelRouter.route(request.model) else {
                        finish(
                            request,
                            Outcomes.failed(
                                ProviderFailure(
                                    status: nil, type: "routing", message: "no provider serves \(request.model)")))
                        continue
                    }
                    if configuration.useCache,
                        let hit = try runner.cachedResult(Self.submitted(request, route: route), started: 0)
                    {
                        finish(
                            request,
                            Outcomes.answered(
                                hit.answer, model: request.model, costUSD: 0, cached: true, savedUSD: hit.savedUSD,
                                latencyMilliseconds: nil, attempt: request.attempt, raw: configuration.raw))
                        continue
                    }
                    if request.attempt > configuration.maxAttempts {
                        // Claims count as attempts; batches that expire do not refund them.
                        finish(
                            request,
                            Outcomes.failed(
                                ProviderFailure(
                                    status: nil, type: "batch_expired",
                                    message: "not run by \(configuration.maxAttempts) batches in a row (they expired); "
                                        + "llmq retry \(request.job) tries again")))
                        continue
                    }
                    if resolved[route.provider] == nil {
                        resolved[route.provider] = Result { try apis(route.provider) }
                    }
                    switch resolved[route.provider]! {
                    case .failure(let error):
                        // A missing key, say: the request fails with the reason, as online.
                        finish(request, Outcomes.failed(ProviderRunner.providerFailure(error)))
                    case .success(nil):
                        online.insert(request.id)
                        sendOnline(
                            request,
                            "\(request.model) has no batch API at its provider: job \(request.job) sends it online"
                        )
                    case .success(let (api, keys)?):
                        let group = "\(request.job)\u{0}\(route.provider.rawValue)\u{0}\(request.model)"
                        let file =
                            files[group]
                            ?? BatchFile(job: request.job, route: route, api: api, keyCount: keys.count, runner: self)
                        files[group] = file
                        do {
                            try file.add(request)
                        } catch let failure as ProviderFailure {
                            // What the provider cannot express (as the online adapter would say).
                            finish(request, Outcomes.failed(failure))
                        }
                    }
                }
                if !completions.isEmpty { _ = try store.finish(completions, owner: owner) }
                for file in files.values { try file.join() }
            }
            for file in files.values {
                try file.close()
                try file.join()
            }
        }
        do {
            try planPages()
        } catch {
            _ = try? store.finish(
                held.filter { !online.contains($0) }.map {
                    Completion(id: $0, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil))
                }, owner: owner)
            throw error
        }
        return summary
    }

    /// A batch file being written for one (job, provider, model): lines are appended
    /// as requests arrive; when the next line would pass the provider's limits the
    /// file is recorded as a batch and a new one started.
    private final class BatchFile {
        let job: String
        let route: Route
        let api: any ProviderBatchAPI
        let runner: BatchRunner
        let limit: Int
        private var llmqID = BatchRunner.newLLMQID()
        private var writer: AtomicFileWriter?
        private var url: URL?
        private let hasher = SHA256.Hasher()
        private var pending: [UInt8] = []
        private var members: [Int64] = []
        /// With the cache on: the cache keys of the file's requests, and requests
        /// identical to one of them, which get no line (see `NewBatch.followerIDs`).
        private var keys: Set<CacheKey> = []
        private var followers: [Int64] = []
        /// The keys of the batches this plan already recorded from this group (to
        /// their store id), and copies waiting to join those batches.
        private var recorded: [CacheKey: Int64] = [:]
        private var joining: [Int64: [Int64]] = [:]
        private var bytes = 0
        /// How many keys the provider has: batches take them in turn.
        let keyCount: Int

        init(job: String, route: Route, api: any ProviderBatchAPI, keyCount: Int, runner: BatchRunner) {
            self.job = job
            self.route = route
            self.api = api
            self.keyCount = keyCount
            self.runner = runner
            limit = min(api.maxRequests, runner.configuration.maxRequests ?? .max)
        }

        /// Adds a request's line (throws the provider's refusal of it).
        func add(_ request: ClaimedRequest) throws {
            // Never paid for twice: an identical request already in this file waits
            // for its answer, which the cache then gives it.
            if runner.sharesAnswers && keys.contains(request.cacheKey) {
                followers.append(request.id)
                return
            }
            if runner.sharesAnswers, let batch = recorded[request.cacheKey] {
                joining[batch, default: []].append(request.id)
                return
            }
            let canonical = try JSONParser.parse(request.request)
            var line = try api.inputLine(
                customID: BatchRunner.batchCustomID(request.id, llmqID: llmqID), canonical: canonical, route: route)
            if members.count >= limit || bytes + line.count + 1 > api.maxBytes {
                try close()
                // The line names the batch it is in: encode it for the next one.
                line = try api.inputLine(
                    customID: BatchRunner.batchCustomID(request.id, llmqID: llmqID), canonical: canonical, route: route)
            }
            if writer == nil {
                let folder = runner.home.jobFolder(job).appendingPathComponent("batches")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let url = folder.appendingPathComponent("\(llmqID).jsonl")
                writer = try AtomicFileWriter(url: url)
                self.url = url
            }
            line.append(0x0A)
            pending += line
            bytes += line.count
            members.append(request.id)
            if runner.sharesAnswers { keys.insert(request.cacheKey) }
            if pending.count >= 1 << 20 { try drain() }
        }

        private func drain() throws {
            hasher.update(pending)
            try writer?.write(pending)
            pending.removeAll(keepingCapacity: true)
        }

        /// Records what was written as a batch (fsynced first) and starts a new file.
        func close() throws {
            guard let writer, let url, !members.isEmpty else { return }
            try drain()
            try writer.commit()
            let batch = try runner.record(
                file: url, sha256: SHA256.hex(hasher.finish()), bytes: bytes, members: members, followers: followers,
                llmqID: llmqID, job: job, route: route, keyCount: keyCount)
            for key in keys { recorded[key] = batch }
            self.writer = nil
            self.url = nil
            members.removeAll(keepingCapacity: true)
            followers.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
            bytes = 0
            llmqID = BatchRunner.newLLMQID()
        }

        /// Moves the copies of requests in batches already recorded into those
        /// batches; those it cannot (a batch collected meanwhile) go back to the
        /// queue, where the cache answers them.
        func join() throws {
            for (batch, ids) in joining {
                let moved = Set(try runner.store.joinBatch(batch, followers: ids, owner: runner.owner))
                let left = ids.filter { !moved.contains($0) }
                if !left.isEmpty {
                    _ = try runner.store.finish(
                        left.map { Completion(id: $0, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil)) },
                        owner: runner.owner)
                }
            }
            joining.removeAll()
        }
    }

    /// Records a written batch file as a batch and moves its requests into it; if
    /// any request was lost meanwhile, nothing is recorded and the file is removed.
    private func record(
        file: URL, sha256: String, bytes: Int, members: [Int64], followers: [Int64], llmqID: String, job: String,
        route: Route, keyCount: Int
    ) throws -> Int64 {
        let keyIndex = nextKey.withLock { keys in
            defer { keys[route.provider, default: 0] += 1 }
            return keys[route.provider, default: 0] % max(1, keyCount)
        }
        do {
            return try store.recordBatch(
                NewBatch(
                    job: job, llmqID: llmqID, provider: route.provider, model: route.model, keyIndex: keyIndex,
                    localFile: file.path, fileSHA256: sha256, bytes: Int64(bytes), requestIDs: members,
                    followerIDs: followers, pollIntervalMilliseconds: configuration.pollMilliseconds),
                owner: owner
            ).id
        } catch let lost as BatchLeaseLost {
            try? FileManager.default.removeItem(at: file)
            _ = try store.finish(
                (members + followers).map {
                    Completion(id: $0, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil))
                }, owner: owner)
            throw lost
        }
    }

    /// See `ProviderRunner.sharesAnswers(useCache:)`.
    var sharesAnswers: Bool { runner.sharesAnswers(useCache: configuration.useCache) }

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

    /// Takes a batch one step further (or as far as it goes without waiting), adding
    /// the outcomes it writes to `summary` (as they are written: a step that fails
    /// halfway has still written some).
    func advance(_ batch: inout BatchRecord, into summary: inout Worker.Summary) async throws {
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
        guard Self.now() >= batch.nextPollAt else { return }
        // Cancelled before the provider has it: it never will.
        if batch.cancelRequested && [.planned, .uploading, .uploaded].contains(batch.state) {
            try collect(&batch, results: nil, into: &summary)
            return
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
                batch.inputFileID = try await refusing {
                    try await api.upload(file: file, name: file.lastPathComponent, key: key)
                }
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
                } else if Self.now() - (batch.intentAt ?? 0) < configuration.ambiguousCreateMilliseconds {
                    // The last create ended without a clear answer (an error, a crash,
                    // a stop, a worker whose lease ran out): the provider may still be
                    // taking it in. Look again before creating another.
                    batch.nextPollAt = Self.now() + min(15_000, configuration.ambiguousCreateMilliseconds / 4)
                    try save(batch)
                    return
                } else {
                    batch.intentAt = Self.now()
                    try save(batch)
                    // Not final even if refused: the earlier create may have made the
                    // batch, and a refusal now (no credit left, say) must not fail
                    // the requests of a batch that runs. The error is recorded and the
                    // batch looked for again.
                    try await created(
                        &batch, try await create(api, batch, file: file, route: route, key: key, refusalIsFinal: false))
                }
            case .created:
                guard Self.now() >= batch.nextPollAt else { return }
                var remote = try await api.get(Self.remote(batch), key: key)
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
                if batch.state != .ended { return }
            case .ended:
                let results = URL(fileURLWithPath: batch.localFile).deletingPathExtension()
                    .appendingPathExtension("results.jsonl")
                try await api.download(Self.remote(batch), key: key, to: results)
                CrashPoint.reached("downloaded")
                try collect(&batch, results: (api, results), into: &summary)
                return
            case .collected, .failed:
                return
            }
        }
    }

    private func create(
        _ api: any ProviderBatchAPI, _ batch: BatchRecord, file: URL, route: Route, key: String,
        refusalIsFinal: Bool = true
    ) async throws -> RemoteBatch {
        let call = {
            try await api.create(
                file: file, inputFileID: batch.inputFileID, llmqID: batch.llmqID, route: route, key: key)
        }
        let remote = refusalIsFinal ? try await refusing(call) : try await call()
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
    private func collect(
        _ batch: inout BatchRecord, results: (api: any ProviderBatchAPI, file: URL)?, into written: inout Worker.Summary
    ) throws {
        // Sorted by id and looked up by binary search, each taken at most once: a
        // batch of 100,000 requests in an array costs a third of a dictionary.
        var requests = try store.batchedRequests(batch: batch.id)
        requests.sort { $0.id < $1.id }
        var taken = [Bool](repeating: false, count: requests.count)
        // Answers and failures for good, by key, for the requests that waited on an
        // identical one (`NewBatch.followerIDs`).
        var answered: Set<CacheKey> = []
        var refused: [CacheKey: ProviderFailure] = [:]
        func take(_ id: Int64) -> BatchedRequest? {
            var low = 0
            var high = requests.count
            while low < high {
                let middle = (low + high) / 2
                if requests[middle].id < id { low = middle + 1 } else { high = middle }
            }
            guard low < requests.count, requests[low].id == id, !taken[low] else { return nil }
            taken[low] = true
            return requests[low]
        }
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
                let request = take(id)
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
                if sharesAnswers { answered.insert(request.cacheKey) }
                let (outcome, figures) = Outcomes.answered(
                    answer, model: request.model, costUSD: cost, cached: false, savedUSD: nil, latencyMilliseconds: nil,
                    attempt: request.attempt, raw: configuration.raw, batchID: remoteID)
                completions.append(Completion(id: id, outcome: outcome))
                summary = Worker.add(summary, figures)
            case .failure(let failure) where Self.isTransient(failure) && request.attempt < configuration.maxAttempts:
                // Overloaded, rate-limited, a server error, a timeout: left in the
                // batch, it goes back to the queue (the attempt counts) for the next
                // batch, or online with the fallback, like a request not run.
                break
            case .failure(let failure):
                if sharesAnswers { refused[request.cacheKey] = failure }
                let (outcome, figures) = Outcomes.failed(failure)
                completions.append(Completion(id: id, outcome: outcome))
                summary = Worker.add(summary, figures)
            case .notRun:
                break
            }
            // Written a chunk at a time, so memory does not grow with the batch. A
            // crash between chunks is safe: written requests have left the batch, and
            // collecting again skips them.
            if completions.count >= configuration.collectChunk {
                try renew(batch)
                _ = try store.finish(completions, owner: batch.requestOwner)
                completions.removeAll(keepingCapacity: true)
                written = Worker.add(written, summary)
                summary = Worker.Summary()
            }
        }
        // Requests that waited for an identical one (no line of their own): answered,
        // they go back to the queue with their attempt refunded, and the cache answers
        // them next; failed for good, they fail the same way.
        for (index, request) in requests.enumerated() where !taken[index] {
            if answered.contains(request.cacheKey) {
                taken[index] = true
                completions.append(
                    Completion(id: request.id, outcome: .retry(notBefore: 0, refundAttempt: true, error: nil)))
            } else if let failure = refused[request.cacheKey] {
                taken[index] = true
                let (outcome, figures) = Outcomes.failed(failure)
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
            }
        }
        // A batch the provider failed (or refused) as a whole has no results: its
        // requests fail with the provider's reason (sent again, they would fail the
        // same way).
        if let failure = batch.failure {
            for (index, request) in requests.enumerated() where !taken[index] {
                let (outcome, figures) = Outcomes.failed(
                    ProviderFailure(status: nil, type: "batch_failed", message: failure))
                completions.append(Completion(id: request.id, outcome: outcome))
                summary = Worker.add(summary, figures)
            }
        }
        Self.removeCreateBodies(of: batch)
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
        written = Worker.add(written, summary)
    }

    /// Removes request bodies written beside the input file for a create (Anthropic's
    /// inline requests) and left there by a crash or a stop: up to 256 MB each.
    static func removeCreateBodies(of batch: BatchRecord) {
        let input = URL(fileURLWithPath: batch.localFile)
        let prefix = input.lastPathComponent + ".body"
        let folder = input.deletingLastPathComponent()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        where name.hasPrefix(prefix) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
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

    /// A result line the provider failed for a reason another try may not meet:
    /// congestion or overload, a server error, a timeout, a conflict.
    static func isTransient(_ failure: ProviderFailure) -> Bool {
        if failure.permanent { return false }
        if let status = failure.status { return status >= 500 || [408, 409, 429].contains(status) }
        return failure.type == "request_timeout"
    }

    /// The provider's words for a batch it failed as a whole.
    static func isFailedStatus(_ status: String) -> Bool {
        ["failed", "FAILED", "BATCH_STATE_FAILED", "JOB_STATE_FAILED"].contains(status)
    }

    private func save(_ batch: BatchRecord) throws {
        guard try store.updateBatch(batch, owner: owner) else { throw BatchLost() }
    }

    private func nextInterval(_ interval: Int64) -> Int64 {
        min(configuration.pollCapMilliseconds, max(configuration.pollMilliseconds, interval + interval / 2))
    }
}
