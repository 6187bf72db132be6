import LLMQTransport
import Testing

@Suite struct ConnectionReuseTests {
    let transport = CurlTransport()

    @Test func sequentialRequestsShareOneConnection() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        for index in 0..<200 {
            let response = try await transport.send(
                HTTPRequest(method: .post, url: server.baseURL, body: Array("\(index)".utf8)))
            #expect(response.status == 200)
        }
        #expect(server.receivedRequests.count == 200)
        #expect(server.acceptedConnections == 1)
    }

    @Test func concurrentRequestsOpenAtMostOneConnectionEach() async throws {
        // A short delay keeps all 64 requests in flight together.
        let server = try ScriptedServer { _ in [.pause(.milliseconds(20)), .response(text: "ok")] }
        for _ in 0..<3 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        let response = try await transport.send(HTTPRequest(url: server.baseURL))
                        #expect(response.status == 200)
                    }
                }
                try await group.waitForAll()
            }
        }
        #expect(server.receivedRequests.count == 192)
        #expect(server.acceptedConnections <= 64)
    }
}
