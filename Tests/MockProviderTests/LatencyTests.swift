import MockProvider
import Testing

/// Latency knobs add at least what they say. Only lower bounds are checked: a busy
/// machine may add more.
@Suite struct LatencyTests {
    func elapsed(_ body: () throws -> Void) rethrows -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        return clock.now - start
    }

    @Test func fixedLatencyDelaysTheAnswer() async throws {
        try await withMockServer({ $0.latency = .init(fixed: .milliseconds(150)) }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let took = try elapsed {
                let response = try connection.request(body: chatBody())
                #expect(response.status == 200)
            }
            #expect(took >= .milliseconds(150))
        }
    }

    @Test func jitterAddsUpToItsAmountOnTopOfTheFixedPart() async throws {
        try await withMockServer({ $0.latency = .init(fixed: .milliseconds(50), jitter: .milliseconds(50)) }) {
            server in
            let connection = try RawHTTPConnection(port: server.port)
            let took = try elapsed {
                let response = try connection.request(body: chatBody())
                #expect(response.status == 200)
            }
            #expect(took >= .milliseconds(50))
        }
    }

    @Test func perTokenLatencyPacesStreamsAndDelaysWholeAnswers() async throws {
        try await withMockServer({
            $0.replyTokens = 5
            $0.latency = .init(perToken: .milliseconds(40))
        }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            let streamed = try elapsed {
                let response = try connection.request(body: chatBody(extra: ",\"stream\":true"))
                #expect(response.events.last == "[DONE]")
            }
            #expect(streamed >= .milliseconds(200))
            let whole = try elapsed {
                let response = try connection.request(body: chatBody())
                #expect(response.status == 200)
            }
            #expect(whole >= .milliseconds(200))
        }
    }

    @Test func errorsAndRateLimitsAreNotDelayed() async throws {
        // A 10-second latency would time the test out if 4xx answers waited for it.
        try await withMockServer({ $0.latency = .init(fixed: .seconds(10)) }) { server in
            let connection = try RawHTTPConnection(port: server.port, readTimeout: .seconds(5))
            #expect(try connection.request(body: "{}").status == 400)
        }
    }
}
