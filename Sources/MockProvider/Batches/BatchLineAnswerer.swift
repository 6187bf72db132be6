import LLMQCore
import NIOCore
import NIOHTTP1

/// Answers the requests of a batch through the online endpoints: each one is routed as
/// a request on the wire would be, with the headers of the call that created the batch,
/// and goes through its surface's own validation and rendering, so a batch line gets
/// the very body a synchronous call gets (a validation error included).
///
/// Rate limits, faults and latency do not apply: batches have their own pool. The
/// `failingLines` knob replaces a successful answer with the surface's 500 answer.
enum BatchLineAnswerer {
    enum Answer {
        /// The online answer's status and body.
        case answered(status: Int, body: [UInt8])
        /// The request asked for a stream, which a batch cannot give; the batch
        /// surface answers it with its provider's error.
        case streamRequested
    }

    /// The online answer to `POST target` with `body`, sent with `headers`.
    static func answer(
        target: String, headers: MockHeaders, body: [UInt8], failing: Bool, context: inout MockRequestContext
    ) -> Answer {
        let request = MockRequest(
            method: .POST, target: target, version: .http1_1, keepAlive: true, headers: headers,
            body: ByteBuffer(bytes: body))
        let server = context.server
        guard let route = server.router.route(request) else {
            return flatten(server.fallback.notFound(request, context: &context))
        }
        switch route.surface.prepare(request, endpoint: route.endpoint, context: &context) {
        case .respond(let response):
            return flatten(response)
        case .call(let call):
            if call.isStream { return .streamRequested }
            if failing {
                let surface = call.surface ?? route.surface
                return flatten(surface.serverFault(.serverError, call: call, context: &context))
            }
            return flatten(call.render(nil, &context))
        }
    }

    private static func flatten(_ response: MockResponse) -> Answer {
        switch response.body {
        case .full(let bytes):
            return .answered(status: Int(response.status.code), body: bytes)
        case .stream(let frames):
            return .answered(status: Int(response.status.code), body: frames.flatMap(\.bytes))
        }
    }

    /// A fresh context for one line: its own request id and generator.
    static func lineContext(_ context: inout MockRequestContext) -> MockRequestContext {
        var generator = SplitMix64(seed: context.generator.next())
        let requestID = MockRequestContext.makeRequestID(from: &generator)
        return MockRequestContext(
            server: context.server, requestID: requestID, unixTime: context.unixTime, generator: generator)
    }

    /// The run order of a batch's lines: a shuffle seeded by the batch id.
    static func runOrder(count: Int, id: String, seed: UInt64) -> [Int] {
        var indices = Array(0..<count)
        var hash = FNV1a()
        hash.combine(id)
        var generator = SplitMix64(seed: hash.value ^ seed)
        indices.shuffle(using: &generator)
        return indices
    }
}

extension JSONValue {
    /// The value as compact JSON, object members in the order they came in (the
    /// canonical form sorts them, which would reorder a schema's properties).
    var compactBytes: [UInt8] {
        Array(StructuredReply.encode(self).utf8)
    }
}
