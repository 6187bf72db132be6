import LLMQCore
import MockProvider
import Testing

/// The server's own HTTP/1.1 parsing and framing, seen from a raw socket.
@Suite struct HTTPFramingTests {
    @Test func chunkedRequestBodiesAreAccepted() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let body = Array(chatBody("chunked").utf8)
            var bytes = Array(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nAUTHORIZATION:  Bearer k \r\nTransfer-Encoding: chunked\r\n\r\n"
                    .utf8)
            // A chunk extension on the first chunk and a trailer field at the end.
            for (position, piece) in [body[..<10], body[10...]].enumerated() {
                bytes += Array((String(piece.count, radix: 16) + (position == 0 ? ";ext=1" : "")).utf8) + [13, 10]
                bytes += piece + [13, 10]
            }
            bytes += Array("0\r\nTrailer: x\r\n\r\n".utf8)
            try connection.send(bytes)
            let json = try connection.readResponse().json()
            #expect(
                json["choices"]?[0]?["message"]?["content"]
                    == .string(MockReplies.text(for: [.init(role: "user", content: "chunked")])))
        }
    }

    @Test func requestsSplitIntoSingleBytesStillParse() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let bytes = RawHTTPConnection.requestBytes(path: "/v1/chat/completions", body: chatBody("slow"))
            for byte in bytes { try connection.send([byte]) }
            #expect(try connection.readResponse().status == 200)
        }
    }

    @Test func http10KeepAliveIsAnsweredInKind() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let body = chatBody()
            let request =
                "POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer k\r\nconnection: keep-alive\r\n"
                + "content-length: \(body.utf8.count)\r\n\r\n\(body)"
            try connection.send(Array(request.utf8))
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("connection") == "keep-alive")
            #expect(try connection.request(body: chatBody()).status == 200)
        }
    }

    @Test func http10StreamsRunToTheConnectionsClose() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let body = chatBody(extra: ",\"stream\":true")
            let request =
                "POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer k\r\nconnection: keep-alive\r\n"
                + "content-length: \(body.utf8.count)\r\n\r\n\(body)"
            try connection.send(Array(request.utf8))
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("transfer-encoding") == nil)
            #expect(response.header("connection") == "close")
            #expect(response.events.last == "[DONE]")
        }
    }

    @Test func expectContinueGets100BeforeTheBody() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            let body = chatBody()
            try connection.send(
                Array(
                    ("POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer k\r\nexpect: 100-continue\r\n"
                        + "content-length: \(body.utf8.count)\r\n\r\n").utf8))
            #expect(try connection.readResponse().status == 100)
            try connection.send(Array(body.utf8))
            #expect(try connection.readResponse().status == 200)
        }
    }

    @Test(arguments: [
        "NOT HTTP\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET /\r\n\r\n", "POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    func malformedRequestsGet400AndAClose(_ request: String) async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            try connection.send(Array(request.utf8))
            let response = try connection.readResponse()
            #expect(response.status == 400)
            #expect(response.header("connection") == "close")
            #expect(try connection.readToEnd().isEmpty)
        }
    }

    @Test(arguments: [false, true])
    func bodiesOverTheLimitGet413(chunked: Bool) async throws {
        try await withMockServer({ $0.maximumBodyBytes = 100 }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let framing = chunked ? "transfer-encoding: chunked\r\n\r\n65\r\n" : "content-length: 101\r\n\r\n"
            try connection.send(
                Array(("POST /v1/chat/completions HTTP/1.1\r\n" + framing + String(repeating: "x", count: 101)).utf8))
            let response = try connection.readResponse()
            #expect(response.status == 413)
            #expect(response.header("connection") == "close")
            #expect(try errorObject(response)["message"]?.stringValue?.contains("100 bytes") == true)
        }
    }

    @Test func requestsArrivingTogetherAreAnsweredInOrderWithTheirQueries() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            try connection.send(
                RawHTTPConnection.requestBytes(path: "/v1/chat/completions?api-version=1", body: chatBody("one"))
                    + RawHTTPConnection.requestBytes(method: "GET", path: "/v1/models?limit=2")
                    + RawHTTPConnection.requestBytes(path: "/v1/chat/completions", body: chatBody("two")))
            let first = try connection.readResponse().json()
            #expect(
                first["choices"]?[0]?["message"]?["content"]
                    == .string(MockReplies.text(for: [.init(role: "user", content: "one")])))
            #expect(try connection.readResponse().json()["object"] == .string("list"))
            let third = try connection.readResponse().json()
            #expect(
                third["choices"]?[0]?["message"]?["content"]
                    == .string(MockReplies.text(for: [.init(role: "user", content: "two")])))
        }
    }
}
