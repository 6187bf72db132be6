import LLMQCore

/// The requests in flight to one (provider, API key): as many as its AIMD window
/// allows, none while the provider has said to wait.
///
/// Time comes from the injected `clock` (milliseconds) and waits go through the
/// injected `sleep`, so tests drive a lane without sleeping.
public actor Lane {
    /// How a request sent through the lane ended.
    public enum Outcome: Sendable, Equatable {
        /// Answered, after `latencyMilliseconds`.
        case success(latencyMilliseconds: Double)
        /// The provider said slow down (429, 529, overloaded); wait `pauseMilliseconds`
        /// before sending anything else, if it said how long.
        case congestion(pauseMilliseconds: Int64?)
        /// Failed otherwise (an error, a timeout): the window is unchanged.
        case failure
    }

    /// A snapshot for progress displays and `llmq status`.
    public struct Stats: Sendable, Equatable {
        public var window: Int
        public var inFlight: Int
        public var congestions: Int
        public var decreases: Int
        public var pausedUntil: Double
    }

    public nonisolated let name: String
    private var window: AIMDWindow
    private var inFlight = 0
    private var congestions = 0
    private var pausedUntil = 0.0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private let clock: @Sendable () -> Double
    private let sleep: @Sendable (Double) async -> Void

    /// - Parameters:
    ///   - name: e.g. `openai#1` (never the key itself).
    ///   - clock: now, in milliseconds.
    ///   - sleep: waits about that many milliseconds.
    public init(
        name: String, window: AIMDWindow.Configuration, clock: @escaping @Sendable () -> Double,
        sleep: @escaping @Sendable (Double) async -> Void
    ) {
        self.name = name
        self.window = AIMDWindow(window)
        self.clock = clock
        self.sleep = sleep
    }

    /// Waits for room in the window and for any pause to end, then takes a slot.
    /// Every `acquire` must be matched by one `release`. Throws CancellationError
    /// (taking no slot) if the task is cancelled; a waiter notices when it is next
    /// woken (a release, or the end of a pause).
    public func acquire() async throws {
        while true {
            try Task.checkCancellation()
            let now = clock()
            if now < pausedUntil {
                await sleep(pausedUntil - now)
                continue
            }
            if inFlight < window.limit {
                inFlight += 1
                return
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Gives back a slot and learns from how the request went.
    public func release(_ outcome: Outcome) {
        inFlight -= 1
        switch outcome {
        case .success(let latency):
            window.recordSuccess(latencyMilliseconds: latency)
        case .congestion(let pause):
            congestions += 1
            let now = clock()
            window.recordCongestion(at: now)
            if let pause { pausedUntil = max(pausedUntil, now + Double(pause)) }
        case .failure:
            break
        }
        wakeWaiters()
    }

    /// Obeys a provider's hint from a successful answer (a budget used up until its
    /// reset) without counting it as congestion.
    public func pause(forMilliseconds milliseconds: Int64) {
        pausedUntil = max(pausedUntil, clock() + Double(milliseconds))
    }

    /// Changes the most this lane may have in flight (its share of `--concurrency`).
    public func setMaximum(_ maximum: Int) {
        window.setMaximum(Double(maximum))
        wakeWaiters()
    }

    public var stats: Stats {
        Stats(
            window: window.limit, inFlight: inFlight, congestions: congestions, decreases: window.decreases,
            pausedUntil: pausedUntil)
    }

    /// Wakes as many waiters as there are free slots; they re-check on waking.
    private func wakeWaiters() {
        var free = max(0, window.limit - inFlight)
        while free > 0, !waiters.isEmpty {
            waiters.removeFirst().resume()
            free -= 1
        }
    }
}
