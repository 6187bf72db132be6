import LLMQCore
import MockProvider
import Testing

@Suite struct StatsTests {
    @Test func countersTrackRequestsByEndpointAndStatus() async throws {
        try await withMockServer({ $0.models = ["gpt-4o-mini"] }) { server in
            let connection = try RawHTTPConnection(port: server.port)
            for _ in 0..<3 { _ = try connection.request(body: chatBody()) }
            _ = try connection.request(body: "{")
            _ = try connection.request(body: chatBody(model: "gpt-unknown"))
            _ = try connection.request(body: chatBody(), headers: [])
            _ = try connection.request(method: "GET", path: "/v1/models")
            _ = try RawHTTPConnection(port: server.port).request(path: "/elsewhere", body: "")

            let stats = server.stats
            #expect(
                stats.requests == [
                    "POST /v1/chat/completions": [200: 3, 400: 1, 401: 1, 404: 1],
                    "GET /v1/models": [200: 1],
                    "unrouted": [404: 1],
                ])
            #expect(stats.totalRequests == 8)
            #expect(stats.connectionsAccepted == 2)
            #expect(stats.peakInFlight == 1)
            #expect(stats.inFlight == 0)
            #expect(stats.rateLimited == 0)
            #expect(stats.totalFaults == 0)
        }
    }

    @Test func statsAreServedAsJSONAndCanBeReset() async throws {
        try await withMockServer { server in
            let connection = try RawHTTPConnection(port: server.port)
            _ = try connection.request(body: chatBody())
            _ = try connection.request(body: chatBody())
            let response = try connection.request(method: "GET", path: "/_mock/stats", headers: [])
            #expect(response.status == 200)
            let json = try response.json()
            #expect(
                json.objectValue?.keys == [
                    "requests", "rate_limited", "in_flight", "peak_in_flight", "connections_accepted", "faults",
                    "total_requests", "batches_created", "batches_created_by_provider", "files_uploaded",
                    "batch_requests",
                ])
            #expect(json["requests"]?["POST /v1/chat/completions"]?["200"] == .int(2))
            #expect(json["total_requests"] == .int(2))
            #expect(json["connections_accepted"] == .int(1))
            #expect(json["peak_in_flight"] == .int(1))
            #expect(json["faults"]?.objectValue?.keys == MockFault.allCases.map(\.rawValue))
            #expect(
                try JSONParser.parse(server.stats.json())["requests"]
                    == json["requests"]?.objectValue.map {
                        var requests = $0
                        requests["GET /_mock/stats"] = .object(["200": .int(1)])
                        return .object(requests)
                    })

            #expect(try connection.request(path: "/_mock/reset", headers: []).status == 200)
            #expect(server.stats.totalRequests == 1)  // the reset's own answer
            #expect(server.stats.count("POST /_mock/reset", status: 200) == 1)
            server.resetStats()
            #expect(server.stats == MockStats())
        }
    }

    @Test func peakInFlightSeesConcurrentCalls() async throws {
        try await withMockServer({ $0.faults = .init(stalls: 1) }) { server in
            let connections = try (0..<3).map { _ in try RawHTTPConnection(port: server.port) }
            for connection in connections {
                try connection.send(RawHTTPConnection.requestBytes(path: "/v1/chat/completions", body: chatBody()))
            }
            #expect(try await eventually { server.stats.inFlight == 3 })
            #expect(server.stats.peakInFlight == 3)
            #expect(server.stats.connectionsAccepted == 3)
        }
    }
}
