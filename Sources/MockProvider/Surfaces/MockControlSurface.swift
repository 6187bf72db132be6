import NIOHTTP1

/// The fake server's own endpoints: `GET /_mock/stats` (the counters as JSON) and
/// `POST /_mock/reset` (zero them). They need no key and skip limits and faults.
struct MockControlSurface: MockSurface {
    static let stats = 0
    static let reset = 1

    let endpointNames = ["GET /_mock/stats", "POST /_mock/reset"]

    func match(method: HTTPMethod, path: Substring) -> Int? {
        switch (method, path) {
        case (.GET, "/_mock/stats"): return Self.stats
        case (.POST, "/_mock/reset"): return Self.reset
        default: return nil
        }
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        var body = ByteWriter(capacity: 512)
        if endpoint == Self.reset {
            context.server.stats.reset()
            body.writeStaticString("{\"reset\":true}")
        } else {
            context.server.snapshot().write(to: &body)
        }
        let headers = [(name: "content-type", value: "application/json"), (name: "cache-control", value: "no-store")]
        return .respond(MockResponse(status: .ok, headers: headers, body: .full(body.bytes)))
    }

    // Control endpoints never make provider calls, so these are never asked for.
    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        preconditionFailure("control endpoints are not rate limited")
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        preconditionFailure("control endpoints get no faults")
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        preconditionFailure("control endpoints do not stream")
    }
}
