import Foundation
import GRDB
import LLMQCore
import Testing

// Testable for the store's database pool, to build request states no public API
// reaches yet (a finished request) the way a worker would leave them.
@testable import LLMQStore

// MARK: - Fixtures

/// A clock for the store that moves only when told, in unix milliseconds.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Int64

    init(_ start: Int64 = 1_000) {
        current = start
    }

    func now() -> Int64 {
        lock.withLock { current }
    }

    func advance(by milliseconds: Int64 = 1_000) {
        lock.withLock { current += milliseconds }
    }
}

/// Runs `body` with a new empty directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "llmq-store-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// A validated request, as `llmq submit` would hand it to the store.
func newRequest(_ customID: String, prompt: String = "P", model: String = "gpt-4o-mini", line: Int) throws
    -> NewRequest
{
    let text = CanonicalJSON.string(
        .object(["custom_id": .string(customID), "model": .string(model), "prompt": .string(prompt)]))
    return NewRequest(try RequestParser().parse(line: text, number: line).get(), line: line)
}

/// The error a failing submission body throws.
struct SubmissionAborted: Error, Equatable {}

/// A kind of queue store the conformance suite runs against.
enum StoreKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite

    var testDescription: String { rawValue }

    /// Opens this kind of store keeping its data in `directory`; opening it again on
    /// the same directory reopens the same queue.
    func open(in directory: URL, clock: ManualClock) throws -> any QueueStore {
        switch self {
        case .sqlite:
            return try SQLiteQueueStore.open(in: directory, clock: clock)
        }
    }
}

extension SQLiteQueueStore {
    static func open(in directory: URL, clock: ManualClock) throws -> SQLiteQueueStore {
        var configuration = Configuration()
        configuration.now = { clock.now() }
        return try SQLiteQueueStore(url: directory.appendingPathComponent("queue.sqlite"), configuration: configuration)
    }
}

extension QueueStore {
    /// Submits `requests` in one submission and returns their outcomes.
    @discardableResult
    func add(_ requests: [NewRequest], to job: String, replace: Bool = false) throws -> [AddOutcome] {
        try submit(job: job, options: SubmitOptions(source: "test.jsonl", replace: replace)) { session in
            try session.add(requests)
        }
    }
}

// MARK: - Conformance

/// Behaviour every `QueueStore` must have.
@Suite struct QueueStoreConformanceTests {
    @Test(arguments: StoreKind.allCases)
    func aCustomIDRepeatedAfterAConflictIsADuplicate(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            try store.add([newRequest("a", prompt: "X", line: 1)], to: "j")
            let outcomes = try store.add(
                [
                    newRequest("a", prompt: "Y", line: 1), newRequest("a", prompt: "X", line: 2),
                    newRequest("a", prompt: "Y", line: 3),
                ], to: "j")
            #expect(outcomes == [.conflict(line: 1), .duplicate(line: 1), .duplicate(line: 1)])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func submitAddsRequestsAndCountsThem(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock(1_700_000_000_000)
            let store = try kind.open(in: directory, clock: clock)
            let requests = try [
                newRequest("a", line: 1), newRequest("b", prompt: "Q", line: 2),
                newRequest("c", model: "haiku", line: 3),
            ]
            let result = try store.submit(job: "j", options: SubmitOptions(source: "in.jsonl")) { session in
                (try session.add(requests), "done")
            }
            #expect(result.0 == [.added, .added, .added])
            #expect(result.1 == "done")
            let summary = try #require(try store.job(named: "j"))
            #expect(summary == JobSummary(name: "j", mode: "online", createdAt: 1_700_000_000_000, queued: 3))
            #expect(summary.total == 3)
            #expect(try store.jobs() == [summary])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func requestsMayArriveInSeveralBatches(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            let outcomes = try store.submit(job: "j", options: SubmitOptions(source: "-")) { session in
                var outcomes = try session.add([newRequest("a", line: 1), newRequest("b", line: 2)])
                outcomes += try session.add([])
                outcomes += try session.add([newRequest("c", line: 3), newRequest("a", line: 4)])
                return outcomes
            }
            #expect(outcomes == [.added, .added, .added, .duplicate(line: 1)])
            #expect(try store.job(named: "j")?.queued == 3)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func resubmittingTheSameRequestsChangesNothing(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try kind.open(in: directory, clock: clock)
            let requests = try (1...5).map { try newRequest("id-\($0)", prompt: "prompt \($0)", line: $0) }
            try store.add(requests, to: "j")
            let before = try store.jobs()

            clock.advance()
            #expect(try store.add(requests, to: "j") == Array(repeating: .unchanged, count: 5))
            // The same requests from other lines of another file are the same requests.
            let moved = requests.reversed().enumerated().map { NewRequest($0.element.request, line: $0.offset + 10) }
            #expect(try store.add(moved, to: "j", replace: true) == Array(repeating: .unchanged, count: 5))
            #expect(try store.jobs() == before)
            #expect(before.first?.queued == 5)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func customIDUsedTwiceInOneSubmissionIsADuplicate(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            let outcomes = try store.add(
                [
                    newRequest("a", line: 1), newRequest("b", line: 2), newRequest("a", line: 3),
                    newRequest("a", prompt: "other", line: 4),
                ], to: "j")
            #expect(outcomes == [.added, .added, .duplicate(line: 1), .duplicate(line: 1)])
            #expect(try store.job(named: "j")?.queued == 2)

            // In a later submission, the first use of a known custom_id counts as that
            // submission's use of it.
            let again = try store.add([newRequest("a", line: 7), newRequest("a", line: 8)], to: "j", replace: true)
            #expect(again == [.unchanged, .duplicate(line: 7)])
            let replaced = try store.add(
                [newRequest("b", prompt: "new", line: 1), newRequest("b", prompt: "newer", line: 2)], to: "j",
                replace: true)
            #expect(replaced == [.replaced, .duplicate(line: 1)])
            #expect(try store.job(named: "j")?.queued == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func changedRequestConflictsWithoutReplace(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "j")
            let before = try store.jobs()

            let changes = try [
                newRequest("a", prompt: "changed", line: 5),
                newRequest("b", model: "gpt-4o", line: 6),
            ]
            #expect(try store.add(changes, to: "j") == [.conflict(line: 1), .conflict(line: 2)])
            #expect(try store.jobs() == before)
            // Nothing was replaced: the original requests are still the ones queued.
            let again = try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "j")
            #expect(again == [.unchanged, .unchanged])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func conflictNamesTheLineARequestWasLastSubmittedFrom(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            try store.add([newRequest("a", line: 1)], to: "j")
            try store.add([newRequest("a", line: 9)], to: "j")
            #expect(try store.add([newRequest("a", prompt: "changed", line: 1)], to: "j") == [.conflict(line: 9)])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func changedRequestIsReplacedWithReplace(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "j")

            let outcomes = try store.add(
                [newRequest("a", prompt: "changed", line: 3), newRequest("b", line: 4), newRequest("c", line: 5)],
                to: "j", replace: true)
            #expect(outcomes == [.replaced, .unchanged, .added])
            let summary = try #require(try store.job(named: "j"))
            #expect(summary.queued == 3)
            #expect(summary.total == 3)

            // The replacement is now the request of record.
            #expect(try store.add([newRequest("a", prompt: "changed", line: 1)], to: "j") == [.unchanged])
            #expect(try store.add([newRequest("a", line: 6)], to: "j") == [.conflict(line: 1)])
            #expect(try store.job(named: "j")?.queued == 3)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func jobsDoNotShareCustomIDs(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            #expect(try store.add([newRequest("a", line: 1)], to: "one") == [.added])
            #expect(try store.add([newRequest("a", prompt: "other", line: 1)], to: "two") == [.added])
            #expect(try store.jobs().map { [$0.name: $0.queued] } == [["one": 1], ["two": 1]])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func failedSubmissionOfANewJobLeavesNoTrace(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            try store.add([newRequest("x", line: 1)], to: "other")
            let before = try store.jobs()

            #expect(throws: SubmissionAborted()) {
                try store.submit(job: "new", options: SubmitOptions(source: "in.jsonl")) { session in
                    _ = try session.add([newRequest("a", line: 1), newRequest("b", line: 2)])
                    throw SubmissionAborted()
                }
            }
            #expect(try store.job(named: "new") == nil)
            #expect(try store.jobs() == before)
            // The rolled-back requests were never enqueued.
            #expect(
                try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "new") == [.added, .added])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func failedSubmissionToAnExistingJobChangesNothing(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try kind.open(in: directory, clock: clock)
            try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "j")
            let before = try store.jobs()

            clock.advance()
            #expect(throws: SubmissionAborted()) {
                try store.submit(job: "j", options: SubmitOptions(source: "in.jsonl", replace: true)) { session in
                    let outcomes = try session.add([
                        newRequest("a", prompt: "changed", line: 1), newRequest("b", line: 2), newRequest("c", line: 3),
                    ])
                    #expect(outcomes == [.replaced, .unchanged, .added])
                    throw SubmissionAborted()
                }
            }
            #expect(try store.jobs() == before)
            // Neither the replacement nor the addition survived.
            let outcomes = try store.add([newRequest("a", line: 1), newRequest("c", line: 3)], to: "j")
            #expect(outcomes == [.unchanged, .added])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func emptySubmissionCreatesAnEmptyJob(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock(5_000))
            #expect(try store.add([], to: "empty") == [])
            #expect(try store.job(named: "empty") == JobSummary(name: "empty", createdAt: 5_000))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func jobsAreListedOldestFirst(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock(1_000)
            let store = try kind.open(in: directory, clock: clock)
            #expect(try store.jobs() == [])
            for name in ["zeta", "alpha", "mid"] {
                try store.add([newRequest("a", line: 1)], to: name)
                clock.advance()
            }
            // Later submissions to an old job do not move it.
            try store.add([newRequest("b", line: 2)], to: "zeta")

            let jobs = try store.jobs()
            #expect(jobs.map(\.name) == ["zeta", "alpha", "mid"])
            #expect(jobs.map(\.createdAt) == [1_000, 2_000, 3_000])
            #expect(jobs.map(\.queued) == [2, 1, 1])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func unknownJobIsNil(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            #expect(try store.job(named: "missing") == nil)
            try store.add([newRequest("a", line: 1)], to: "present")
            #expect(try store.job(named: "missing") == nil)
            #expect(try store.job(named: "Present") == nil)
            #expect(try store.job(named: "present")?.name == "present")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningKeepsEverything(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let before: [JobSummary]
            do {
                let store = try kind.open(in: directory, clock: clock)
                try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "first")
                clock.advance()
                try store.add([newRequest("a", line: 1)], to: "second")
                try store.add([newRequest("a", prompt: "changed", line: 4)], to: "second", replace: true)
                before = try store.jobs()
            }
            clock.advance()
            let reopened = try kind.open(in: directory, clock: clock)
            #expect(try reopened.jobs() == before)
            #expect(try reopened.job(named: "first") == before.first)
            #expect(
                try reopened.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "first")
                    == [.unchanged, .unchanged])
            #expect(try reopened.add([newRequest("a", line: 1)], to: "second") == [.conflict(line: 4)])
            #expect(try reopened.jobs() == before)
        }
    }
}

// MARK: - SQLite

/// Behaviour of `SQLiteQueueStore` beyond the protocol: its counters against a count
/// of the rows, and its files.
@Suite struct SQLiteQueueStoreTests {
    /// Checks the maintained counters of `job` against a full count of its rows.
    func expectCountersMatchRows(
        _ store: SQLiteQueueStore, job: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let summary = try #require(try store.job(named: job), sourceLocation: sourceLocation)
        let counted = try store.countedStates(job: job)
        let expected: [RequestState: Int] = [
            .queued: summary.queued, .running: summary.running, .done: summary.done, .failed: summary.failed,
            .cancelled: summary.cancelled,
        ].filter { $0.value != 0 }
        #expect(counted == expected, sourceLocation: sourceLocation)
    }

    @Test func countersMatchTheRowsAfterEveryKindOfSubmission() throws {
        try withTemporaryDirectory { directory in
            let store = try SQLiteQueueStore.open(in: directory, clock: ManualClock())
            func request(_ number: Int, prompt: String? = nil, line: Int) throws -> NewRequest {
                try newRequest("r\(number)", prompt: prompt ?? "p\(number)", line: line)
            }
            let first = try (1...20).map { try request($0, line: $0) }
            #expect(try store.add(first, to: "j") == Array(repeating: .added, count: 20))
            try expectCountersMatchRows(store, job: "j")
            #expect(try store.countedStates(job: "j") == [.queued: 20])

            #expect(try store.add(first, to: "j") == Array(repeating: .unchanged, count: 20))
            try expectCountersMatchRows(store, job: "j")

            #expect(
                try store.add([request(1, line: 1), request(1, line: 2)], to: "j") == [.unchanged, .duplicate(line: 1)])
            try expectCountersMatchRows(store, job: "j")

            #expect(try store.add([request(2, prompt: "changed", line: 2)], to: "j") == [.conflict(line: 2)])
            try expectCountersMatchRows(store, job: "j")

            let mixed = try [
                request(3, prompt: "changed", line: 1), request(4, line: 2), request(21, line: 3), request(21, line: 4),
            ]
            let outcomes = try store.add(mixed, to: "j", replace: true)
            #expect(outcomes == [.replaced, .unchanged, .added, .duplicate(line: 3)])
            try expectCountersMatchRows(store, job: "j")
            #expect(try store.job(named: "j")?.queued == 21)

            #expect(throws: SubmissionAborted()) {
                try store.submit(job: "j", options: SubmitOptions(source: "-", replace: true)) { session in
                    _ = try session.add([request(5, prompt: "changed", line: 1), request(99, line: 2)])
                    throw SubmissionAborted()
                }
            }
            try expectCountersMatchRows(store, job: "j")
            #expect(try store.countedStates(job: "j") == [.queued: 21])
        }
    }

    @Test(arguments: [RequestState.running, .done, .failed, .cancelled])
    func replacingARequestInAnyStateQueuesItAfresh(_ state: RequestState) throws {
        try withTemporaryDirectory { directory in
            let store = try SQLiteQueueStore.open(in: directory, clock: ManualClock())
            try store.add([newRequest("a", line: 1), newRequest("b", line: 2)], to: "j")
            try finish(store, job: "j", customID: "a", as: state)
            try expectCountersMatchRows(store, job: "j")

            // The same request again leaves its state alone.
            #expect(try store.add([newRequest("a", line: 1)], to: "j", replace: true) == [.unchanged])
            #expect(try store.countedStates(job: "j") == [.queued: 1, state: 1])
            try expectCountersMatchRows(store, job: "j")

            #expect(try store.add([newRequest("a", prompt: "changed", line: 1)], to: "j", replace: true) == [.replaced])
            #expect(try store.countedStates(job: "j") == [.queued: 2])
            try expectCountersMatchRows(store, job: "j")
        }
    }

    @Test func countedStatesOfAnUnknownJobIsEmpty() throws {
        try withTemporaryDirectory { directory in
            let store = try SQLiteQueueStore.open(in: directory, clock: ManualClock())
            #expect(try store.countedStates(job: "missing") == [:])
        }
    }

    @Test func opensTheQueueOfAHome() throws {
        try withTemporaryDirectory { directory in
            let home = QueueHome(url: directory.appendingPathComponent("nested/home", isDirectory: true))
            #expect(!home.hasQueue)
            let store = try SQLiteQueueStore(home: home)
            try store.add([newRequest("a", line: 1)], to: "j")
            #expect(home.hasQueue)
            #expect(FileManager.default.fileExists(atPath: home.queueDatabase.path))
            #expect(try SQLiteQueueStore(home: home).job(named: "j")?.queued == 1)
        }
    }

    /// Moves a queued request to `state` and its job's counters with it, as a worker would.
    func finish(_ store: SQLiteQueueStore, job: String, customID: String, as state: RequestState) throws {
        try store.pool.write { db in
            let jobID = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE name = ?", arguments: [job])
            try db.execute(
                sql: "UPDATE requests SET state = ? WHERE job_id = ? AND custom_id = ? AND state = 'queued'",
                arguments: [state.rawValue, jobID, customID])
            #expect(db.changesCount == 1)
            let counter = "n_\(state.rawValue)"
            try db.execute(
                sql: "UPDATE jobs SET n_queued = n_queued - 1, \(counter) = \(counter) + 1 WHERE id = ?",
                arguments: [jobID])
        }
    }
}
