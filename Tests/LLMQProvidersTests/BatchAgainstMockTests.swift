import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// Each provider's batch API over the real transport against the fake provider: the
/// full cycle (upload, create, poll, download, results), finding a batch after a
/// crash, cancel, failing lines and expiry.
@Suite(.serialized) struct BatchAgainstMockTests {
    static let transport = CurlTransport()
    static let key = "batch-test-key"

    /// The three providers with a batch API, by a model each serves.
    static let models: [Provider: String] = [
        .openai: "gpt-4o-mini", .anthropic: "claude-haiku-4-5", .gemini: "gemini-2.5-flash",
    ]

    struct Setup {
        var server: MockProviderServer
        var endpoint: ProviderEndpoint
        var api: any ProviderBatchAPI
        var directory: URL

        /// Writes the input file of `count` requests (`r0`, `r1`, …, each its own
        /// prompt) and returns it with the requests.
        func input(_ count: Int, name: String = "b1.jsonl") throws -> (URL, [String: SubmittedRequest]) {
            var requests: [String: SubmittedRequest] = [:]
            var lines: [UInt8] = []
            for index in 0..<count {
                let line = #"{"model":"\#(models[endpoint.provider]!)","prompt":"Question \#(index)?","max_tokens":8}"#
                let submitted = try RequestParser().parse(line: line, number: index + 1).get()
                let customID = "r\(index)"
                requests[customID] = submitted
                lines += try api.inputLine(
                    customID: customID, canonical: try JSONParser.parse(submitted.canonical), route: submitted.route)
                lines.append(0x0A)
            }
            let file = directory.appendingPathComponent(name)
            try Data(lines).write(to: file)
            return (file, requests)
        }

        var route: Route { ModelRouter.route(models[endpoint.provider]!)! }

        /// Polls until the batch has ended.
        func waitForEnd(_ batch: RemoteBatch) async throws -> RemoteBatch {
            try await LLMQProvidersTests.waitForEnd(api, batch, key: BatchAgainstMockTests.key)
        }

        /// Downloads an ended batch's results and reads them by custom id.
        func results(_ batch: RemoteBatch) async throws -> [String: BatchOutcome] {
            try await downloadedResults(api, batch, key: BatchAgainstMockTests.key, into: directory)
        }

        /// The answer the online endpoint gives the same request.
        func online(_ submitted: SubmittedRequest) async throws -> ProviderAnswer {
            let adapter = endpoint.adapter
            let request = try adapter.makeRequest(
                try JSONParser.parse(submitted.canonical), route: submitted.route, key: BatchAgainstMockTests.key,
                stream: false)
            return try adapter.parse(try await BatchAgainstMockTests.transport.send(request)).get()
        }
    }

    func withMock<T>(
        _ provider: Provider, _ configure: (inout MockProviderServer.Configuration) -> Void = { _ in },
        _ body: (Setup) async throws -> T
    ) async throws -> T {
        var configuration = MockProviderServer.Configuration()
        configure(&configuration)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await MockProviderServer.with(configuration) { server in
            let environment = [
                "OPENAI_BASE_URL": server.openAIBaseURL, "ANTHROPIC_BASE_URL": server.url,
                "GEMINI_BASE_URL": server.url, "OPENAI_API_KEY": Self.key, "ANTHROPIC_API_KEY": Self.key,
                "GEMINI_API_KEY": Self.key,
            ]
            let endpoint = try ProviderDirectory.endpoint(for: provider, environment: environment)
            let api = try #require(endpoint.batchAPI(transport: Self.transport))
            return try await body(Setup(server: server, endpoint: endpoint, api: api, directory: directory))
        }
    }

    /// Unix milliseconds now, as the engine records an intent.
    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func aFullCycleGivesEveryRequestItsOwnAnswer(_ provider: Provider) async throws {
        try await withMock(provider, { $0.batches.duration = .milliseconds(600) }) { setup in
            let (file, requests) = try setup.input(5)
            let fileID = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
            #expect((fileID != nil) == (provider == .openai))
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            #expect(created.phase == .running)
            if provider != .anthropic { #expect(created.llmqID == "job-1-b1") }
            let ended = try await setup.waitForEnd(created)
            #expect(ended.id == created.id)
            #expect(ended.total == 5)
            #expect(ended.succeeded == 5)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            for (customID, submitted) in requests {
                let answer = try #require(
                    batchAnswer(outcomes[customID]), "\(customID): \(String(describing: outcomes[customID]))")
                let online = try await setup.online(submitted)
                #expect(answer.text == online.text, "\(customID)")
                #expect(answer.usage == online.usage, "\(customID)")
                #expect(answer.usage.outputTokens > 0)
            }
            // Cancelling a batch that completed is the provider's error.
            await #expect(throws: ProviderFailure.self) { _ = try await setup.api.cancel(ended, key: Self.key) }
            let stats = setup.server.stats
            #expect(stats.totalBatchesCreated == 1)
            #expect(stats.filesUploaded == (provider == .openai ? 1 : 0))
        }
    }

    @Test func aGeminiBatchOverTheInlineLimitGoesThroughTheFilesAPI() async throws {
        try await withMock(.gemini) { setup in
            var api = try #require(setup.api as? GeminiBatchAPI)
            api.inlineMaxBytes = 10
            let (file, requests) = try setup.input(4)
            let fileID = try #require(try await api.upload(file: file, name: "b1.jsonl", key: Self.key))
            #expect(fileID.hasPrefix("files/"))
            let created = try await api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            var setup = setup
            setup.api = api
            let ended = try await setup.waitForEnd(created)
            #expect(ended.outputLocation?.hasPrefix("files/") == true)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            for (customID, submitted) in requests {
                #expect(batchAnswer(outcomes[customID])?.text == (try await setup.online(submitted)).text)
            }
            #expect(setup.server.stats.filesUploaded == 1)
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func findAfterACrashGivesTheBatchAlreadyCreated(_ provider: Provider) async throws {
        try await withMock(provider, { $0.batches.duration = .seconds(60) }) { setup in
            let (file, _) = try setup.input(3)
            let (other, _) = try setup.input(2, name: "b0.jsonl")
            // Someone else's batch, created before our intent.
            let otherFile = try await setup.api.upload(file: other, name: "b0.jsonl", key: Self.key)
            _ = try await setup.api.create(
                file: other, inputFileID: otherFile, llmqID: "job-1-b0", route: setup.route, key: Self.key)
            let intent = Self.now
            let fileID = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
            #expect(
                try await setup.api.find(
                    llmqID: "job-1-b1", inputFileID: fileID, requestCount: 3, createdAfter: intent, excluding: [],
                    key: Self.key)
                    == nil)
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            // The process dies here, before recording the batch id; the next one looks.
            let found = try await setup.api.find(
                llmqID: "job-1-b1", inputFileID: fileID, requestCount: 3, createdAfter: intent, excluding: [],
                key: Self.key)
            #expect(found?.id == created.id)
            if provider == .anthropic {
                #expect(
                    try await setup.api.find(
                        llmqID: "job-1-b1", inputFileID: nil, requestCount: 4, createdAfter: intent, excluding: [],
                        key: Self.key)
                        == nil)
            } else {
                #expect(found?.llmqID == "job-1-b1")
                #expect(
                    try await setup.api.find(
                        llmqID: "job-1-b9", inputFileID: fileID, requestCount: 3, createdAfter: intent, excluding: [],
                        key: Self.key)
                        == nil)
            }
            #expect(setup.server.stats.totalBatchesCreated == 2)
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func cancelEndsTheBatchWithItsRequestsNotRun(_ provider: Provider) async throws {
        try await withMock(provider, { $0.batches.duration = .seconds(60) }) { setup in
            let (file, requests) = try setup.input(3)
            let fileID = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            let cancelled = try await setup.api.cancel(created, key: Self.key)
            #expect(cancelled.phase != .running)
            let ended = try await setup.waitForEnd(cancelled)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            for (customID, outcome) in outcomes {
                guard case .notRun = outcome else {
                    Issue.record("\(customID) ran: \(outcome)")
                    continue
                }
            }
            // Cancelling it again is no error: it is still cancelled.
            #expect(try await setup.api.cancel(ended, key: Self.key).id == ended.id)
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func failingLinesAreFailuresWithTheProvidersMessage(_ provider: Provider) async throws {
        try await withMock(provider, { $0.batches.failingLines = 1 }) { setup in
            let (file, requests) = try setup.input(3)
            let fileID = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            let ended = try await setup.waitForEnd(created)
            #expect(ended.failed == 3)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            for (customID, outcome) in outcomes {
                let failure = try #require(batchFailure(outcome), "\(customID): \(outcome)")
                #expect(failure.status == 500)
                #expect(!failure.message.isEmpty && failure.message != "no message")
            }
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func anExpiredBatchKeepsWhatRanAndReportsTheRestNotRun(_ provider: Provider) async throws {
        try await withMock(provider, { $0.batches.expiring = 1 }) { setup in
            let (file, requests) = try setup.input(4)
            let fileID = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "job-1-b1", route: setup.route, key: Self.key)
            let ended = try await setup.waitForEnd(created)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            let answered = outcomes.values.filter { batchAnswer($0) != nil }.count
            let notRun = outcomes.values.filter { if case .notRun = $0 { true } else { false } }.count
            #expect(answered == 2)
            #expect(notRun == 2)
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func anUnknownBatchIsTheProvidersNotFound(_ provider: Provider) async throws {
        try await withMock(provider) { setup in
            let id = provider == .gemini ? "batches/nope" : provider == .anthropic ? "msgbatch_nope" : "batch_nope"
            let error = await #expect(throws: ProviderFailure.self) {
                _ = try await setup.api.get(RemoteBatch(id: id, status: "", phase: .running), key: Self.key)
            }
            #expect(error?.status == 404)
            #expect(error?.message.isEmpty == false)
        }
    }

    @Test(arguments: [Provider.openai, .anthropic, .gemini])
    func aWrongKeyIsTheProvidersAuthErrorWithoutTheKey(_ provider: Provider) async throws {
        try await withMock(provider, { $0.apiKey = "the-right-key" }) { setup in
            let error = await #expect(throws: ProviderFailure.self) {
                _ = try await setup.api.find(
                    llmqID: "x", inputFileID: nil, requestCount: 1, createdAfter: 0, excluding: [], key: Self.key)
            }
            #expect(error.map { [400, 401, 403].contains($0.status ?? 0) } == true)
            #expect(error.map { !String(describing: $0).contains(Self.key) } == true)
        }
    }
}
