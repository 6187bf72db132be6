import LLMQCore
import MockProvider
import Testing

@Suite struct FaultTests {
    @Test func serverErrorFractionOneAnswers500() async throws {
        try await withMockServer({ $0.faults = .init(serverErrors: 1) }) { server in
            let response = try RawHTTPConnection(port: server.port).request(body: chatBody())
            #expect(response.status == 500)
            let error = try errorObject(response)
            #expect(error["type"] == .string("server_error"))
            #expect(error["code"] == .null)
            #expect(server.stats.faults[.serverError] == 1)
            #expect(server.stats.count("POST /v1/chat/completions", status: 500) == 1)
        }
    }

    @Test func overloadedFractionOneAnswers503() async throws {
        try await withMockServer({ $0.faults = .init(overloaded: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(body: chatBody(extra: ",\"stream\":true"))
            #expect(response.status == 503)
            #expect(try errorObject(response)["message"]?.stringValue?.contains("overloaded") == true)
            // The connection stays usable after an error answer.
            #expect(try connection.request(body: chatBody()).status == 503)
            #expect(server.stats.faults[.overloaded] == 2)
        }
    }

    @Test func validationComesBeforeFaults() async throws {
        try await withMockServer({ $0.faults = .init(serverErrors: 1) }) { server in
            let response = try RawHTTPConnection(port: server.port).request(body: "{}")
            #expect(response.status == 400)
            #expect(server.stats.totalFaults == 0)
        }
    }

    @Test func resetCutsTheBodyAndResetsTheConnection() async throws {
        try await withMockServer({ $0.faults = .init(resets: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let failure = try #require(throws: RawHTTPConnection.Failure.self) {
                try connection.request(body: chatBody())
            }
            // Linux drops unread bytes when a reset arrives, so the client sees the reset
            // itself rather than half a body.
            guard case .reset = failure else {
                Issue.record("expected a reset, got \(failure)")
                return
            }
            #expect(server.stats.faults[.connectionReset] == 1)
            #expect(try await eventually { server.stats.inFlight == 0 })
        }
    }

    @Test func resetMidStreamResetsAfterSomeFrames() async throws {
        try await withMockServer({ $0.faults = .init(resets: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            #expect(throws: RawHTTPConnection.Failure.self) {
                _ = try connection.request(body: chatBody(extra: ",\"stream\":true"))
            }
        }
    }

    @Test func truncatedBodyHasAMatchingContentLengthButBrokenJSON() async throws {
        try await withMockServer({ $0.faults = .init(truncatedBodies: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(body: chatBody())
            #expect(response.status == 200)
            #expect(response.header("content-length") == String(response.body.count))
            #expect(response.text.hasPrefix("{\"id\":\"chatcmpl-"))
            #expect(throws: JSONParser.Error.self) { try response.json() }
            // The answer was complete at the HTTP level: the connection is still good.
            #expect(try connection.request(body: chatBody()).status == 200)
            #expect(server.stats.faults[.truncatedBody] == 2)
        }
    }

    @Test func truncatedStreamEndsWithoutDoneAndWithACutFrame() async throws {
        try await withMockServer({ $0.faults = .init(truncatedBodies: 1) }) { server in
            let response = try RawHTTPConnection(port: server.port).request(body: chatBody(extra: ",\"stream\":true"))
            #expect(response.status == 200)
            let events = response.events
            #expect(!events.contains("[DONE]"))
            let last = try #require(events.last)
            #expect(throws: JSONParser.Error.self) { try JSONParser.parse(last) }
            #expect(events.dropLast().allSatisfy { (try? JSONParser.parse($0)) != nil })
        }
    }

    @Test func stallSendsHalfTheBodyThenNothingWhileTheConnectionStaysOpen() async throws {
        try await withMockServer({ $0.faults = .init(stalls: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port, readTimeout: .seconds(1))
            let failure = try #require(throws: RawHTTPConnection.Failure.self) {
                try connection.request(body: chatBody())
            }
            guard case .timedOut(let partial) = failure else {
                Issue.record("expected a stall, got \(failure)")
                return
            }
            let text = String(decoding: partial, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK"))
            #expect(text.contains("{\"id\":\"chatcmpl-"))
            #expect(server.stats.inFlight == 1)
            #expect(server.stats.faults[.stall] == 1)
        }
    }

    @Test func stalledStreamSendsSomeFramesThenStops() async throws {
        try await withMockServer({ $0.faults = .init(stalls: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port, readTimeout: .seconds(1))
            let failure = try #require(throws: RawHTTPConnection.Failure.self) {
                try connection.request(body: chatBody(extra: ",\"stream\":true"))
            }
            guard case .timedOut(let partial) = failure else {
                Issue.record("expected a stall, got \(failure)")
                return
            }
            let text = String(decoding: partial, as: UTF8.self)
            #expect(text.contains("text/event-stream"))
            #expect(text.contains("data: {\"id\":\"chatcmpl-"))
            #expect(!text.contains("[DONE]"))
            #expect(server.stats.inFlight == 1)
        }
        // Shutting down closed the stalled connection: `withMockServer` returned.
    }

    @Test func stalledCallLeavesFlightWhenTheClientHangsUp() async throws {
        try await withMockServer({ $0.faults = .init(stalls: 1) }) { server in
            do {
                let connection = try RawHTTPConnection(port: server.port, readTimeout: .seconds(1))
                #expect(throws: RawHTTPConnection.Failure.self) { try connection.request(body: chatBody()) }
                #expect(server.stats.inFlight == 1)
            }
            #expect(try await eventually { server.stats.inFlight == 0 })
        }
    }

    @Test func streamErrorSendsAnErrorEventAfterSomeFrames() async throws {
        try await withMockServer({ $0.faults = .init(streamErrors: 1) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let response = try connection.request(body: chatBody(extra: ",\"stream\":true"))
            #expect(response.status == 200)
            let events = response.events
            #expect(events.count > 1)
            #expect(!events.contains("[DONE]"))
            let last = try JSONParser.parse(try #require(events.last))
            #expect(last["error"]?.objectValue?.keys == ["message", "type", "param", "code"])
            #expect(last["error"]?["type"] == .string("server_error"))
            // Non-streamed answers are left alone by this fault.
            #expect(try connection.request(body: chatBody()).status == 200)
            #expect(server.stats.faults[.streamError] == 1)
        }
    }

    @Test func faultChoicesRepeatForTheSameSeed() async throws {
        func statuses(seed: UInt64) async throws -> [Int] {
            var result: [Int] = []
            try await withMockServer({
                $0.faults = .init(serverErrors: 0.3, overloaded: 0.3)
                $0.seed = seed
            }) { server in
                let connection = try RawHTTPConnection(port: server.port)
                for _ in 0..<40 { result.append(try connection.request(body: chatBody()).status) }
            }
            return result
        }
        let first = try await statuses(seed: 11)
        #expect(try await statuses(seed: 11) == first)
        #expect(try await statuses(seed: 12) != first)
        #expect(Set(first) == [200, 500, 503])
    }
}
