import NIOCore
import Synchronization

/// What the fake provider has served so far: a snapshot, read in process with
/// `server.stats` or over HTTP with `GET /_mock/stats`.
public struct MockStats: Sendable, Equatable {
    /// Answers by endpoint (`"POST /v1/chat/completions"`, or `"unrouted"` for paths
    /// no surface serves) and HTTP status. A faulted answer counts under the status
    /// it started with (200 for resets, truncations and stalls).
    public var requests: [String: [Int: Int]] = [:]
    /// Provider calls now being answered (from the end of the request to the end of
    /// the answer, or the connection's close). Calls refused by the in-flight cap and
    /// control endpoints are not counted.
    public var inFlight = 0
    /// The most provider calls answered at once since the start or the last reset.
    public var peakInFlight = 0
    /// TCP connections accepted.
    public var connectionsAccepted = 0
    /// Faults injected, by kind.
    public var faults: [MockFault: Int] = [:]
    /// Batches created, by provider (validation failures included: they are created).
    public var batchesCreated: [BatchProvider: Int] = [:]
    /// Files uploaded through the OpenAI, Gemini and Together Files APIs (Together's
    /// when its bytes arrive at the upload URL).
    public var filesUploaded = 0
    /// Requests in each batch created, by the provider's batch id.
    public var batchRequests: [String: Int] = [:]

    public init() {}

    /// Batches created over all providers.
    public var totalBatchesCreated: Int { batchesCreated.values.reduce(0, +) }

    /// Answers with status 429, over all endpoints.
    public var rateLimited: Int { requests.values.reduce(0) { $0 + ($1[429] ?? 0) } }

    /// Answers over all endpoints and statuses.
    public var totalRequests: Int { requests.values.reduce(0) { $0 + $1.values.reduce(0, +) } }

    /// Answers of one endpoint with one status.
    public func count(_ endpoint: String, status: Int) -> Int {
        requests[endpoint]?[status] ?? 0
    }

    /// Faults injected over all kinds.
    public var totalFaults: Int { faults.values.reduce(0, +) }

    /// The JSON form served at `/_mock/stats`:
    /// `{"requests":{"POST /v1/chat/completions":{"200":3}},"rate_limited":0,"in_flight":0,
    /// "peak_in_flight":1,"connections_accepted":1,"faults":{"server_error":0,…},"total_requests":3,
    /// "batches_created":1,"batches_created_by_provider":{"anthropic":0,"gemini":0,"openai":1,"together":0},
    /// "files_uploaded":1,"batch_requests":{"batch_…":2}}`.
    public func json() -> String {
        var buffer = ByteWriter(capacity: 512)
        write(to: &buffer)
        return String(decoding: buffer.bytes, as: UTF8.self)
    }

    func write(to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"requests\":{")
        for (position, endpoint) in requests.keys.sorted().enumerated() {
            if position > 0 { buffer.writeStaticString(",") }
            buffer.writeJSONString(endpoint)
            buffer.writeStaticString(":")
            Self.writeCounts(
                requests[endpoint, default: [:]].sorted(by: { $0.key < $1.key }).map { (String($0.key), $0.value) },
                to: &buffer)
        }
        buffer.writeStaticString("},\"rate_limited\":")
        buffer.writeDecimal(rateLimited)
        buffer.writeStaticString(",\"in_flight\":")
        buffer.writeDecimal(inFlight)
        buffer.writeStaticString(",\"peak_in_flight\":")
        buffer.writeDecimal(peakInFlight)
        buffer.writeStaticString(",\"connections_accepted\":")
        buffer.writeDecimal(connectionsAccepted)
        buffer.writeStaticString(",\"faults\":")
        Self.writeCounts(MockFault.allCases.map { ($0.rawValue, faults[$0] ?? 0) }, to: &buffer)
        buffer.writeStaticString(",\"total_requests\":")
        buffer.writeDecimal(totalRequests)
        buffer.writeStaticString(",\"batches_created\":")
        buffer.writeDecimal(totalBatchesCreated)
        buffer.writeStaticString(",\"batches_created_by_provider\":")
        Self.writeCounts(BatchProvider.allCases.map { ($0.rawValue, batchesCreated[$0] ?? 0) }, to: &buffer)
        buffer.writeStaticString(",\"files_uploaded\":")
        buffer.writeDecimal(filesUploaded)
        buffer.writeStaticString(",\"batch_requests\":")
        Self.writeCounts(batchRequests.keys.sorted().map { ($0, batchRequests[$0] ?? 0) }, to: &buffer)
        buffer.writeStaticString("}")
    }

    /// `{"name":count,…}` in the given order.
    static func writeCounts(_ counts: [(String, Int)], to buffer: inout ByteWriter) {
        buffer.writeStaticString("{")
        for (position, (name, count)) in counts.enumerated() {
            if position > 0 { buffer.writeStaticString(",") }
            buffer.writeJSONString(name)
            buffer.writeStaticString(":")
            buffer.writeDecimal(count)
        }
        buffer.writeStaticString("}")
    }
}

/// Counts what the server does, cheaply from many event loops.
///
/// Counters live in one shard per event loop, each behind its own lock, which only
/// its loop takes on the hot path (a reader takes them all, rarely), so the loops
/// never wait on each other. In-flight counts are shared atomics, since the peak
/// needs a global view.
final class MockStatsRecorder: Sendable {
    final class Shard: Sendable {
        struct Counts {
            /// Keyed by endpoint id << 16 | status.
            var responses: [Int: Int] = [:]
            var connections = 0
            var faults: [MockFault: Int] = [:]
        }

        let counts = Mutex(Counts())

        func recordResponse(endpoint: Int, status: Int) {
            counts.withLock { $0.responses[endpoint << 16 | status, default: 0] += 1 }
        }

        func recordConnection() {
            counts.withLock { $0.connections += 1 }
        }

        func recordFault(_ fault: MockFault) {
            counts.withLock { $0.faults[fault, default: 0] += 1 }
        }
    }

    /// Batch API counters: rare events, so one lock for all loops.
    private struct BatchCounts {
        var created: [BatchProvider: Int] = [:]
        var filesUploaded = 0
        var requests: [String: Int] = [:]
    }

    private let shards: [Shard]
    private let shardByLoop: [ObjectIdentifier: Int]
    private let inFlight = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let batchCounts = Mutex(BatchCounts())

    init(loops: [any EventLoop]) {
        shards = (0..<max(1, loops.count)).map { _ in Shard() }
        var byLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in loops.enumerated() { byLoop[ObjectIdentifier(loop)] = index }
        shardByLoop = byLoop
    }

    /// The shard of the loop a connection lives on.
    func shard(for loop: any EventLoop) -> Shard {
        shards[shardByLoop[ObjectIdentifier(loop)] ?? 0]
    }

    /// Counts a provider call as started unless `cap` calls are already in flight;
    /// false (and nothing counted) when the cap is reached.
    func tryStartCall(cap: Int?) -> Bool {
        var current = inFlight.load(ordering: .relaxed)
        while true {
            if let cap, current >= cap { return false }
            let (exchanged, original) = inFlight.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
        let now = current + 1
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
        return true
    }

    func callEnded() {
        inFlight.wrappingSubtract(1, ordering: .relaxed)
    }

    func recordBatchCreated(_ provider: BatchProvider, id: String, requests: Int) {
        batchCounts.withLock { counts in
            counts.created[provider, default: 0] += 1
            counts.requests[id] = requests
        }
    }

    func recordFileUploaded() {
        batchCounts.withLock { $0.filesUploaded += 1 }
    }

    /// The counters so far; `endpointNames` maps endpoint ids to names (0 is unrouted).
    func snapshot(endpointNames: [String]) -> MockStats {
        var stats = MockStats()
        for shard in shards {
            shard.counts.withLock { counts in
                for (key, count) in counts.responses {
                    let endpoint = key >> 16
                    let name = endpoint > 0 && endpoint < endpointNames.count ? endpointNames[endpoint] : "unrouted"
                    stats.requests[name, default: [:]][key & 0xFFFF, default: 0] += count
                }
                stats.connectionsAccepted += counts.connections
                for (fault, count) in counts.faults { stats.faults[fault, default: 0] += count }
            }
        }
        stats.inFlight = inFlight.load(ordering: .relaxed)
        stats.peakInFlight = peak.load(ordering: .relaxed)
        batchCounts.withLock { counts in
            stats.batchesCreated = counts.created
            stats.filesUploaded = counts.filesUploaded
            stats.batchRequests = counts.requests
        }
        return stats
    }

    /// Zeroes every counter; the peak restarts from the calls now in flight.
    func reset() {
        for shard in shards { shard.counts.withLock { $0 = Shard.Counts() } }
        batchCounts.withLock { $0 = BatchCounts() }
        peak.store(inFlight.load(ordering: .relaxed), ordering: .relaxed)
    }
}
