import Foundation
import LLMQCore
import LLMQStore
import Testing

/// `llmq results`, `retry` and `cancel` on the store: input order, fencing against
/// workers, and the counters.
@Suite struct ManageTests {
    /// A store with job `j` holding `r1`…`rN`, submitted in that order but from the
    /// lines N…1, so input order is the reverse of the order of the rows.
    func store(_ kind: StoreKind, in directory: URL, clock: ManualClock, count: Int) throws -> any QueueStore {
        let store = try kind.open(in: directory, clock: clock)
        try store.add((1...count).map { try newRequest("r\($0)", prompt: "p\($0)", line: count + 1 - $0) }, to: "j")
        return store
    }

    /// Claims every queued request of the store for `owner` and gives each the
    /// outcome `outcome` picks from its custom_id (nil: leave it running).
    func claimAndFinish(
        _ store: any QueueStore, owner: String = "w", _ outcome: (String) -> RequestOutcome?
    ) throws {
        let claimed = try store.claim(limit: 1_000, owner: owner, leaseMilliseconds: 60_000, jobs: nil)
        let completions = claimed.compactMap { request in
            outcome(request.customID).map { Completion(id: request.id, outcome: $0) }
        }
        #expect(try store.finish(completions, owner: owner).allSatisfy { $0 })
    }

    static let ok = RequestOutcome.succeeded(result: #"{"text":"hi"}"#, usage: "{}", costUSD: 0.5)
    static let bad = RequestOutcome.failed(error: #"{"message":"no","status":400}"#)

    /// A job's counters: queued, running, done, failed, cancelled.
    func counts(_ store: any QueueStore, job: String = "j") throws -> [Int] {
        let summary = try #require(try store.job(named: job))
        return [summary.queued, summary.running, summary.done, summary.failed, summary.cancelled]
    }

    func finished(_ store: any QueueStore, job: String = "j", pageSize: Int = 1_000) throws
        -> (pages: [[FinishedRequest]], summary: JobSummary?)
    {
        var pages: [[FinishedRequest]] = []
        let summary = try store.finishedRequests(job: job, pageSize: pageSize) { pages.append($0) }
        return (pages, summary)
    }

    @Test(arguments: StoreKind.allCases)
    func finishedRequestsComeInInputOrderAPageAtATime(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 8)
            try claimAndFinish(store) { id in
                switch id {
                case "r1", "r4": nil  // still running
                case "r2", "r7": Self.bad
                default: Self.ok
                }
            }
            try store.add([newRequest("late", line: 9)], to: "j")
            let (pages, summary) = try finished(store, pageSize: 2)
            #expect(pages.map(\.count) == [2, 2, 2])
            let requests = pages.flatMap { $0 }
            #expect(requests.map(\.customID) == ["r8", "r7", "r6", "r5", "r3", "r2"])
            #expect(requests.map(\.line) == [1, 2, 3, 4, 6, 7])
            #expect(requests.map(\.state) == [.done, .failed, .done, .done, .done, .failed])
            #expect(requests[0].result == #"{"text":"hi"}"#)
            #expect(requests[0].costUSD == 0.5)
            #expect(requests[1].error == #"{"message":"no","status":400}"#)
            #expect(summary?.total == 9)
            #expect(summary?.done == 4)
            #expect(try counts(store) == [1, 2, 4, 2, 0])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func rowsOfEqualLinesFollowTheirOrderOfArrival(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            // Two files submitted to one job: both have a line 1 and a line 2.
            try store.add([newRequest("a1", line: 1), newRequest("a2", line: 2)], to: "j")
            try store.add([newRequest("b1", line: 1), newRequest("b2", line: 2)], to: "j")
            try claimAndFinish(store) { _ in Self.ok }
            #expect(try finished(store).pages.flatMap { $0 }.map(\.customID) == ["a1", "b1", "a2", "b2"])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aJobWithNothingFinishedGivesNoPageAndAnUnknownJobIsNil(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 2)
            let (pages, summary) = try finished(store)
            #expect(pages.isEmpty)
            #expect(summary?.queued == 2)
            #expect(try finished(store, job: "missing").summary == nil)
            #expect(try store.retry(job: "missing", includeCancelled: true) == nil)
            #expect(try store.cancel(job: "missing") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func retryQueuesFailedRequestsAfreshAndTheirNextOutcomeIsExportedAgain(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.store(kind, in: directory, clock: clock, count: 4)
            try claimAndFinish(store) { ["r1", "r2"].contains($0) ? Self.bad : Self.ok }
            let exported = try store.finishedUnexported(job: "j", limit: 10)
            #expect(exported.count == 4)
            try store.recordExport(job: "j", ids: exported.map(\.id), offsets: ["results.jsonl": 100])

            #expect(try store.retry(job: "j", includeCancelled: false) == Requeued(failed: 2))
            #expect(try counts(store) == [2, 0, 2, 0, 0])
            #expect(try store.job(named: "j")?.costUSD == 1.0)
            #expect(try finished(store).pages.flatMap { $0 }.map(\.customID) == ["r4", "r3"])

            // Attempts count afresh, and the new outcomes are exported again.
            let again = try store.claim(limit: 10, owner: "w2", leaseMilliseconds: 60_000, jobs: nil)
            #expect(again.map(\.customID).sorted() == ["r1", "r2"])
            #expect(again.map(\.attempt) == [1, 1])
            #expect(
                try store.finish(again.map { Completion(id: $0.id, outcome: Self.ok) }, owner: "w2") == [true, true])
            let second = try store.finishedUnexported(job: "j", limit: 10)
            #expect(second.map(\.customID).sorted() == ["r1", "r2"])
            #expect(second.allSatisfy { $0.state == .done && $0.error == nil && $0.attempt == 1 })
            #expect(try counts(store) == [0, 0, 4, 0, 0])
            #expect(try store.job(named: "j")?.costUSD == 2.0)

            #expect(try store.retry(job: "j", includeCancelled: false) == Requeued())
        }
    }

    @Test(arguments: StoreKind.allCases)
    func retryLeavesRunningRequestsToTheirLeaseHolder(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 3)
            let claimed = try store.claim(limit: 3, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
            let byID = Dictionary(uniqueKeysWithValues: claimed.map { ($0.customID, $0) })
            _ = try store.finish([Completion(id: byID["r1"]!.id, outcome: Self.bad)], owner: "w")

            #expect(try store.retry(job: "j", includeCancelled: true) == Requeued(failed: 1))
            #expect(try store.job(named: "j")?.running == 2)
            // Another worker gets only the retried request; the holder still finishes its own.
            let other = try store.claim(limit: 10, owner: "w2", leaseMilliseconds: 60_000, jobs: nil)
            #expect(other.map(\.customID) == ["r1"])
            let applied = try store.finish(
                [
                    Completion(id: byID["r2"]!.id, outcome: Self.ok),
                    Completion(id: byID["r3"]!.id, outcome: Self.bad),
                    Completion(id: byID["r1"]!.id, outcome: Self.ok),
                ], owner: "w")
            #expect(applied == [true, true, false])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func cancelledRequestsAreNeverClaimedAndRunningOnesStillFinish(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock(10_000)
            let store = try self.store(kind, in: directory, clock: clock, count: 5)
            let running = try store.claim(limit: 2, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
            #expect(running.map(\.customID) == ["r1", "r2"])
            // r3 waits for a retry: cancelled too.
            let waiting = try store.claim(limit: 1, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
            _ = try store.finish(
                [Completion(id: waiting[0].id, outcome: .retry(notBefore: 50_000, refundAttempt: false, error: nil))],
                owner: "w")

            #expect(try store.cancel(job: "j") == 3)
            #expect(try counts(store) == [0, 2, 0, 0, 3])
            clock.advance(by: 100_000)
            #expect(try store.claim(limit: 10, owner: "w2", leaseMilliseconds: 60_000, jobs: nil).isEmpty)
            let applied = try store.finish(
                [Completion(id: running[0].id, outcome: Self.ok), Completion(id: running[1].id, outcome: Self.bad)],
                owner: "w")
            #expect(applied == [true, true])
            #expect(try store.cancel(job: "j") == 0)
            #expect(try finished(store).pages.flatMap { $0 }.map(\.customID) == ["r2", "r1"])

            // Retry without --cancelled leaves them; with it, they are queued afresh.
            #expect(try store.retry(job: "j", includeCancelled: false) == Requeued(failed: 1))
            #expect(try store.retry(job: "j", includeCancelled: true) == Requeued(cancelled: 3))
            #expect(try counts(store) == [4, 0, 1, 0, 0])
            let again = try store.claim(limit: 10, owner: "w2", leaseMilliseconds: 60_000, jobs: nil)
            #expect(again.map(\.customID) == ["r2", "r3", "r4", "r5"])
            #expect(again.allSatisfy { $0.attempt == 1 })
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRequestRetriedWhileItWasBeingExportedIsExportedAgain(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 2)
            try claimAndFinish(store) { _ in Self.bad }
            // An exporter reads the failures, a retry lands, then it records its export.
            let read = try store.finishedUnexported(job: "j", limit: 10)
            #expect(try store.retry(job: "j", includeCancelled: false) == Requeued(failed: 2))
            try store.recordExport(job: "j", ids: read.map(\.id), offsets: ["results.jsonl": 10])
            try claimAndFinish(store) { _ in Self.ok }
            #expect(try store.finishedUnexported(job: "j", limit: 10).count == 2)
        }
    }
}

@Suite struct SQLiteManageCountersTests {
    @Test func countersStayEqualToTheRowsThroughRetriesAndCancels() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try SQLiteQueueStore.open(in: directory, clock: clock)
            try store.add((1...40).map { try newRequest("r\($0)", prompt: "p\($0)", line: $0) }, to: "j")
            try store.add((1...5).map { try newRequest("k\($0)", line: $0) }, to: "k")
            func check() throws {
                for job in ["j", "k"] {
                    let summary = try #require(try store.job(named: job))
                    let counted = try store.countedStates(job: job)
                    #expect(summary.queued == counted[.queued] ?? 0)
                    #expect(summary.running == counted[.running] ?? 0)
                    #expect(summary.done == counted[.done] ?? 0)
                    #expect(summary.failed == counted[.failed] ?? 0)
                    #expect(summary.cancelled == counted[.cancelled] ?? 0)
                }
            }
            for round in 0..<12 {
                let claimed = try store.claim(limit: 9, owner: "w", leaseMilliseconds: 1_000, jobs: ["j"])
                let completions = claimed.enumerated().compactMap { index, request -> Completion? in
                    switch (index + round) % 4 {
                    case 0: Completion(id: request.id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: 0.25))
                    case 1, 2: Completion(id: request.id, outcome: .failed(error: "{}"))
                    default: nil  // left running
                    }
                }
                _ = try store.finish(completions, owner: "w")
                try check()
                switch round % 3 {
                case 0: _ = try store.cancel(job: "j")
                case 1: _ = try store.retry(job: "j", includeCancelled: false)
                default: _ = try store.retry(job: "j", includeCancelled: true)
                }
                try check()
                clock.advance(by: 2_000)
                try store.rescueExpiredLeases()
                try check()
            }
            let summary = try #require(try store.job(named: "j"))
            #expect(summary.total == 40)
            #expect(summary.costUSD == Double(summary.done) * 0.25)
            #expect(try store.job(named: "k")?.queued == 5)
        }
    }
}
