import Foundation
import LLMQEngine
import Testing

/// A clock that moves only when a lane "sleeps" or the test says so.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var milliseconds: Double = 0
    private(set) var slept: [Double] = []

    var now: Double { lock.withLock { milliseconds } }

    func advance(_ delta: Double) { lock.withLock { milliseconds += delta } }

    func sleep(_ delta: Double) {
        lock.withLock {
            slept.append(delta)
            milliseconds += delta
        }
    }

    func lane(initial: Double = 2, maximum: Double = 4) -> Lane {
        Lane(
            name: "test#1", window: AIMDWindow.Configuration(initial: initial, floor: 1, maximum: maximum),
            clock: { self.now }, sleep: { self.sleep($0) })
    }
}

@Suite struct LaneTests {
    @Test func holdsAtMostTheWindowInFlightAndHandsSlotsOnInOrder() async throws {
        let clock = TestClock()
        let lane = clock.lane(initial: 2)
        try await lane.acquire()
        try await lane.acquire()
        #expect(await lane.stats.inFlight == 2)
        let third = Task { try await lane.acquire() }
        // The third waits until a slot is released.
        try await Task.sleep(for: .milliseconds(20))
        #expect(await lane.stats.inFlight == 2)
        await lane.release(.failure)
        try await third.value
        #expect(await lane.stats.inFlight == 2)
    }

    @Test func congestionHalvesTheWindowAndPausesTheLaneAsTold() async throws {
        let clock = TestClock()
        let lane = clock.lane(initial: 4)
        for _ in 0..<4 { try await lane.acquire() }
        await lane.release(.congestion(pauseMilliseconds: 1_500))
        await lane.release(.congestion(pauseMilliseconds: 1_500))  // same burst: no second halving
        var stats = await lane.stats
        #expect(stats.window == 2)
        #expect(stats.decreases == 1)
        #expect(stats.congestions == 2)
        // Two still in flight fill the halved window; once they end, the next
        // request waits out the pause before it goes.
        await lane.release(.success(latencyMilliseconds: 100))
        await lane.release(.success(latencyMilliseconds: 100))
        try await lane.acquire()
        #expect(clock.slept == [1_500])
        #expect(clock.now == 1_500)
        stats = await lane.stats
        #expect(stats.inFlight == 1)
    }

    @Test func aBudgetHintPausesWithoutShrinkingTheWindow() async throws {
        let clock = TestClock()
        let lane = clock.lane(initial: 3)
        await lane.pause(forMilliseconds: 250)
        try await lane.acquire()
        #expect(clock.slept == [250])
        #expect(await lane.stats.window == 3)
    }

    @Test func successesGrowTheWindowUpToTheMaximumAndAMaximumCanShrink() async throws {
        let clock = TestClock()
        let lane = clock.lane(initial: 1, maximum: 3)
        for _ in 0..<50 {
            try await lane.acquire()
            await lane.release(.success(latencyMilliseconds: 10))
        }
        #expect(await lane.stats.window == 3)
        await lane.setMaximum(2)
        #expect(await lane.stats.window == 2)
    }

    @Test func aCancelledWaiterTakesNoSlot() async throws {
        let clock = TestClock()
        let lane = clock.lane(initial: 1)
        try await lane.acquire()
        let waiter = Task { try await lane.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await lane.release(.failure)
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(await lane.stats.inFlight == 0)
    }
}
