import LLMQTransport
import Testing

@Suite struct StreamingTests {
    let transport = CurlTransport()

    @Test func headArrivesBeforeTheBodyIsComplete() async throws {
        let gate = Gate()
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Transfer-Encoding", "chunked"), ("X-Stream", "yes")]),
                .chunk("first "), .wait(gate), .chunk("second"), .lastChunk,
            ]
        }
        // Returns while the server is still blocked on the gate.
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        #expect(response.status == 200)
        #expect(response.headers["x-stream"] == "yes")
        var iterator = response.body.makeAsyncIterator()
        let first = try await iterator.next()
        #expect(first == Array("first ".utf8))
        gate.open()
        var rest: [UInt8] = []
        while let chunk = try await iterator.next() { rest += chunk }
        #expect(rest == Array("second".utf8))
        #expect(transport.activeRequestCount == 0)
    }

    @Test func streamedErrorStatusStillStreams() async throws {
        let server = try ScriptedServer { _ in [.response(status: 429, text: "slow down")] }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        #expect(response.status == 429)
        #expect(try await response.body.collect() == Array("slow down".utf8))
    }

    @Test func responseWithoutBodyEndsTheStream() async throws {
        let server = try ScriptedServer { _ in [.response(status: 204)] }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        #expect(response.status == 204)
        #expect(try await response.body.collect().isEmpty)
    }

    @Test func slowReaderGetsEveryByteInOrder() async throws {
        let size = 4 << 20
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 12) }
        let server = try ScriptedServer { _ in [.response(body: payload)] }
        let response = try await transport.stream(
            HTTPRequest(url: server.baseURL), options: HTTPRequestOptions(streamBufferLimit: 8 << 10))
        var received: [UInt8] = []
        received.reserveCapacity(size)
        var chunks = 0
        for try await chunk in response.body {
            received += chunk
            chunks += 1
            if chunks % 32 == 0 { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(received == payload)
    }

    @Test func collectEnforcesItsLimit() async throws {
        let server = try ScriptedServer { _ in [.response(body: [UInt8](repeating: 1, count: 100_000))] }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        await #expect(throws: TransportError.self) { try await response.body.collect(upTo: 1000) }
        #expect(await eventually { transport.activeRequestCount == 0 })
    }

    @Test func serverSentEventsRoundTrip() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]),
                .chunk(": keep-alive comment\r\n\r\nevent: message_start\r\ndata: {\"type\":"),
                .pause(.milliseconds(30)),
                .chunk("\"message_start\"}\r"), .pause(.milliseconds(30)),
                .chunk("\n\r\nid: 7\nretry: 2500\ndata: line one\n"),
                .chunk("data: line two\n\ndata"), .pause(.milliseconds(30)), .chunk(": [DONE]\r\r"), .lastChunk,
            ]
        }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        var iterator = response.serverSentEvents.makeAsyncIterator()
        var events: [SSEEvent] = []
        while let event = try await iterator.next() { events.append(event) }
        #expect(
            events == [
                SSEEvent(type: "message_start", data: #"{"type":"message_start"}"#),
                SSEEvent(data: "line one\nline two", id: "7"),
                SSEEvent(data: "[DONE]", id: "7"),
            ])
        #expect(iterator.parser.retry == 2500)
    }

    @Test func resetMidStreamThrowsFromTheBody() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Transfer-Encoding", "chunked")]), .chunk("data: 1\n\n"),
                .pause(.milliseconds(100)), .reset,
            ]
        }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        var iterator = response.serverSentEvents.makeAsyncIterator()
        #expect(try await iterator.next()?.data == "1")
        let error = await #expect(throws: TransportError.self) { _ = try await iterator.next() }
        guard case .connectionClosed(let status, _)? = error else {
            Issue.record("expected connectionClosed, got \(String(describing: error))")
            return
        }
        #expect(status == 200)
    }

    @Test func droppingAnUnreadBodyAbortsTheTransfer() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Transfer-Encoding", "chunked")]), .chunk("some"), .stall]
        }
        var response: HTTPStreamingResponse? = try await transport.stream(HTTPRequest(url: server.baseURL))
        #expect(response?.status == 200)
        #expect(transport.activeRequestCount == 1)
        response = nil
        #expect(await eventually { server.connectionsClosedByClient == 1 })
        #expect(await eventually { transport.activeRequestCount == 0 })
    }
}
