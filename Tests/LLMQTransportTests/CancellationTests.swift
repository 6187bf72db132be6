import LLMQTransport
import Testing

@Suite struct CancellationTests {
    let transport = CurlTransport()

    @Test func cancellingAWaitingSendRemovesItsHandle() async throws {
        let server = try ScriptedServer { _ in [.stall] }
        let task = Task { try await transport.send(HTTPRequest(url: server.baseURL)) }
        #expect(await eventually { server.receivedRequests.count == 1 })
        #expect(transport.activeRequestCount == 1)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.activeRequestCount == 0)
        // The connection was closed, not left open and idle.
        #expect(await eventually { server.connectionsClosedByClient == 1 })
    }

    @Test func anAlreadyCancelledTaskSendsNothing() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        let task = Task {
            while !Task.isCancelled { await Task.yield() }
            return try await transport.send(HTTPRequest(url: server.baseURL))
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.activeRequestCount == 0)
        #expect(server.receivedRequests.isEmpty)
    }

    @Test func cancellingWhileWaitingForAStreamHead() async throws {
        let server = try ScriptedServer { _ in [.stall] }
        let task = Task { try await transport.stream(HTTPRequest(url: server.baseURL)) }
        #expect(await eventually { server.receivedRequests.count == 1 })
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.activeRequestCount == 0)
        #expect(await eventually { server.connectionsClosedByClient == 1 })
    }

    @Test func cancellingAStreamReader() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Transfer-Encoding", "chunked")]), .chunk("data: 1\n\n"), .stall]
        }
        let response = try await transport.stream(HTTPRequest(url: server.baseURL))
        let reader = Task {
            var count = 0
            for try await _ in response.serverSentEvents { count += 1 }
            return count
        }
        #expect(await eventually { server.receivedRequests.count == 1 })
        try await Task.sleep(for: .milliseconds(50))
        reader.cancel()
        await #expect(throws: CancellationError.self) { try await reader.value }
        #expect(await eventually { transport.activeRequestCount == 0 })
        #expect(await eventually { server.connectionsClosedByClient == 1 })
    }

    @Test func manyCancellationsLeaveNoHandleBehind() async throws {
        let server = try ScriptedServer { _ in [.stall] }
        let tasks = (0..<100).map { _ in Task { try await transport.send(HTTPRequest(url: server.baseURL)) } }
        #expect(await eventually { server.receivedRequests.count == 100 })
        for task in tasks { task.cancel() }
        for task in tasks {
            await #expect(throws: CancellationError.self) { try await task.value }
        }
        #expect(transport.activeRequestCount == 0)
        #expect(await eventually { server.connectionsClosedByClient == 100 })
        // The transport still works afterwards.
        let other = try ScriptedServer { _ in [.response(text: "ok")] }
        #expect(try await transport.send(HTTPRequest(url: other.baseURL)).bodyText == "ok")
    }
}
