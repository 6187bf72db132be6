import Foundation
import LLMQCore
import LLMQStore
import Testing

/// Claims, leases, outcomes and workers: behaviour every `QueueStore` must have.
@Suite struct WorkConformanceTests {
    /// A store holding one job `j` with requests `r1`…`rN`, in that order.
    func store(_ kind: StoreKind, in directory: URL, clock: ManualClock, count: Int = 5) throws -> any QueueStore {
        let store = try kind.open(in: directory, clock: clock)
        try store.add((1...count).map { try newRequest("r\($0)", prompt: "p\($0)", line: $0) }, to: "j")
        return store
    }

    @Test(arguments: StoreKind.allCases)
    func claimsHandOutQueuedRequestsInInputOrderOnce(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock())
            let first = try store.claim(limit: 3, owner: "w1", leaseMilliseconds: 60_000, jobs: nil)
            #expect(first.map(\.customID) == ["r1", "r2", "r3"])
            #expect(first.allSatisfy { $0.attempt == 1 && $0.job == "j" && $0.provider == .openai })
            let expected = try newRequest("r1", prompt: "p1", line: 1).request
            #expect(first[0].request == expected.canonical)
            #expect(first[0].cacheKey == expected.cacheKey)
            #expect(first[0].model == "gpt-4o-mini")
            let second = try store.claim(limit: 10, owner: "w2", leaseMilliseconds: 60_000, jobs: nil)
            #expect(second.map(\.customID) == ["r4", "r5"])
            #expect(try store.claim(limit: 10, owner: "w3", leaseMilliseconds: 60_000, jobs: nil).isEmpty)
            #expect(try store.claim(limit: 0, owner: "w3", leaseMilliseconds: 60_000, jobs: nil).isEmpty)
            let summary = try #require(try store.job(named: "j"))
            #expect(summary.queued == 0)
            #expect(summary.running == 5)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func claimsCanBeLimitedToSomeJobs(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 2)
            try store.add([newRequest("other", line: 1)], to: "k")
            let claimed = try store.claim(limit: 10, owner: "w", leaseMilliseconds: 1_000, jobs: ["k"])
            #expect(claimed.map(\.customID) == ["other"])
            #expect(claimed.first?.job == "k")
            #expect(try store.claim(limit: 10, owner: "w", leaseMilliseconds: 1_000, jobs: []).isEmpty)
            #expect(try store.claim(limit: 10, owner: "w", leaseMilliseconds: 1_000, jobs: ["nope"]).isEmpty)
            #expect(try store.job(named: "j")?.queued == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func outcomesMoveCountersAndCostAndAreFencedOnTheOwner(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.store(kind, in: directory, clock: clock, count: 4)
            let claimed = try store.claim(limit: 4, owner: "w1", leaseMilliseconds: 60_000, jobs: nil)
            let applied = try store.finish(
                [
                    Completion(id: claimed[0].id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: 0.25)),
                    Completion(id: claimed[1].id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: nil)),
                    Completion(id: claimed[2].id, outcome: .failed(error: #"{"type":"bad"}"#)),
                    Completion(
                        id: claimed[3].id, outcome: .retry(notBefore: 0, refundAttempt: false, error: nil)),
                ], owner: "w1")
            #expect(applied == [true, true, true, true])
            let summary = try #require(try store.job(named: "j"))
            let counts: [Int] = [summary.queued, summary.running, summary.done, summary.failed]
            #expect(counts == [1, 0, 2, 1])
            #expect(summary.costUSD == 0.25)
            // Finished requests are no longer anyone's: a second outcome is refused.
            let again = try store.finish(
                [Completion(id: claimed[0].id, outcome: .failed(error: "{}"))], owner: "w1")
            #expect(again == [false])
            // Another owner cannot finish what w1 holds.
            let retried = try store.claim(limit: 1, owner: "w1", leaseMilliseconds: 60_000, jobs: nil)
            #expect(retried.map(\.customID) == ["r4"])
            #expect(retried.first?.attempt == 2)
            #expect(
                try store.finish(
                    [Completion(id: retried[0].id, outcome: .failed(error: "{}"))], owner: "intruder") == [false])
            #expect(try store.job(named: "j")?.running == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRetryWaitsUntilItIsDueAndARefundKeepsTheAttempt(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock(10_000)
            let store = try self.store(kind, in: directory, clock: clock, count: 1)
            let first = try store.claim(limit: 1, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
            _ = try store.finish(
                [Completion(id: first[0].id, outcome: .retry(notBefore: 15_000, refundAttempt: true, error: "429"))],
                owner: "w")
            #expect(try store.claim(limit: 1, owner: "w", leaseMilliseconds: 60_000, jobs: nil).isEmpty)
            clock.advance(by: 5_000)
            let second = try store.claim(limit: 1, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
            #expect(second.map(\.attempt) == [1])
            _ = try store.finish(
                [Completion(id: second[0].id, outcome: .retry(notBefore: 0, refundAttempt: false, error: "500"))],
                owner: "w")
            #expect(try store.claim(limit: 1, owner: "w", leaseMilliseconds: 60_000, jobs: nil).map(\.attempt) == [2])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func expiredLeasesGoBackToTheQueueAndTheOldOwnerIsFencedOut(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.store(kind, in: directory, clock: clock, count: 2)
            let claimed = try store.claim(limit: 2, owner: "slow", leaseMilliseconds: 1_000, jobs: nil)
            clock.advance(by: 500)
            #expect(try store.rescueExpiredLeases() == 0)
            #expect(try store.renewLeases(owner: "slow", leaseMilliseconds: 1_000) == 2)
            clock.advance(by: 800)
            #expect(try store.rescueExpiredLeases() == 0)
            clock.advance(by: 300)
            #expect(try store.rescueExpiredLeases() == 2)
            #expect(try store.job(named: "j")?.queued == 2)
            let fenced = try store.finish(
                [Completion(id: claimed[0].id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: 1))],
                owner: "slow")
            #expect(fenced == [false])
            let again = try store.claim(limit: 2, owner: "fresh", leaseMilliseconds: 1_000, jobs: nil)
            #expect(again.map(\.attempt) == [2, 2])
            #expect(try store.job(named: "j")?.costUSD == 0)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func releasingLeasesRefundsOnlyWhenAsked(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try self.store(kind, in: directory, clock: ManualClock(), count: 3)
            _ = try store.claim(limit: 2, owner: "a", leaseMilliseconds: 60_000, jobs: nil)
            _ = try store.claim(limit: 1, owner: "b", leaseMilliseconds: 60_000, jobs: nil)
            #expect(try store.releaseLeases(owner: "a", refundAttempt: true) == 2)
            #expect(try store.releaseLeases(owner: "b", refundAttempt: false) == 1)
            #expect(try store.releaseLeases(owner: "nobody", refundAttempt: true) == 0)
            let next = try store.claim(limit: 3, owner: "c", leaseMilliseconds: 60_000, jobs: nil)
            #expect(next.map(\.customID) == ["r1", "r2", "r3"])
            #expect(next.map(\.attempt) == [1, 1, 2])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func workersRegisterBeatAndLeave(_ kind: StoreKind) throws {
        try withTemporaryDirectory { directory in
            let store = try kind.open(in: directory, clock: ManualClock())
            let worker = WorkerRecord(owner: "host:1:a", host: "host", pid: 1, startedAt: 10, heartbeatAt: 10)
            try store.heartbeat(worker)
            var later = worker
            later.heartbeatAt = 20
            later.stats = #"{"rps":5}"#
            later.startedAt = 999  // ignored: a worker starts once
            try store.heartbeat(later)
            try store.heartbeat(WorkerRecord(owner: "host:2:b", host: "host", pid: 2, startedAt: 15, heartbeatAt: 15))
            let workers = try store.workers()
            #expect(workers.map(\.owner) == ["host:1:a", "host:2:b"])
            #expect(workers[0].heartbeatAt == 20)
            #expect(workers[0].startedAt == 10)
            #expect(workers[0].stats == #"{"rps":5}"#)
            try store.removeWorker(owner: "host:1:a")
            #expect(try store.workers().map(\.owner) == ["host:2:b"])
        }
    }
}

@Suite struct SQLiteWorkCountersTests {
    @Test func countersStayEqualToTheRowsThroughClaimsAndOutcomes() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try SQLiteQueueStore.open(in: directory, clock: clock)
            try store.add((1...50).map { try newRequest("r\($0)", prompt: "p\($0)", line: $0) }, to: "j")
            var round = 0
            while round < 100 {
                let claimed = try store.claim(limit: 7, owner: "w", leaseMilliseconds: 1_000, jobs: nil)
                if claimed.isEmpty { break }
                round += 1
                let completions = claimed.enumerated().map { index, request -> Completion in
                    switch (index + round) % 4 {
                    case 0: Completion(id: request.id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: 0.5))
                    case 1: Completion(id: request.id, outcome: .failed(error: "{}"))
                    case 2 where request.attempt < 3:
                        Completion(id: request.id, outcome: .retry(notBefore: 0, refundAttempt: false, error: nil))
                    default: Completion(id: request.id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: nil))
                    }
                }
                // In early rounds one request is left unfinished: its lease expires.
                _ = try store.finish(round < 4 ? Array(completions.dropLast()) : completions, owner: "w")
                clock.advance(by: 2_000)
                try store.rescueExpiredLeases()
                let summary = try #require(try store.job(named: "j"))
                let counted = try store.countedStates(job: "j")
                #expect(summary.queued == counted[.queued] ?? 0)
                #expect(summary.running == counted[.running] ?? 0)
                #expect(summary.done == counted[.done] ?? 0)
                #expect(summary.failed == counted[.failed] ?? 0)
                #expect(summary.total == 50)
            }
            let summary = try #require(try store.job(named: "j"))
            #expect(summary.done + summary.failed == 50)
        }
    }
}
