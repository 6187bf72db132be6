import LLMQEngine
import Testing

@Suite struct AIMDWindowTests {
    @Test func slowStartDoublesTheWindowEachRoundTripUntilTheFirstCongestion() {
        var window = AIMDWindow(AIMDWindow.Configuration(initial: 8, floor: 1, maximum: 1_024))
        for _ in 0..<8 { window.recordSuccess(latencyMilliseconds: 200) }
        #expect(window.limit == 16)
        for _ in 0..<16 { window.recordSuccess(latencyMilliseconds: 200) }
        #expect(window.limit == 32)
        window.recordCongestion(at: 0)
        #expect(window.limit == 16)
        #expect(window.slowStartThreshold == 16)
        for _ in 0..<16 { window.recordSuccess(latencyMilliseconds: 200) }
        #expect(window.limit == 16)  // additive now: about one more per round trip
    }

    @Test func growsAboutOneRequestPerWindowOfSuccessesUpToTheMaximum() {
        var window = AIMDWindow(AIMDWindow.Configuration(initial: 8, floor: 1, maximum: 8))
        window.recordCongestion(at: 0)  // leaves slow start at 4
        #expect(window.limit == 4)
        for _ in 0..<4 { window.recordSuccess(latencyMilliseconds: 100) }
        #expect(window.limit == 4)  // 4 + 4 × ~1/4 just below 5
        for _ in 0..<2 { window.recordSuccess(latencyMilliseconds: 100) }
        #expect(window.limit == 5)
        for _ in 0..<1_000 { window.recordSuccess(latencyMilliseconds: 100) }
        #expect(window.window == 8)
        #expect(window.limit == 8)
    }

    @Test func aBurstOfCongestionWithinOneRoundTripHalvesOnce() {
        var window = AIMDWindow(AIMDWindow.Configuration(initial: 32, floor: 2, maximum: 32))
        for _ in 0..<50 { window.recordSuccess(latencyMilliseconds: 200) }
        let roundTrip = window.roundTripMilliseconds
        #expect(roundTrip < 1_000 && roundTrip > 200)
        var shrank = window.recordCongestion(at: 10_000)
        #expect(shrank)
        #expect(window.limit == 16)
        // Every other 429 of the same burst arrives within the round trip.
        for offset in stride(from: 0.0, to: roundTrip, by: roundTrip / 10) {
            shrank = window.recordCongestion(at: 10_000 + offset)
            #expect(!shrank)
        }
        #expect(window.limit == 16)
        #expect(window.decreases == 1)
        // The next round trip's congestion halves again, down to the floor and no further.
        shrank = window.recordCongestion(at: 10_000 + roundTrip)
        #expect(shrank)
        #expect(window.limit == 8)
        var now = 10_000 + 2 * roundTrip
        for _ in 0..<10 {
            window.recordCongestion(at: now)
            now += roundTrip
        }
        #expect(window.limit == 2)
    }

    @Test func recoversAfterCongestionAndNeverExceedsTheMaximum() {
        var window = AIMDWindow(AIMDWindow.Configuration(initial: 10, floor: 1, maximum: 10))
        window.recordCongestion(at: 0)
        #expect(window.limit == 5)
        var peak = 0
        for _ in 0..<500 {
            window.recordSuccess(latencyMilliseconds: 50)
            peak = max(peak, window.limit)
        }
        #expect(window.limit == 10)
        #expect(peak == 10)
    }

    @Test func aLowerMaximumClampsTheWindow() {
        var window = AIMDWindow(AIMDWindow.Configuration(initial: 20, floor: 1, maximum: 20))
        window.setMaximum(5)
        #expect(window.limit == 5)
        for _ in 0..<100 { window.recordSuccess(latencyMilliseconds: 10) }
        #expect(window.limit == 5)
        #expect(AIMDWindow(AIMDWindow.Configuration(initial: 0, floor: 1, maximum: 4)).limit == 1)
    }
}

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 100, maxDelayMilliseconds: 1_000)

    @Test(arguments: [429, 529, 503])
    func congestionIsASnoozeThatDoesNotBurnAnAttempt(_ status: Int) {
        #expect(
            policy.decide(.status(status, retryAfterMilliseconds: 2_500), attempt: 9, random: { 0.5 })
                == .retry(afterMilliseconds: 2_500, refundAttempt: true))
        #expect(
            policy.decide(.status(status, retryAfterMilliseconds: nil), attempt: 2, random: { 0.5 })
                == .retry(afterMilliseconds: 100, refundAttempt: true))
    }

    @Test(arguments: [500, 502, 504, 408, 409])
    func serverErrorsBurnAttemptsUntilTheLimit(_ status: Int) {
        #expect(
            policy.decide(.status(status, retryAfterMilliseconds: nil), attempt: 1, random: { 0.99 })
                == .retry(afterMilliseconds: 99, refundAttempt: false))
        #expect(policy.decide(.status(status, retryAfterMilliseconds: nil), attempt: 3, random: { 0.5 }) == .fail)
    }

    @Test(arguments: [400, 401, 403, 404, 422])
    func otherClientErrorsFailAtOnce(_ status: Int) {
        #expect(policy.decide(.status(status, retryAfterMilliseconds: 10), attempt: 1, random: { 0.5 }) == .fail)
    }

    @Test func transportFailuresBurnAttempts() {
        #expect(
            policy.decide(.transport, attempt: 2, random: { 1 - 1e-9 })
                == .retry(afterMilliseconds: 199, refundAttempt: false))
        #expect(policy.decide(.transport, attempt: 3, random: { 0.5 }) == .fail)
    }

    @Test func backoffIsFullJitterUnderADoublingCappedCeiling() {
        #expect(policy.backoff(attempt: 1, random: { 1 - 1e-9 }) == 99)
        #expect(policy.backoff(attempt: 4, random: { 1 - 1e-9 }) == 799)
        #expect(policy.backoff(attempt: 5, random: { 1 - 1e-9 }) == 999)
        #expect(policy.backoff(attempt: 60, random: { 1 - 1e-9 }) == 999)
        #expect(policy.backoff(attempt: 5, random: { 0 }) == 0)
    }

    @Test(arguments: [Int64(0), -1, -5_000])
    func aWaitOfZeroOrLessIsNoHintSoTheBackoffApplies(_ wait: Int64) {
        #expect(
            policy.decide(.status(429, retryAfterMilliseconds: wait), attempt: 1, random: { 0.5 })
                == .retry(afterMilliseconds: 50, refundAttempt: true))
        #expect(
            policy.decide(.status(500, retryAfterMilliseconds: wait), attempt: 2, random: { 0.5 })
                == .retry(afterMilliseconds: 100, refundAttempt: false))
        #expect(RetryPolicy.hint(wait) == nil)
        #expect(RetryPolicy.hint(1) == 1)
    }

    @Test(arguments: [429, 529, 503])
    func congestionSnoozesStopAtTheLimit(_ status: Int) {
        var policy = policy
        policy.maxRateLimitSnoozes = 2
        let limited = RetryPolicy.Failure.status(status, retryAfterMilliseconds: 10)
        #expect(
            policy.decide(limited, attempt: 1, snoozes: 1, random: { 0.5 })
                == .retry(afterMilliseconds: 10, refundAttempt: true))
        #expect(policy.decide(limited, attempt: 1, snoozes: 2, random: { 0.5 }) == .fail)
        #expect(RetryPolicy().maxRateLimitSnoozes == 50)
    }

    @Test func aFailureTheProviderSaysIsPermanentFailsAtOnce() {
        #expect(policy.decide(.permanent, attempt: 1, random: { 0.5 }) == .fail)
    }
}
