import LLMQTransport
import Testing

/// HTTP/1.1 and HTTP/2 over TLS against a real nginx the test starts itself.
@Suite struct TLSTests {
    let transport = CurlTransport()

    @Test func http1OverTLSReusesItsConnection() async throws {
        let nginx = try Nginx()
        let options = HTTPRequestOptions(version: .http1_1, caFile: nginx.caFile)
        var connections: Set<String> = []
        for _ in 0..<20 {
            let response = try await transport.send(HTTPRequest(url: nginx.baseURL + "/hello"), options: options)
            #expect(response.status == 200)
            #expect(response.version == .http1_1)
            #expect(response.bodyText == "hello over TLS")
            connections.insert(response.headers["x-connection"] ?? "?")
        }
        #expect(connections.count == 1)
    }

    @Test func http2OverTLSCarriesRequestBodies() async throws {
        let upstream = try ScriptedServer { request in
            [.response(headers: [("Connection", "close")], body: Array("echo: ".utf8) + request.body)]
        }
        let nginx = try Nginx(upstream: upstream.port)
        let body = Array(#"{"messages":[{"role":"user","content":"2+2?"}]}"#.utf8)
        let response = try await transport.send(
            HTTPRequest(
                method: .post, url: nginx.baseURL + "/echo/v1", headers: ["Content-Type": "application/json"],
                body: body),
            options: HTTPRequestOptions(version: .http2, caFile: nginx.caFile))
        #expect(response.status == 200)
        #expect(response.version == .http2)
        #expect(response.body == Array("echo: ".utf8) + body)
        #expect(upstream.receivedRequests.first?.headers["content-type"] == "application/json")
    }

    @Test func http2MultiplexesConcurrentRequestsOnOneConnection() async throws {
        let nginx = try Nginx()
        let options = HTTPRequestOptions(version: .http2, caFile: nginx.caFile)
        let responses = try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    try await transport.send(
                        HTTPRequest(method: .post, url: nginx.baseURL + "/hello"), options: options)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(responses.count == 64)
        #expect(responses.allSatisfy { $0.status == 200 && $0.version == .http2 })
        let connections = Set(responses.map { $0.headers["x-connection"] ?? "?" })
        #expect(connections.count == 1, "64 concurrent HTTP/2 requests used connections \(connections)")
    }

    @Test(arguments: [HTTPVersion.http1_1, .http2])
    func largeBodiesOverTLS(version: HTTPVersion) async throws {
        let nginx = try Nginx(largeFileBytes: 3 << 20)
        let response = try await transport.send(
            HTTPRequest(url: nginx.baseURL + "/large.bin"),
            options: HTTPRequestOptions(version: version, caFile: nginx.caFile))
        #expect(response.status == 200)
        #expect(response.version == version)
        #expect(response.body.count == 3 << 20)
        #expect(response.body.enumerated().allSatisfy { $1 == UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) })
    }

    @Test(arguments: [HTTPVersion.http1_1, .http2])
    func streamedBodyWithBackPressureOverTLS(version: HTTPVersion) async throws {
        let nginx = try Nginx(largeFileBytes: 2 << 20)
        let options = HTTPRequestOptions(version: version, caFile: nginx.caFile, streamBufferLimit: 16 << 10)
        let response = try await transport.stream(HTTPRequest(url: nginx.baseURL + "/large.bin"), options: options)
        #expect(response.version == version)
        var received: [UInt8] = []
        var chunks = 0
        for try await chunk in response.body {
            received += chunk
            chunks += 1
            // A slow reader, so the transfer has to pause and resume.
            if chunks % 16 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(received.count == 2 << 20)
        #expect(received.enumerated().allSatisfy { $1 == UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) })
        #expect(await eventually { transport.activeRequestCount == 0 })
    }

    @Test func serverSentEventsOverHTTP2() async throws {
        let upstream = try ScriptedServer { _ in
            [
                .head(status: 200, headers: [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]),
                .chunk("data: {\"n\":1}\n\n"), .pause(.milliseconds(20)), .chunk("data: {\"n\""),
                .pause(.milliseconds(20)), .chunk(":2}\n\ndata: [DONE]\n\n"), .lastChunk,
            ]
        }
        let nginx = try Nginx(upstream: upstream.port)
        let response = try await transport.stream(
            HTTPRequest(method: .post, url: nginx.baseURL + "/proxy/v1/chat/completions", body: Array("{}".utf8)),
            options: HTTPRequestOptions(version: .http2, caFile: nginx.caFile))
        #expect(response.version == .http2)
        #expect(response.headers["content-type"] == "text/event-stream")
        var data: [String] = []
        for try await event in response.serverSentEvents { data.append(event.data) }
        #expect(data == [#"{"n":1}"#, #"{"n":2}"#, "[DONE]"])
    }

    @Test func untrustedCertificateIsATLSFailure() async throws {
        let nginx = try Nginx()
        let error = await #expect(throws: TransportError.self) {
            try await transport.send(
                HTTPRequest(url: nginx.baseURL + "/hello"), options: HTTPRequestOptions(version: .http2))
        }
        guard case .tlsFailure(let reason)? = error else {
            Issue.record("expected a TLS failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("certificate"))
    }
}
