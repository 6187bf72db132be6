import LLMQTransport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ErrorMappingTests {
    let transport = CurlTransport()

    @Test func refusedConnection() async throws {
        let (socket, port) = try ScriptedServer.listen(backlog: 1)
        close(socket)  // nothing listens on the port any more
        await #expect(throws: TransportError.connectionRefused(host: "127.0.0.1:\(port)")) {
            try await transport.send(HTTPRequest(url: "http://127.0.0.1:\(port)/v1"))
        }
    }

    @Test func unresolvableHost() async throws {
        // .invalid is reserved: it never resolves (RFC 6761).
        await #expect(throws: TransportError.dnsFailure(host: "llmq-test.invalid")) {
            try await transport.send(HTTPRequest(url: "http://llmq-test.invalid/v1"))
        }
    }

    @Test func resetMidBody() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Content-Length", "100000")]),
                .send([UInt8](repeating: 0x61, count: 1000)), .pause(.milliseconds(200)), .reset,
            ]
        }
        await #expect(throws: TransportError.connectionClosed(status: 200, receivedBytes: 1000)) {
            try await transport.send(HTTPRequest(url: server.baseURL))
        }
    }

    @Test func closedMidBody() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Content-Length", "100000")]),
                .send([UInt8](repeating: 0x61, count: 1000)), .close,
            ]
        }
        await #expect(throws: TransportError.connectionClosed(status: 200, receivedBytes: 1000)) {
            try await transport.send(HTTPRequest(url: server.baseURL))
        }
    }

    @Test func closedBeforeAnyResponse() async throws {
        let server = try ScriptedServer { _ in [.close] }
        await #expect(throws: TransportError.connectionClosed(status: nil, receivedBytes: 0)) {
            try await transport.send(HTTPRequest(method: .post, url: server.baseURL, body: [1]))
        }
    }

    @Test func tlsToAPlainHTTPServer() async throws {
        // Answers the TLS hello with plain HTTP.
        let server = try ScriptedServer(onConnect: [.response(status: 400, text: "not TLS"), .close]) { _ in [] }
        let error = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: "https://127.0.0.1:\(server.port)/"))
        }
        guard case .tlsFailure? = error else {
            Issue.record("expected a TLS failure, got \(String(describing: error))")
            return
        }
    }

    @Test func notHTTPAtAll() async throws {
        let server = try ScriptedServer { _ in [.send(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)), .close] }
        let error = await #expect(throws: TransportError.self) {
            try await transport.send(HTTPRequest(url: server.baseURL))
        }
        guard case .protocolError? = error else {
            Issue.record("expected a protocol error, got \(String(describing: error))")
            return
        }
    }

    @Test(arguments: ["ftp://127.0.0.1/", "/relative", "http://127.0.0.1/\r\nX: y"])
    func invalidURLs(url: String) async throws {
        let error = await #expect(throws: TransportError.self) { try await transport.send(HTTPRequest(url: url)) }
        guard case .invalidRequest? = error else {
            Issue.record("expected invalidRequest, got \(String(describing: error))")
            return
        }
    }

    @Test func headerInjectionIsRejected() async throws {
        await #expect(throws: TransportError.self) {
            try await transport.send(
                HTTPRequest(url: "http://127.0.0.1:1/", headers: ["X-Bad": "a\r\nAuthorization: Bearer stolen"]))
        }
    }

    @Test func descriptionsNeverShowBodiesOrCredentials() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Content-Length", "10")]), .send([1]), .reset]
        }
        let request = HTTPRequest(
            method: .post, url: server.baseURL + "/v1?key=SECRET-QUERY",
            headers: ["Authorization": "Bearer SECRET-KEY", "x-api-key": "SECRET-KEY", "X-Trace": "visible"],
            body: Array("SECRET-PROMPT".utf8))
        let error = await #expect(throws: TransportError.self) { try await transport.send(request) }
        for text in ["\(String(describing: error))", request.description, request.headers.description] {
            #expect(!text.contains("SECRET"), "leaked in: \(text)")
        }
        #expect(request.headers.description.contains("visible"))
        let refused = TransportError.connectionRefused(host: "h")
        #expect(!refused.description.isEmpty)
    }
}
