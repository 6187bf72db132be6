import LLMQTransport
import Testing

@Suite struct RoundTripTests {
    let transport = CurlTransport()

    @Test func returnsStatusHeadersAndBody() async throws {
        let server = try ScriptedServer { _ in
            [
                .response(
                    status: 201, headers: [("X-Single", "one"), ("x-multi", "a"), ("X-Multi", "b")], text: "hello")
            ]
        }
        let response = try await transport.send(HTTPRequest(url: server.baseURL + "/greeting"))
        #expect(response.status == 201)
        #expect(response.version == .http1_1)
        #expect(response.bodyText == "hello")
        #expect(response.headers["x-single"] == "one")
        #expect(response.headers["X-SINGLE"] == "one")
        #expect(response.headers.values(for: "X-Multi") == ["a", "b"])
        #expect(response.headers["content-length"] == "5")
        #expect(response.headers["missing"] == nil)
        #expect(server.receivedRequests.first?.path == "/greeting")
        #expect(server.receivedRequests.first?.method == "GET")
    }

    @Test(arguments: [HTTPMethod.post, .put, .patch, .delete])
    func sendsMethodHeadersAndBody(method: HTTPMethod) async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        let body = Array(#"{"model":"m","messages":[]}"#.utf8)
        let request = HTTPRequest(
            method: method, url: server.baseURL + "/v1/chat/completions?x=1",
            headers: ["Content-Type": "application/json", "Authorization": "Bearer sk-test", "X-Empty": ""],
            body: body)
        let response = try await transport.send(request)
        #expect(response.status == 200)
        let received = try #require(server.receivedRequests.first)
        #expect(received.method == method.rawValue)
        #expect(received.path == "/v1/chat/completions?x=1")
        #expect(received.body == body)
        #expect(received.headers["content-type"] == "application/json")
        #expect(received.headers["authorization"] == "Bearer sk-test")
        #expect(received.headers.contains("X-Empty"))
        #expect(received.headers["expect"] == nil)
    }

    @Test func bodyWithoutContentTypeIsNotLabelledAsAForm() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        _ = try await transport.send(HTTPRequest(method: .post, url: server.baseURL, body: [1, 2, 3]))
        let received = try #require(server.receivedRequests.first)
        #expect(received.headers["content-type"] == nil)
        #expect(received.body == [1, 2, 3])
    }

    @Test func emptyPostSendsContentLengthZero() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        _ = try await transport.send(HTTPRequest(method: .post, url: server.baseURL))
        let received = try #require(server.receivedRequests.first)
        #expect(received.method == "POST")
        #expect(received.headers["content-length"] == "0")
    }

    @Test func largeBodiesBothWays() async throws {
        let server = try ScriptedServer { request in [.response(body: request.body.reversed())] }
        let body = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 10) }
        let response = try await transport.send(HTTPRequest(method: .post, url: server.baseURL, body: body))
        #expect(response.body.count == body.count)
        #expect(response.body == body.reversed())
    }

    @Test func manyConcurrentRequestsGetTheirOwnResponses() async throws {
        let server = try ScriptedServer { request in [.response(body: request.body + Array(" done".utf8))] }
        let mismatches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let body = Array("request \(index)".utf8)
                    let response = try await transport.send(
                        HTTPRequest(method: .post, url: server.baseURL, body: body))
                    return response.body == body + Array(" done".utf8)
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 0 : 1) }
        }
        #expect(mismatches == 0)
        #expect(server.receivedRequests.count == 500)
        #expect(transport.activeRequestCount == 0)
    }

    @Test func errorStatusesAreResponsesNotErrors() async throws {
        let server = try ScriptedServer { _ in
            [.response(status: 503, headers: [("Retry-After", "2")], text: #"{"error":"prompt was: secret"}"#)]
        }
        let response = try await transport.send(HTTPRequest(url: server.baseURL))
        #expect(response.status == 503)
        #expect(!response.isSuccess)
        #expect(response.headers["retry-after"] == "2")
        let error = #expect(throws: HTTPStatusError.self) { try response.requireSuccess() }
        #expect(error?.status == 503)
        #expect(error?.description == "HTTP status 503")
    }

    @Test func interimResponsesAreSkipped() async throws {
        let server = try ScriptedServer { _ in
            [
                .send(Array("HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n".utf8)),
                .response(status: 200, headers: [("X-Final", "yes")], text: "final"),
            ]
        }
        let response = try await transport.send(HTTPRequest(method: .post, url: server.baseURL, body: [1]))
        #expect(response.status == 200)
        #expect(response.headers["x-final"] == "yes")
        #expect(response.headers["x-interim"] == nil)
        #expect(response.bodyText == "final")
    }

    @Test func headRequestHasNoBody() async throws {
        let server = try ScriptedServer { _ in
            [.head(status: 200, headers: [("Content-Length", "1000")])]
        }
        let response = try await transport.send(HTTPRequest(method: .head, url: server.baseURL))
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(server.receivedRequests.first?.method == "HEAD")
    }

    @Test func chunkedResponseIsReassembled() async throws {
        let server = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Transfer-Encoding", "chunked")]), .chunk("hel"),
                .pause(.milliseconds(50)), .chunk("lo "), .chunk("world"), .lastChunk,
            ]
        }
        let response = try await transport.send(HTTPRequest(url: server.baseURL))
        #expect(response.bodyText == "hello world")
    }
}
