import NIOCore
import NIOHTTP1

/// One provider API the fake server speaks (OpenAI and Together chat completions,
/// Anthropic messages, Gemini generateContent, and each one's batch API): it
/// recognises its paths, validates requests, and shapes replies and errors the way
/// that provider does.
///
/// The shared machinery (limits, faults, latency, stats, streaming) lives in the
/// connection handler; a surface only turns requests into answers.
protocol MockSurface: Sendable {
    /// Names of the surface's endpoints for stats (`"POST /v1/chat/completions"`),
    /// indexed by the values `match` returns.
    var endpointNames: [String] { get }

    /// The index of the endpoint serving `method` and `path`, or nil.
    func match(method: HTTPMethod, path: Substring) -> Int?

    /// The index of the endpoint serving `request`, or nil. By default the method and
    /// path decide; a surface sharing paths with another one (Gemini's `/v1/batches`
    /// and `/v1/files` beside OpenAI's) also looks at the credential.
    func match(_ request: MockRequest) -> Int?

    /// Validates a request and either answers at once (errors, control endpoints) or
    /// returns a provider call, which goes through limits, faults and latency.
    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation

    /// The provider's 429 answer.
    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse

    /// The provider's answer for an injected `.serverError` (500) or `.overloaded` (503).
    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse

    /// The frame a stream carries when it fails midway (`.streamError`).
    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8]
}

extension MockSurface {
    func match(_ request: MockRequest) -> Int? {
        match(method: request.method, path: request.path)
    }
}

/// A request as a surface sees it: complete, body included.
struct MockRequest {
    var method: HTTPMethod
    /// The request target as sent (path and query).
    var target: String
    /// The path without the query.
    var path: Substring
    /// The query after `?`, if any.
    var query: Substring?
    var version: HTTPVersion
    /// Whether the connection stays open after the answer (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    var keepAlive: Bool
    var headers: MockHeaders
    var body: ByteBuffer

    init(
        method: HTTPMethod, target: String, version: HTTPVersion, keepAlive: Bool, headers: MockHeaders,
        body: ByteBuffer
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.keepAlive = keepAlive
        self.headers = headers
        self.body = body
        let uri = Substring(target)
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = uri[..<mark]
            query = uri[target.utf8.index(after: mark)...]
        } else {
            path = uri
            query = nil
        }
    }
}

/// What a surface needs from the connection to build one answer.
struct MockRequestContext {
    /// The server's shared state (its counters, for the control endpoints).
    let server: MockServerState
    /// This answer's request id (OpenAI's `x-request-id`).
    let requestID: String
    /// The time of the request, in unix seconds (for `created`).
    let unixTime: Int
    /// Draws ids and padding; seeded per connection, so ids never repeat.
    var generator: SplitMix64

    /// Writes a fresh id (`prefix` and `digits` base-62 digits) without making a string.
    mutating func writeID(prefix: StaticString, digits: Int, to buffer: inout ByteWriter) {
        buffer.writeStaticString(prefix)
        Base62.write(digits, from: &generator, to: &buffer)
    }

    /// A fresh id (`prefix` and `digits` base-62 digits).
    mutating func makeID(prefix: StaticString, digits: Int) -> String {
        var buffer = ByteWriter(capacity: prefix.utf8CodeUnitCount + digits)
        writeID(prefix: prefix, digits: digits, to: &buffer)
        return String(decoding: buffer.bytes, as: UTF8.self)
    }

    /// `req_` and 32 hex digits, like OpenAI's request ids.
    static func makeRequestID(from generator: inout SplitMix64) -> String {
        var buffer = ByteWriter(capacity: 36)
        buffer.writeStaticString("req_")
        buffer.writeHexadecimal(generator.next(), minimumDigits: 16)
        buffer.writeHexadecimal(generator.next(), minimumDigits: 16)
        return String(decoding: buffer.bytes, as: UTF8.self)
    }
}

/// A surface's decision about a request.
enum MockPreparation {
    /// Answer at once, without limits, faults or latency.
    case respond(MockResponse)
    /// A provider call: the handler applies limits, faults and latency, then renders it.
    case call(MockCall)
}

/// A validated provider call, waiting for the limits to let it through.
struct MockCall {
    /// The model asked for, for error messages.
    var model: String
    /// Tokens the call takes from the token bucket.
    var tokenCost: Int
    /// Completion tokens, for the per-token latency.
    var completionTokens: Int
    var isStream: Bool
    /// Builds the successful answer; `report` is the limiter's state, for headers.
    var render: (_ report: RateLimiter.Report?, _ context: inout MockRequestContext) -> MockResponse
    /// The surface that shapes this call's 429s, faults and stream errors, when it is
    /// not the one routed to (Together's calls arrive on OpenAI's path).
    var surface: (any MockSurface)? = nil
}

/// Why a call was refused with 429.
enum MockRejection {
    /// The request or token bucket is empty, or the request can never fit.
    case bucket(RateLimiter.Rejection)
    /// Too many calls in flight.
    case concurrency(limit: Int, retryAfterNanoseconds: Int64, report: RateLimiter.Report?)
}

/// An answer, before faults are applied to it.
struct MockResponse {
    /// One SSE frame (or other stream piece) and whether it carries a token, so the
    /// per-token delay comes before it.
    struct Frame {
        var bytes: [UInt8]
        var carriesToken: Bool
    }

    enum Body {
        case full([UInt8])
        case stream([Frame])
    }

    var status: HTTPResponseStatus
    /// Header fields other than the framing ones (`content-length`,
    /// `transfer-encoding`, `connection`), which the handler adds.
    var headers: [(name: String, value: String)]
    var body: Body
}

/// A surface beside a provider's online surface (its batch API, another path to
/// it): 429s, injected faults and stream errors are answered as the online surface
/// answers them. (Batch endpoints make no provider calls, so theirs are never asked
/// for; calls through another path carry the online surface itself.)
protocol MockSurfaceBesideOnline: MockSurface {
    associatedtype Online: MockSurface
    var online: Online { get }
}

extension MockSurfaceBesideOnline {
    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        online.rateLimited(rejection, call: call, context: &context)
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        online.serverFault(fault, call: call, context: &context)
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        online.streamErrorFrame(context: &context)
    }
}
