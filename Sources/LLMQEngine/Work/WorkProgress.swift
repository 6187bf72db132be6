import LLMQCore

/// The figures of a running `llmq work`: shown live on its terminal and recorded
/// with its heartbeat, so `llmq status` can show them from another terminal.
public struct WorkProgress: Sendable, Equatable {
    /// One lane (provider, API key) as the display shows it.
    public struct LaneFigures: Sendable, Equatable {
        /// e.g. `openai#1` (never the key).
        public var name: String
        public var window: Int
        public var inFlight: Int
        /// Answers that said slow down (429, 529, overloaded).
        public var rateLimited: Int
        /// How long the lane still waits because the provider said so.
        public var pausedMilliseconds: Int64

        public init(name: String, window: Int, inFlight: Int, rateLimited: Int, pausedMilliseconds: Int64) {
            self.name = name
            self.window = window
            self.inFlight = inFlight
            self.rateLimited = rateLimited
            self.pausedMilliseconds = pausedMilliseconds
        }
    }

    public var elapsedSeconds = 0.0
    /// Requests this process finished: answered (the cache included), failed for good.
    public var succeeded = 0
    public var failed = 0
    public var cached = 0
    /// Known cost of this process's answers; `unpriced` answers have no price.
    public var costUSD = 0.0
    public var unpriced = 0
    public var tokens = 0
    /// Over the last few seconds.
    public var requestsPerSecond = 0.0
    public var tokensPerSecond = 0.0
    public var inFlight = 0
    /// In the jobs worked on, by every worker: requests in the job(s), finished
    /// (done, failed or cancelled) and still to do (queued or running).
    public var total = 0
    public var finished = 0
    public var remaining = 0
    public var lanes: [LaneFigures] = []

    public init() {}

    /// Seconds until `remaining` is done at the current rate (nil: no rate yet).
    public var etaSeconds: Double? {
        requestsPerSecond > 0 ? Double(remaining) / requestsPerSecond : nil
    }

    public var json: JSONValue {
        .object([
            "elapsed_s": .number(elapsedSeconds.rounded()),
            "succeeded": .int(Int64(succeeded)), "failed": .int(Int64(failed)), "cached": .int(Int64(cached)),
            "cost_usd": .number(costUSD), "unpriced": .int(Int64(unpriced)), "tokens": .int(Int64(tokens)),
            "requests_per_s": .number((requestsPerSecond * 10).rounded() / 10),
            "tokens_per_s": .number(tokensPerSecond.rounded()),
            "in_flight": .int(Int64(inFlight)), "total": .int(Int64(total)), "finished": .int(Int64(finished)),
            "remaining": .int(Int64(remaining)),
            "lanes": .array(
                lanes.map {
                    .object([
                        "name": .string($0.name), "window": .int(Int64($0.window)),
                        "in_flight": .int(Int64($0.inFlight)), "rate_limited": .int(Int64($0.rateLimited)),
                        "paused_ms": .int($0.pausedMilliseconds),
                    ])
                }),
        ])
    }

    /// From `json` (as a worker recorded it); nil if it is not that shape.
    public init?(json: JSONValue) {
        guard case .object(let object) = json else { return nil }
        func int(_ key: String) -> Int { object[key]?.intValue.map { Int($0) } ?? 0 }
        func double(_ key: String) -> Double { object[key]?.doubleValue ?? 0 }
        elapsedSeconds = double("elapsed_s")
        succeeded = int("succeeded")
        failed = int("failed")
        cached = int("cached")
        costUSD = double("cost_usd")
        unpriced = int("unpriced")
        tokens = int("tokens")
        requestsPerSecond = double("requests_per_s")
        tokensPerSecond = double("tokens_per_s")
        inFlight = int("in_flight")
        total = int("total")
        finished = int("finished")
        remaining = int("remaining")
        if case .array(let list)? = object["lanes"] {
            lanes = list.compactMap { item in
                guard case .object(let lane) = item, let name = lane["name"]?.stringValue else { return nil }
                return LaneFigures(
                    name: name, window: Int(lane["window"]?.intValue ?? 0),
                    inFlight: Int(lane["in_flight"]?.intValue ?? 0),
                    rateLimited: Int(lane["rate_limited"]?.intValue ?? 0),
                    pausedMilliseconds: lane["paused_ms"]?.intValue ?? 0)
            }
        }
    }
}

/// Rates over a sliding window of samples.
struct RateMeter {
    private var samples: [(time: Double, requests: Int, tokens: Int)] = []
    let span: Double

    init(spanSeconds: Double = 10) { span = spanSeconds }

    /// Adds a sample (seconds, running totals) and returns the rates since the
    /// oldest sample still inside the span.
    mutating func record(time: Double, requests: Int, tokens: Int) -> (requests: Double, tokens: Double) {
        samples.append((time, requests, tokens))
        while samples.count > 2, time - samples[1].time >= span { samples.removeFirst() }
        guard let first = samples.first, time - first.time > 0 else { return (0, 0) }
        let seconds = time - first.time
        return (Double(requests - first.requests) / seconds, Double(tokens - first.tokens) / seconds)
    }
}
