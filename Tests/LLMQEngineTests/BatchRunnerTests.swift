import Foundation
import LLMQCore
import LLMQProviders
import LLMQStore
import LLMQTransport
import Synchronization
import Testing

@testable import LLMQEngine

/// A provider batch API in memory: batches end after `pollsToEnd` polls, answers
/// are the prompt reversed, some lines can fail, and a batch can expire half done.
final class FakeBatchAPI: ProviderBatchAPI, @unchecked Sendable {
    struct Batch {
        var remote: RemoteBatch
        var lines: [(customID: String, prompt: String)]
        var polls = 0
    }

    let provider = Provider.openai
    let maxRequests: Int
    let maxBytes: Int
    var pollsToEnd = 1
    /// Store ids of requests answered with an error.
    var failing: Set<Int64> = []
    /// Store ids of requests answered "overloaded" (529) in the next batch that has them.
    var overloaded: Set<Int64> = []
    /// Every line is answered "overloaded".
    var alwaysOverloaded = false
    /// How long an upload takes (a large file on a slow link).
    var uploadDelay: Duration?
    /// How long a create takes to answer, after the provider has made the batch.
    var createDelay: Duration?
    /// A batch shows in `find` only this long after it was made (a listing that lags).
    var findLagMilliseconds: Int64 = 0
    /// Creates after the first are refused with this (no credit left, say).
    var refuseLaterCreates: ProviderFailure?
    /// Batches to expire (the next ones that end): only the first half of their
    /// lines are answered.
    var expiring = 0
    /// The provider fails whole batches (validation), with this message.
    var failWhole: String?
    /// The next create succeeds at the provider but its answer is lost (a crash
    /// between create and record).
    var loseNextCreate = false
    /// Every create is refused with this failure (nothing is created).
    var refuseCreate: ProviderFailure?
    /// Reading results fails once after this many lines (a crash while collecting).
    var failResultsAfter: Int?
    private let lock = NSLock()
    private(set) var batches: [String: Batch] = [:]
    private(set) var created = 0
    private(set) var uploads = 0

    init(maxRequests: Int = 50_000, maxBytes: Int = 1 << 30) {
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
    }

    func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8] {
        let prompt = canonical["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        return CanonicalJSON.encode(.object(["custom_id": .string(customID), "prompt": .string(prompt)]))
    }

    func upload(file: URL, name: String, key: String) async throws -> String? {
        let delay = lock.withLock {
            uploads += 1
            return uploadDelay
        }
        if let delay { try await Task.sleep(for: delay) }
        return "file-\(name)"
    }

    func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch
    {
        if let refuseCreate { throw refuseCreate }
        if let refusal = lock.withLock({ created > 0 ? refuseLaterCreates : nil }) { throw refusal }
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
            let object = try JSONParser.parse(String($0))
            return (object["custom_id"]!.stringValue!, object["prompt"]!.stringValue!)
        }
        let (remote, lost): (RemoteBatch, Bool) = lock.withLock {
            created += 1
            let remote = RemoteBatch(
                id: "batch_\(created)", status: "validating", phase: .running, total: lines.count, llmqID: llmqID,
                inputFileID: inputFileID, createdAt: Int64(Date().timeIntervalSince1970 * 1000))
            batches[remote.id] = Batch(remote: remote, lines: lines)
            defer { loseNextCreate = false }
            return (remote, loseNextCreate)
        }
        if lost { throw TransportError.connectionClosed(status: nil, receivedBytes: 0) }
        if let createDelay { try await Task.sleep(for: createDelay) }
        return remote
    }

    func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?
    {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return lock.withLock {
            batches.values.first { $0.remote.llmqID == llmqID && now - $0.remote.createdAt! >= findLagMilliseconds }?
                .remote
        }
    }

    func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        lock.withLock {
            batches[batch.id]!.polls += 1
            if batches[batch.id]!.polls >= pollsToEnd {
                batches[batch.id]!.remote.phase = .ended
                batches[batch.id]!.remote.status = expiring > 0 ? "expired" : failWhole == nil ? "completed" : "failed"
                batches[batch.id]!.remote.message = failWhole
                expiring = max(0, expiring - 1)
                batches[batch.id]!.remote.outputLocation = "file-out-\(batch.id)"
            } else {
                batches[batch.id]!.remote.status = "in_progress"
            }
            return batches[batch.id]!.remote
        }
    }

    func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        lock.withLock {
            batches[batch.id]!.remote.phase = .ended
            batches[batch.id]!.remote.status = "cancelled"
            return batches[batch.id]!.remote
        }
    }

    func download(_ batch: RemoteBatch, key: String, to url: URL) async throws {
        let stored = lock.withLock { batches[batch.id]! }
        let expired = stored.remote.status == "expired"
        let answered =
            stored.remote.status == "failed" || stored.remote.status == "cancelled"
            ? [] : expired ? Array(stored.lines.prefix(stored.lines.count / 2)) : stored.lines
        var text = ""
        // Unordered, as real result files are.
        for (customID, prompt) in answered.reversed() {
            let busy = lock.withLock { overloaded.first { customID.hasSuffix("-\($0)") } }
            if let busy { _ = lock.withLock { overloaded.remove(busy) } }
            let line: JSONValue =
                busy != nil || alwaysOverloaded
                ? .object(["custom_id": .string(customID), "error": .string("overloaded")])
                : failing.contains { customID.hasSuffix("-\($0)") }
                    ? .object(["custom_id": .string(customID), "error": .string("bad line")])
                    : .object(["custom_id": .string(customID), "text": .string(String(prompt.reversed()))])
            text += CanonicalJSON.string(line) + "\n"
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func results(in file: URL, _ each: (BatchResult) throws -> Void) throws {
        let failAfter: Int? = lock.withLock {
            defer { failResultsAfter = nil }
            return failResultsAfter
        }
        for (index, line) in try String(contentsOf: file, encoding: .utf8).split(separator: "\n").enumerated() {
            if index == failAfter { throw BatchFileError(path: file.path, reason: "cut short") }
            let object = try JSONParser.parse(String(line))
            let id = object["custom_id"]!.stringValue!
            if let text = object["text"]?.stringValue {
                try each(
                    BatchResult(
                        customID: id,
                        outcome: .answer(
                            ProviderAnswer(
                                text: text, finishReason: "stop", usage: Usage(inputTokens: 1_000, outputTokens: 1_000),
                                model: "gpt-4o-mini", raw: []))))
            } else if object["error"] == .string("overloaded") {
                try each(
                    BatchResult(
                        customID: id,
                        outcome: .failure(
                            ProviderFailure(status: 529, type: "overloaded_error", message: "Overloaded"))))
            } else {
                try each(
                    BatchResult(
                        customID: id,
                        outcome: .failure(ProviderFailure(status: 400, type: "invalid", message: "bad line"))))
            }
        }
    }
}

@Suite struct BatchRunnerTests {
    static let prices = PriceTable(prices: [
        ModelPrice(
            model: "gpt-4o-mini", provider: .openai, input: 1, cachedInput: 0.5, cacheWrite: 0, output: 2,
            batchDiscount: 0.5)
    ])

    /// A queue with a batch-mode job of `count` requests.
    func queue(_ count: Int) throws -> (QueueHome, SQLiteQueueStore) {
        try queue(prompts: (1...count).map { "p\($0)" })
    }

    /// A queue with a batch-mode job of one request per prompt (`q1`, `q2`…).
    func queue(prompts: [String]) throws -> (QueueHome, SQLiteQueueStore) {
        let home = QueueHome(url: FileManager.default.temporaryDirectory.appendingPathComponent("llmq-batch-\(UUID())"))
        let store = try SQLiteQueueStore(home: home)
        try store.submit(job: "b", options: SubmitOptions(source: "t")) { session in
            _ = try session.add(
                prompts.enumerated().map { index, prompt in
                    NewRequest(
                        try RequestParser().parse(
                            line: #"{"custom_id":"q\#(index + 1)","model":"gpt-4o-mini","prompt":"\#(prompt)"}"#,
                            number: index + 1
                        ).get(), line: index + 1)
                })
        }
        #expect(try store.setMode(job: "b", mode: .batch))
        return (home, store)
    }

    func worker(
        _ home: QueueHome, _ store: SQLiteQueueStore, api: FakeBatchAPI, cache: (any ResponseCache)? = nil,
        maxBatch: Int? = nil, collectChunk: Int = 5_000, createSettle: Int64 = 120_000
    ) -> Worker {
        let runner = ProviderRunner(
            transport: CurlTransport(), environment: ["OPENAI_API_KEY": "k"], prices: Self.prices, cache: cache)
        var configuration = Worker.Configuration()
        configuration.batchAPIs = { _ in (api, ["k"]) }
        configuration.pollMilliseconds = 1
        configuration.maxBatchRequests = maxBatch
        configuration.batchCollectChunk = collectChunk
        configuration.ambiguousCreateMilliseconds = createSettle
        return Worker(store: store, runner: runner, home: home, prices: Self.prices, configuration: configuration)
    }

    func lines(_ home: QueueHome, _ file: String) throws -> [JSONValue] {
        try String(contentsOf: home.jobFolder("b").appendingPathComponent(file), encoding: .utf8)
            .split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    @Test func aBatchJobRunsThroughTheBatchAPIAtTheDiscount() async throws {
        let (home, store) = try queue(25)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.pollsToEnd = 3
        let summary = try await worker(home, store, api: api, maxBatch: 10).run()
        #expect(summary.succeeded == 25)
        #expect(api.created == 3, "25 requests at 10 a batch")
        let results = try lines(home, "results.jsonl")
        #expect(results.count == 25)
        let q7 = try #require(results.first { $0["custom_id"] == .string("q7") })
        #expect(q7["text"] == .string("7p"))
        #expect(q7["batch_id"]?.stringValue?.hasPrefix("batch_") == true)
        let ledger = try lines(home, "ledger.jsonl")
        #expect(ledger.count == 25)
        #expect(ledger.allSatisfy { $0["mode"] == .string("batch") && $0["batch_discount"] == .number(0.5) })
        // 1,000 input at $1/M + 1,000 output at $2/M, halved.
        #expect(ledger.allSatisfy { $0["cost_usd"]?.doubleValue == 0.0015 })
        let batches = try store.batches(job: "b", unfinished: false)
        #expect(batches.count == 3 && batches.allSatisfy { $0.state == .collected })
        // Every batch file is kept for audit, with its results.
        for batch in batches {
            #expect(FileManager.default.fileExists(atPath: batch.localFile))
            #expect(batch.localFile.hasPrefix(home.jobFolder("b").appendingPathComponent("batches").path))
        }
    }

    @Test func batchFilesStayWithinTheProvidersByteLimit() async throws {
        let (home, store) = try queue(25)
        defer { try? FileManager.default.removeItem(at: home.url) }
        // A few lines fit in 230 bytes.
        let api = FakeBatchAPI(maxBytes: 230)
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.succeeded == 25)
        let batches = try store.batches(job: "b", unfinished: false)
        #expect(batches.count == api.created)
        #expect(batches.count >= 7, "25 lines of over 50 bytes")
        for batch in batches {
            let size = try #require(try FileManager.default.attributesOfItem(atPath: batch.localFile)[.size] as? Int)
            #expect(size <= 230 && Int64(size) == batch.bytes)
        }
        #expect(batches.map(\.requestCount).reduce(0, +) == 25)
    }

    @Test func aCreateWhoseAnswerWasLostIsFoundNotMadeTwice() async throws {
        let (home, store) = try queue(5)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.loseNextCreate = true
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.succeeded == 5)
        #expect(api.created == 1)
        #expect(try lines(home, "results.jsonl").count == 5)
    }

    @Test func lineErrorsFailAndExpiredRequestsGoIntoTheNextBatch() async throws {
        let (home, store) = try queue(8)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        let claimedFirst = try store.claimForBatch(limit: 1, owner: "probe", leaseMilliseconds: 1, jobs: nil)
        _ = try store.releaseLeases(owner: "probe", refundAttempt: true)
        api.failing = [claimedFirst[0].id]
        api.expiring = 1
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.failed == 1)
        #expect(summary.succeeded == 7)
        #expect(api.created == 2, "the unanswered half went into another batch")
        let results = try lines(home, "results.jsonl")
        #expect(Set(results.map { $0["custom_id"] }).count == 8)
        #expect(results.filter { $0["status"] == .string("failed") }.count == 1)
    }

    @Test func aLineTheProviderWasTooBusyForGoesIntoTheNextBatch() async throws {
        let (home, store) = try queue(4)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        let first = try store.claimForBatch(limit: 2, owner: "probe", leaseMilliseconds: 1, jobs: nil)
        _ = try store.releaseLeases(owner: "probe", refundAttempt: true)
        api.overloaded = Set(first.map(\.id))
        api.failing = [first[1].id]
        let summary = try await worker(home, store, api: api).run()
        #expect(api.created == 2, "the two overloaded lines went into a second batch")
        #expect(summary.succeeded == 3)
        #expect(summary.failed == 1, "a line that fails for good the second time is not tried a third time")
        let results = try lines(home, "results.jsonl")
        #expect(results.count == 4)
        let retried = try #require(results.first { $0["custom_id"] == .string(first[0].customID) })
        #expect(retried["status"] == .string("ok"))
        #expect(retried["attempts"] == .int(2))
        #expect(retried["batch_id"] == .string("batch_2"))
    }

    @Test func aLineOverloadedAtEveryAttemptFailsWithTheProvidersMessage() async throws {
        let (home, store) = try queue(1)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.alwaysOverloaded = true
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.failed == 1)
        #expect(api.created == 6, "one batch per attempt")
        let results = try lines(home, "results.jsonl")
        #expect(results.count == 1)
        #expect(results.first?["error"]?["message"] == .string("Overloaded"))
    }

    func batchRunner(
        _ home: QueueHome, _ store: SQLiteQueueStore, api: FakeBatchAPI, owner: String, leaseMilliseconds: Int64
    ) -> BatchRunner {
        var settings = BatchRunner.Configuration()
        settings.pollMilliseconds = 1
        settings.leaseMilliseconds = leaseMilliseconds
        return BatchRunner(
            store: store, home: home,
            runner: ProviderRunner(
                transport: CurlTransport(), environment: ["OPENAI_API_KEY": "k"], prices: Self.prices, cache: nil),
            prices: Self.prices, apis: { _ in (api, ["k"]) }, owner: owner, configuration: settings,
            sendOnline: { _, _ in })
    }

    @Test func aWorkerWhoseBatchLeaseRanOutLeavesTheBatchToTheOneThatTookIt() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.pollsToEnd = 2
        // A plans, uploads and creates the batch, then stalls past its lease.
        let stalled = batchRunner(home, store, api: api, owner: "A", leaseMilliseconds: 50)
        _ = try await stalled.step()
        var stale = try #require(try store.batches(job: "b", unfinished: true).first)
        #expect(stale.state == .created)
        try await Task.sleep(for: .milliseconds(100))
        // B takes it over and carries it to the end.
        let taker = batchRunner(home, store, api: api, owner: "B", leaseMilliseconds: 60_000)
        var collected = Worker.Summary()
        for _ in 0..<100 where try store.batches(job: "b", unfinished: true).first != nil {
            collected = Worker.add(collected, try await taker.step().summary)
        }
        #expect(collected.succeeded == 3)
        // A wakes up with its old copy: it may not touch the batch any more.
        var written = Worker.Summary()
        await #expect(throws: BatchRunner.BatchLost.self) { try await stalled.advance(&stale, into: &written) }
        #expect(try await stalled.step().summary.succeeded == 0)
        #expect(api.created == 1)
        #expect(try store.batches(job: "b", unfinished: false).map(\.state) == [.collected])
        let status = try #require(try store.job(named: "b"))
        #expect(status.done == 3 && status.running == 0)
    }

    /// Runs a worker until `reached`, then stops it with a 50 ms grace period and
    /// waits for it to end.
    func runAndStop(
        _ home: QueueHome, _ store: SQLiteQueueStore, api: FakeBatchAPI, until reached: @escaping () -> Bool
    ) async throws {
        var configuration = worker(home, store, api: api).configuration
        configuration.graceMilliseconds = 50
        let stopping = Worker(
            store: store, runner: worker(home, store, api: api).runner, home: home, prices: Self.prices,
            configuration: configuration)
        let run = Task { try await stopping.run() }
        while !reached() { try await Task.sleep(for: .milliseconds(5)) }
        stopping.requestStop()
        _ = try await run.value
    }

    @Test func aStopCancelsAnUploadStillRunningAtTheDeadlineAndTheNextRunUploadsAgain() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.uploadDelay = .seconds(3_600)
        // Returns: the hour-long upload is cancelled at the deadline, not awaited.
        try await runAndStop(home, store, api: api) { api.uploads > 0 }
        #expect(api.created == 0)
        #expect(try store.batches(job: "b", unfinished: true).map(\.state) == [.uploading])
        api.uploadDelay = nil
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.succeeded == 3)
        #expect(api.uploads == 2 && api.created == 1)
        #expect(try lines(home, "results.jsonl").count == 3)
    }

    @Test func identicalRequestsArePaidForOnce() async throws {
        // q1, q3 and q4 are the same request under three ids.
        let (home, store) = try queue(prompts: ["same", "other", "same", "same"])
        defer { try? FileManager.default.removeItem(at: home.url) }
        let cache = try SQLiteResponseCache(url: home.url.appendingPathComponent("cache.sqlite"))
        let api = FakeBatchAPI()
        let summary = try await worker(home, store, api: api, cache: cache).run()
        #expect(summary.succeeded == 4)
        #expect(summary.cached == 2)
        #expect(api.created == 1)
        #expect(api.batches.values.first?.lines.count == 2, "one line per distinct request")
        let results = try lines(home, "results.jsonl")
        #expect(Set(results.map { $0["custom_id"] }).count == 4)
        #expect(results.allSatisfy { $0["status"] == .string("ok") })
        #expect(Set(results.filter { $0["text"] == .string("emas") }.map { $0["custom_id"] }).count == 3)
        let ledger = try lines(home, "ledger.jsonl")
        #expect(ledger.filter { $0["mode"] == .string("batch") }.count == 2)
        #expect(ledger.filter { $0["mode"] == .string("cache") && $0["cost_usd"] == .number(0) }.count == 2)
        #expect(results.allSatisfy { $0["attempts"] == .int(1) })
    }

    @Test func aCopyOfARequestInAnEarlierBatchOfThePlanJoinsThatBatch() async throws {
        // Two lines a batch: "a" and "b" fill the first; their copies come after "c".
        let (home, store) = try queue(prompts: ["a", "b", "c", "a", "b"])
        defer { try? FileManager.default.removeItem(at: home.url) }
        let cache = try SQLiteResponseCache(url: home.url.appendingPathComponent("cache.sqlite"))
        let api = FakeBatchAPI()
        let summary = try await worker(home, store, api: api, cache: cache, maxBatch: 2).run()
        #expect(summary.succeeded == 5 && summary.cached == 2)
        #expect(api.created == 2)
        #expect(api.batches.values.map(\.lines.count).sorted() == [1, 2], "three distinct requests, three lines")
        let results = try lines(home, "results.jsonl")
        #expect(Set(results.map { $0["custom_id"] }).count == 5)
        #expect(results.allSatisfy { $0["attempts"] == .int(1) })
    }

    @Test func withoutTheCacheIdenticalRequestsEachGetALine() async throws {
        let (home, store) = try queue(prompts: ["same", "same"])
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        var configuration = worker(home, store, api: api).configuration
        configuration.useCache = false
        let summary = try await Worker(
            store: store, runner: worker(home, store, api: api).runner, home: home, prices: Self.prices,
            configuration: configuration
        ).run()
        #expect(summary.succeeded == 2 && summary.cached == 0)
        #expect(api.batches.values.first?.lines.count == 2, "sampled twice, as asked")
    }

    @Test func aCreateCutShortByAStopIsLookedForBeforeAnotherIsMade() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        // The provider makes the batch, but its answer takes an hour; the stop
        // cancels the wait. The next run's first look does not see it yet.
        api.createDelay = .seconds(3_600)
        api.findLagMilliseconds = 300
        try await runAndStop(home, store, api: api) { api.created > 0 }
        #expect(try store.batches(job: "b", unfinished: true).map(\.state) == [.creating])
        api.createDelay = nil
        let summary = try await worker(home, store, api: api, createSettle: 2_000).run()
        #expect(summary.succeeded == 3)
        #expect(api.created == 1, "found, not made twice")
    }

    @Test func aRefusedSecondCreateDoesNotFailTheBatchTheFirstMade() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        // The first create is made but its answer lost; the listing lags past the
        // settle time, so a second create is tried, and refused.
        api.loseNextCreate = true
        api.findLagMilliseconds = 600
        api.refuseLaterCreates = ProviderFailure(
            status: 400, type: "invalid_request_error", message: "Your credit balance is too low")
        let summary = try await worker(home, store, api: api, createSettle: 100).run()
        #expect(summary.succeeded == 3, "the batch the first create made was found and collected")
        #expect(summary.failed == 0)
        #expect(api.created == 1)
    }

    @Test func aPlanThatFailsHalfwayPutsWhatItClaimedBackInTheQueue() async throws {
        let (home, store) = try queue(5)
        defer { try? FileManager.default.removeItem(at: home.url) }
        // Batch files cannot be written: where their folder goes, there is a file.
        try FileManager.default.createDirectory(at: home.jobFolder("b"), withIntermediateDirectories: true)
        try Data().write(to: home.jobFolder("b").appendingPathComponent("batches"))
        let runner = batchRunner(home, store, api: FakeBatchAPI(), owner: "w", leaseMilliseconds: 60_000)
        await #expect(throws: (any Error).self) { _ = try await runner.plan() }
        let status = try #require(try store.job(named: "b"))
        #expect(status.queued == 5 && status.running == 0, "not held by a plan that failed")
    }

    @Test func cachedAnswersNeverGoIntoABatch() async throws {
        let (home, store) = try queue(4)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let cache = try SQLiteResponseCache(url: home.url.appendingPathComponent("cache.sqlite"))
        let api = FakeBatchAPI()
        _ = try await worker(home, store, api: api, cache: cache).run()
        #expect(api.created == 1)
        // The same requests again, in a new job: all from the cache.
        try store.submit(job: "again", options: SubmitOptions(source: "t")) { session in
            _ = try session.add(
                (1...4).map {
                    NewRequest(
                        try RequestParser().parse(
                            line: #"{"custom_id":"q\#($0)","model":"gpt-4o-mini","prompt":"p\#($0)"}"#, number: $0
                        ).get(), line: $0)
                })
        }
        #expect(try store.setMode(job: "again", mode: .batch))
        let summary = try await worker(home, store, api: api, cache: cache).run()
        #expect(summary.cached == 4)
        #expect(api.created == 1)
    }

    @Test func aBatchTheProviderFailsFailsItsRequestsWithTheReason() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.failWhole = "line 2: mismatched model"
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.failed == 3)
        #expect(api.created == 1, "not sent again and again")
        let results = try lines(home, "results.jsonl")
        #expect(results.allSatisfy { $0["error"]?["message"] == .string("line 2: mismatched model") })
    }

    @Test func collectingCutShortAfterSomeChunksWritesEachResultOnce() async throws {
        let (home, store) = try queue(10)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        // Two chunks of two are written, then reading fails; the next try collects
        // the other six.
        api.failResultsAfter = 5
        let summary = try await worker(home, store, api: api, collectChunk: 2).run()
        #expect(summary.succeeded == 10)
        #expect(api.created == 1)
        let results = try lines(home, "results.jsonl")
        #expect(results.count == 10)
        #expect(Set(results.map { $0["custom_id"] }).count == 10)
        #expect(try lines(home, "ledger.jsonl").count == 10)
        #expect(try store.batches(job: "b", unfinished: false).map(\.state) == [.collected])
    }

    @Test func aCreateTheProviderRefusesFailsItsRequestsOnce() async throws {
        let (home, store) = try queue(3)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.refuseCreate = ProviderFailure(
            status: 413, type: "request_too_large", message: "Request body too large for the batch")
        // Ends: the refused batch is not created again and again.
        let summary = try await worker(home, store, api: api).run()
        #expect(summary.failed == 3)
        #expect(api.created == 0)
        let results = try lines(home, "results.jsonl")
        #expect(results.allSatisfy { $0["error"]?["message"] == .string("Request body too large for the batch") })
        #expect(try store.batches(job: "b", unfinished: false).map(\.state) == [.failed])
    }

    @Test func aCancelledJobsBatchIsCancelledAtTheProviderAndWhatDidNotRunIsCancelled() async throws {
        let (home, store) = try queue(4)
        defer { try? FileManager.default.removeItem(at: home.url) }
        let api = FakeBatchAPI()
        api.pollsToEnd = 1_000_000
        let worker = worker(home, store, api: api)
        let run = Task { try await worker.run() }
        while try store.batches(job: "b", unfinished: true).first?.state != .created {
            try await Task.sleep(for: .milliseconds(5))
        }
        _ = try store.cancel(job: "b")
        #expect(try store.requestBatchCancel(job: "b").count == 1)
        _ = try await run.value
        #expect(api.batches.values.first?.remote.status == "cancelled")
        let status = try #require(try store.job(named: "b"))
        #expect(status.cancelled == 4 && status.running == 0 && status.queued == 0)
    }
}
