import LLMQTransport
import Testing

@Suite struct TimeoutTests {
    let transport = CurlTransport()

    @Test func connectTimeout() async throws {
        let blackhole = try Blackhole()
        await #expect(throws: TransportError.timeout(.connect)) {
            try await transport.send(
                HTTPRequest(url: "http://127.0.0.1:\(blackhole.port)/"),
                options: HTTPRequestOptions(connectTimeout: .milliseconds(300), totalTimeout: .seconds(30)))
        }
    }

    @Test func totalTimeout() async throws {
        let server = try ScriptedServer { _ in [.stall] }
        await #expect(throws: TransportError.timeout(.total)) {
            try await transport.send(
                HTTPRequest(url: server.baseURL), options: HTTPRequestOptions(totalTimeout: .milliseconds(300)))
        }
    }

    @Test func totalTimeoutAlsoBoundsASlowBody() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Content-Length", "100")])]
                + Array(repeating: .send([0x61]), count: 1) + [.pause(.seconds(1)), .stall]
        }
        await #expect(throws: TransportError.timeout(.total)) {
            try await transport.send(
                HTTPRequest(url: server.baseURL),
                options: HTTPRequestOptions(totalTimeout: .milliseconds(400), idleTimeout: .seconds(20)))
        }
    }

    @Test func idleTimeout() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Content-Length", "100")]), .send(Array("partial".utf8)), .stall]
        }
        await #expect(throws: TransportError.timeout(.idle)) {
            try await transport.send(
                HTTPRequest(url: server.baseURL),
                options: HTTPRequestOptions(totalTimeout: .seconds(60), idleTimeout: .seconds(1)))
        }
    }

    @Test func idleTimeoutOnAStreamWithNoBodyYet() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]),
                .stall,
            ]
        }
        let response = try await transport.stream(
            HTTPRequest(url: server.baseURL), options: HTTPRequestOptions(idleTimeout: .seconds(1)))
        #expect(response.status == 200)
        await #expect(throws: TransportError.timeout(.idle)) {
            for try await _ in response.body {}
        }
    }

    @Test func idleTimeoutLetsAnActiveStreamRunLonger() async throws {
        var script: [ScriptedServer.Step] = [.head(status: 200, headers: [("Transfer-Encoding", "chunked")])]
        for index in 0..<12 { script += [.chunk("data: \(index)\n\n"), .pause(.milliseconds(250))] }
        script.append(.lastChunk)
        let steps = script
        let server = try ScriptedServer { _ in steps }
        let response = try await transport.stream(
            HTTPRequest(url: server.baseURL), options: HTTPRequestOptions(idleTimeout: .seconds(1)))
        var events = 0
        for try await _ in response.serverSentEvents { events += 1 }
        #expect(events == 12)
    }
}
