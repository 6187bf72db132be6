/// How many requests a lane may have in flight: additive increase on success,
/// multiplicative decrease on a 429 or an overload.
///
/// Like TCP: until the first congestion the window doubles every round trip (slow
/// start: each success adds one), so a lane reaches a high concurrency in a few
/// round trips; after it, the window grows by about one request per round trip
/// (each success adds 1/window). It halves on congestion at most once per
/// round-trip time, so a burst of 429s from one window counts as one signal, and
/// stays between `floor` and `maximum`. Times are milliseconds from any origin (an
/// injected clock).
public struct AIMDWindow: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        /// The window a new lane starts with.
        public var initial: Double = 8
        /// The window never shrinks below this.
        public var floor: Double = 1
        /// The window never grows above this (the lane's share of `--concurrency`).
        public var maximum: Double = 32
        /// Multiplier on congestion.
        public var decrease: Double = 0.5
        /// Round-trip time assumed before any was measured.
        public var initialRoundTripMilliseconds: Double = 1_000

        public init(initial: Double = 8, floor: Double = 1, maximum: Double = 32) {
            self.initial = initial
            self.floor = floor
            self.maximum = maximum
        }
    }

    public let configuration: Configuration
    /// The current window (fractional: it grows by fractions of a request).
    public private(set) var window: Double
    /// Smoothed round-trip time (exponentially weighted, 1/8 per sample as TCP does).
    public private(set) var roundTripMilliseconds: Double
    /// How many times the window was halved.
    public private(set) var decreases = 0
    /// Below this the window grows by one per success (slow start); infinite until
    /// the first congestion, then the window after it.
    public private(set) var slowStartThreshold = Double.infinity
    private var lastDecreaseAt: Double?

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        window = min(max(configuration.initial, configuration.floor), configuration.maximum)
        roundTripMilliseconds = configuration.initialRoundTripMilliseconds
    }

    /// Requests that may be in flight now.
    public var limit: Int { max(1, Int(window.rounded(.down))) }

    /// A request succeeded after `latency` milliseconds.
    public mutating func recordSuccess(latencyMilliseconds latency: Double) {
        roundTripMilliseconds += (latency - roundTripMilliseconds) / 8
        window = min(configuration.maximum, window + (window < slowStartThreshold ? 1 : 1 / window))
    }

    /// The provider said slow down (429, 529, an overloaded 503) at `now`. Returns
    /// whether the window shrank: only once per round trip.
    @discardableResult
    public mutating func recordCongestion(at now: Double) -> Bool {
        if let lastDecreaseAt, now - lastDecreaseAt < roundTripMilliseconds { return false }
        lastDecreaseAt = now
        window = max(configuration.floor, window * configuration.decrease)
        slowStartThreshold = window
        decreases += 1
        return true
    }

    /// Changes the maximum (and clamps the window to it), e.g. when the process's
    /// concurrency is shared among more lanes.
    public mutating func setMaximum(_ maximum: Double) {
        var configuration = self.configuration
        configuration.maximum = max(configuration.floor, maximum)
        self = AIMDWindow(copying: self, configuration: configuration)
    }

    private init(copying other: AIMDWindow, configuration: Configuration) {
        self.configuration = configuration
        window = min(other.window, configuration.maximum)
        roundTripMilliseconds = other.roundTripMilliseconds
        decreases = other.decreases
        slowStartThreshold = other.slowStartThreshold
        lastDecreaseAt = other.lastDecreaseAt
    }
}
