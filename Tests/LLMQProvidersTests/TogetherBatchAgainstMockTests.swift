import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import MockProvider
import Testing

/// Together's batch API over the real transport against the fake provider, under its
/// `/together/v1` prefix: the full cycle (three-step upload, create, poll, download,
/// results), per-line failures, expiry, cancel, a failed job, and finding a job after
/// a crash by its input file.
@Suite(.serialized) struct TogetherBatchAgainstMockTests {
    static let transport = CurlTransport()
    static let key = "together-batch-test-key"
    static let model = "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"

    struct Setup {
        var server: MockProviderServer
        var endpoint: ProviderEndpoint
        var api: any ProviderBatchAPI
        var directory: URL

        var route: Route { ModelRouter.route(TogetherBatchAgainstMockTests.model)! }

        /// Writes the input file of `count` requests (`r0`, `r1`, …, each its own
        /// prompt) and `extra` canonical bodies (`x0`, …), and returns it with the requests.
        func input(_ count: Int, extra: [String] = [], name: String = "b1.jsonl") throws -> (
            URL, [String: SubmittedRequest]
        ) {
            var requests: [String: SubmittedRequest] = [:]
            var lines: [UInt8] = []
            for index in 0..<count {
                let line = #"{"model":"\#(model)","prompt":"Question \#(index)?","max_tokens":8}"#
                let submitted = try RequestParser().parse(line: line, number: index + 1).get()
                requests["r\(index)"] = submitted
                lines += try api.inputLine(
                    customID: "r\(index)", canonical: try JSONParser.parse(submitted.canonical),
                    route: submitted.route)
                lines.append(0x0A)
            }
            for (index, canonical) in extra.enumerated() {
                lines += try api.inputLine(
                    customID: "x\(index)", canonical: try JSONParser.parse(canonical), route: route)
                lines.append(0x0A)
            }
            let file = directory.appendingPathComponent(name)
            try Data(lines).write(to: file)
            return (file, requests)
        }

        /// Uploads `file` and creates a job from it.
        func submit(_ file: URL) async throws -> (fileID: String, batch: RemoteBatch) {
            let key = TogetherBatchAgainstMockTests.key
            let fileID = try #require(try await api.upload(file: file, name: file.lastPathComponent, key: key))
            let batch = try await api.create(
                file: file, inputFileID: fileID, llmqID: "llmq-0123456789abcdef01", route: route, key: key)
            return (fileID, batch)
        }

        /// Polls until the job has ended.
        func waitForEnd(_ batch: RemoteBatch) async throws -> RemoteBatch {
            try await LLMQProvidersTests.waitForEnd(api, batch, key: TogetherBatchAgainstMockTests.key)
        }

        /// Downloads an ended job's output and error files and reads them by custom id.
        func results(_ batch: RemoteBatch) async throws -> [String: BatchOutcome] {
            try await downloadedResults(api, batch, key: TogetherBatchAgainstMockTests.key, into: directory)
        }

        /// The answer Together's online endpoint gives the same request.
        func online(_ submitted: SubmittedRequest) async throws -> ProviderAnswer {
            let adapter = endpoint.adapter
            let request = try adapter.makeRequest(
                try JSONParser.parse(submitted.canonical), route: submitted.route,
                key: TogetherBatchAgainstMockTests.key, stream: false)
            return try adapter.parse(try await TogetherBatchAgainstMockTests.transport.send(request)).get()
        }
    }

    func withMock<T>(
        _ configure: (inout MockProviderServer.Configuration) -> Void = { _ in }, _ body: (Setup) async throws -> T
    ) async throws -> T {
        var configuration = MockProviderServer.Configuration()
        configure(&configuration)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "llmq-together-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await MockProviderServer.with(configuration) { server in
            let environment = ["TOGETHER_BASE_URL": server.url + "/together/v1", "TOGETHER_API_KEY": Self.key]
            let endpoint = try ProviderDirectory.endpoint(for: .together, environment: environment)
            let api = try #require(endpoint.batchAPI(transport: Self.transport))
            #expect(api.provider == .together)
            return try await body(Setup(server: server, endpoint: endpoint, api: api, directory: directory))
        }
    }

    @Test func aFullCycleGivesEveryRequestItsOwnAnswer() async throws {
        try await withMock({ $0.batches.duration = .milliseconds(600) }) { setup in
            let (file, requests) = try setup.input(5)
            // The mock refuses a PUT that carries a key, and a job on a file that
            // was not preprocessed fails: this passing means all three steps ran.
            let (fileID, created) = try await setup.submit(file)
            #expect(fileID.hasPrefix("file-"))
            #expect(created.phase == .running)
            #expect(created.status == "VALIDATING")
            #expect(created.inputFileID == fileID)
            #expect(created.llmqID == nil)
            #expect(created.createdAt != nil)
            let ended = try await setup.waitForEnd(created)
            #expect(ended.id == created.id)
            #expect(ended.status == "COMPLETED")
            #expect(ended.message == nil)
            #expect(ended.outputLocation != nil)
            #expect(ended.errorLocation == nil, "no line failed, so there is no error file")
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
            // Cancelling a job that completed is Together's 409, its flat message read.
            let refusal = await #expect(throws: ProviderFailure.self) {
                _ = try await setup.api.cancel(ended, key: Self.key)
            }
            #expect(refusal?.status == 409)
            #expect(refusal?.message == "Cannot cancel job - already in terminal state: COMPLETED")
            let stats = setup.server.stats
            #expect(stats.batchesCreated == [.together: 1])
            #expect(stats.filesUploaded == 1)
        }
    }

    @Test func failingLinesAreFailuresWithTogethersMessage() async throws {
        try await withMock({ $0.batches.failingLines = 1 }) { setup in
            let (file, requests) = try setup.input(3)
            let ended = try await setup.waitForEnd(try await setup.submit(file).batch)
            #expect(ended.status == "COMPLETED", "failed lines do not fail the job")
            #expect(ended.outputLocation == nil)
            #expect(ended.errorLocation != nil)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys))
            for (customID, outcome) in outcomes {
                let failure = try #require(batchFailure(outcome), "\(customID): \(outcome)")
                #expect(failure.type == "batch_server_error")
                #expect(!failure.message.isEmpty && failure.message != "no message")
            }
        }
    }

    @Test func aLineTheOnlineEndpointRefusesFailsAloneWithItsMessage() async throws {
        try await withMock { setup in
            let refused = #"{"messages":[{"role":"user","content":"hot"}],"temperature":9}"#
            let (file, requests) = try setup.input(2, extra: [refused])
            let ended = try await setup.waitForEnd(try await setup.submit(file).batch)
            #expect(ended.outputLocation != nil && ended.errorLocation != nil)
            let outcomes = try await setup.results(ended)
            #expect(Set(outcomes.keys) == Set(requests.keys).union(["x0"]))
            #expect(requests.keys.allSatisfy { batchAnswer(outcomes[$0]) != nil })
            let failure = try #require(batchFailure(outcomes["x0"]))
            #expect(failure.type == "batch_client_error")
            #expect(failure.message.contains("temperature"), "\(failure.message)")
        }
    }

    @Test func anExpiredJobKeepsWhatRanAndLeavesTheRestOut() async throws {
        try await withMock({ $0.batches.expiring = 1 }) { setup in
            let (file, requests) = try setup.input(4)
            let ended = try await setup.waitForEnd(try await setup.submit(file).batch)
            #expect(ended.status == "EXPIRED")
            #expect(ended.message == nil)
            let outcomes = try await setup.results(ended)
            // Together lists only what ran: the runner takes the rest as not run.
            #expect(outcomes.count == 2)
            #expect(Set(outcomes.keys).isSubset(of: requests.keys))
            #expect(outcomes.values.allSatisfy { batchAnswer($0) != nil })
        }
    }

    @Test func cancelGoesThroughCancelingToCancelled() async throws {
        try await withMock({ $0.batches.duration = .seconds(60) }) { setup in
            let (file, _) = try setup.input(3)
            let created = try await setup.submit(file).batch
            let cancelling = try await setup.api.cancel(created, key: Self.key)
            #expect(cancelling.id == created.id)
            #expect(cancelling.status == "CANCELING")
            #expect(cancelling.phase == .cancelling)
            let ended = try await setup.waitForEnd(cancelling)
            #expect(ended.status == "CANCELLED")
            #expect(ended.outputLocation == nil && ended.errorLocation == nil)
            #expect(try await setup.results(ended).isEmpty)
            let again = await #expect(throws: ProviderFailure.self) {
                _ = try await setup.api.cancel(ended, key: Self.key)
            }
            #expect(again?.status == 409)
        }
    }

    @Test func aJobOnAMissingFileFailsWithTogethersReason() async throws {
        try await withMock { setup in
            let (file, _) = try setup.input(1)
            let created = try await setup.api.create(
                file: file, inputFileID: "file-nope", llmqID: "llmq-0123456789abcdef01", route: setup.route,
                key: Self.key)
            let ended = try await setup.waitForEnd(created)
            #expect(ended.status == "FAILED")
            #expect(ended.message?.contains("file-nope") == true, "\(String(describing: ended.message))")
            #expect(ended.outputLocation == nil && ended.errorLocation == nil)
            #expect(try await setup.results(ended).isEmpty)
        }
    }

    @Test func findAfterACrashGivesTheJobMadeFromTheRecordedFile() async throws {
        try await withMock({ $0.batches.duration = .seconds(60) }) { setup in
            let (other, _) = try setup.input(2, name: "b0.jsonl")
            let (file, _) = try setup.input(3)
            // Someone else's job, on another file.
            let otherJob = try await setup.submit(other).batch
            let fileID = try #require(try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key))
            func find(_ inputFileID: String?, excluding: Set<String> = []) async throws -> RemoteBatch? {
                try await setup.api.find(
                    llmqID: "llmq-0123456789abcdef01", inputFileID: inputFileID, requestCount: 3, createdAfter: 0,
                    excluding: excluding, key: Self.key)
            }
            #expect(try await find(fileID) == nil)
            let created = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "llmq-0123456789abcdef01", route: setup.route, key: Self.key)
            // The process dies here, before recording the job's id; the next one looks.
            let found = try await find(fileID)
            #expect(found?.id == created.id)
            #expect(found?.inputFileID == fileID)
            #expect(found?.id != otherJob.id)
            // A job llmq already recorded is never taken again.
            #expect(try await find(fileID, excluding: [created.id]) == nil)
            // Two jobs from one file (a create that failed without an answer, then
            // another): the newest not yet recorded.
            try await Task.sleep(for: .milliseconds(5))
            let second = try await setup.api.create(
                file: file, inputFileID: fileID, llmqID: "llmq-0123456789abcdef01", route: setup.route, key: Self.key)
            #expect(try await find(fileID)?.id == second.id)
            #expect(try await find(fileID, excluding: [second.id])?.id == created.id)
            #expect(try await find(nil) == nil, "without the file there is nothing to match")
            #expect(setup.server.stats.totalBatchesCreated == 3)
        }
    }

    @Test func anUnknownJobIsTogethersFlatNotFound() async throws {
        try await withMock { setup in
            let error = await #expect(throws: ProviderFailure.self) {
                _ = try await setup.api.get(
                    RemoteBatch(id: "00000000-0000-4000-8000-000000000000", status: "", phase: .running),
                    key: Self.key)
            }
            #expect(error?.status == 404)
            #expect(error?.message == "Job not found")
        }
    }

    @Test func aWrongKeyIsTogethersAuthErrorWithoutTheKey() async throws {
        try await withMock({ $0.apiKey = "the-right-key" }) { setup in
            let (file, _) = try setup.input(1)
            for call in ["find", "upload"] {
                let error = await #expect(throws: ProviderFailure.self, "\(call)") {
                    if call == "find" {
                        _ = try await setup.api.find(
                            llmqID: "x", inputFileID: "file-x", requestCount: 1, createdAfter: 0, excluding: [],
                            key: Self.key)
                    } else {
                        _ = try await setup.api.upload(file: file, name: "b1.jsonl", key: Self.key)
                    }
                }
                #expect(error?.status == 401)
                #expect(error?.message.contains("Invalid API key") == true)
                #expect(error.map { !String(describing: $0).contains(Self.key) } == true)
            }
        }
    }
}

/// `TogetherBatchAPI` against a scripted transport: the exact requests it sends and
/// how it reads answers the mock does not give.
@Suite struct TogetherBatchAPITests {
    let route = ModelRouter.route("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo")!

    func api(_ transport: any HTTPTransport) -> TogetherBatchAPI {
        TogetherBatchAPI(
            adapter: OpenAIAdapter(provider: .together, baseURL: "https://together.test/v1/"), transport: transport)
    }

    func job(_ id: String, status: String = "IN_PROGRESS", file: String = "file-1", created: String) -> String {
        #"{"id":"\#(id)","status":"\#(status)","input_file_id":"\#(file)","created_at":"\#(created)","progress":10.5}"#
    }

    @Test func anInputLineIsTheOnlineBodyUnderCustomIDMethodAndURL() throws {
        let line = try api(BatchScriptTransport { _ in HTTPResponse(status: 500) }).inputLine(
            customID: "llmq-0123456789abcdef01-42", canonical: try JSONParser.parse(batchCanonical), route: route)
        let text = String(decoding: line, as: UTF8.self)
        #expect(
            text.hasPrefix(
                #"{"custom_id":"llmq-0123456789abcdef01-42","method":"POST","url":"/v1/chat/completions","body":{"#))
        let json = try JSONParser.parse(line)
        #expect(json["body"]?["model"] == .string("meta-llama/Llama-3.3-70B-Instruct-Turbo"))
        #expect(json["body"]?["max_tokens"] == .int(50))
        #expect(json["body"]?["stream"] == nil)
    }

    @Test func uploadAsksForAURLPutsTheBytesWithoutTheKeyAndPreprocesses() async throws {
        let scratch = try BatchScratch()
        let file = try scratch.file("llmq-1.jsonl", "{\"custom_id\":\"a\"}\n")
        let transport = BatchScriptTransport { request in
            switch (request.method, request.url) {
            case (.post, "https://together.test/v1/files"):
                return HTTPResponse(
                    status: 302, headers: ["Location": "/storage/up?sig=1", "X-Together-File-Id": "file-9"])
            case (.put, "https://together.test/storage/up?sig=1"):
                return HTTPResponse(status: 200)
            case (.post, "https://together.test/v1/files/file-9/preprocess"):
                return BatchScriptTransport.json(#"{"id":"file-9","object":"file","Processed":true}"#)
            default:
                return HTTPResponse(status: 500)
            }
        }
        #expect(try await api(transport).upload(file: file, name: "llmq 1", key: "k") == "file-9")
        let sent = transport.requests
        try #require(sent.count == 3)
        #expect(
            String(decoding: sent[0].body, as: UTF8.self)
                == "purpose=batch-api&file_name=llmq%201.jsonl&file_type=jsonl")
        #expect(sent[0].headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(sent[0].headers["Authorization"] == "Bearer k")
        #expect(sent[1].body == Array("{\"custom_id\":\"a\"}\n".utf8))
        #expect(sent[1].headers["Authorization"] == nil, "the signed URL is the credential")
        #expect(sent[2].headers["Authorization"] == "Bearer k")
    }

    @Test func aStorageErrorIsToBeUploadedAgainAndSaysOnlyItsCodeAndMessage() async throws {
        let scratch = try BatchScratch()
        let file = try scratch.file("llmq-1.jsonl", "{\"custom_id\":\"a\"}\n")
        let xml =
            "<?xml version=\"1.0\"?><Error><Code>RequestTimeout</Code><Message>Your socket connection was not "
            + "read from or written to within the timeout period.</Message><AWSAccessKeyId>AKIAEXAMPLE</AWSAccessKeyId>"
            + "<RequestId>r1</RequestId></Error>"
        let transport = BatchScriptTransport { request in
            switch request.method {
            case .post:
                return HTTPResponse(status: 302, headers: ["Location": "/storage/up?sig=1", "X-Together-File-Id": "f"])
            default:
                return HTTPResponse(status: 400, body: Array(xml.utf8))
            }
        }
        await #expect {
            _ = try await api(transport).upload(file: file, name: "llmq-1", key: "k")
        } throws: { error in
            guard let failure = error as? ProviderFailure else { return false }
            // No status: not a refusal of the file (BatchRunner.isRefusal), so it is sent again.
            return failure.status == nil && failure.message.contains("(HTTP 400): RequestTimeout: Your socket")
                && !failure.message.contains("AKIA") && !failure.message.contains("sig=")
        }
    }

    @Test func anUploadThatIsNotRedirectedIsAnError() async throws {
        let scratch = try BatchScratch()
        let file = try scratch.file("b.jsonl", "{}\n")
        for response in [
            BatchScriptTransport.json(#"{"id":"file-1"}"#),
            HTTPResponse(status: 302, headers: ["Location": "https://s3.test/x"]),
            BatchScriptTransport.json(
                #"{"error":{"message":"bad purpose","type":"invalid_request_error"}}"#, status: 400),
        ] {
            let error = await #expect(throws: ProviderFailure.self) {
                _ = try await api(BatchScriptTransport { _ in response }).upload(file: file, name: "b", key: "k")
            }
            #expect(error?.status == response.status)
            if response.status == 400 { #expect(error?.message == "bad purpose") }
        }
    }

    @Test func createSendsTheFileEndpointAndWindowAndUnwrapsTheJob() async throws {
        let scratch = try BatchScratch()
        let file = try scratch.file("b.jsonl", "{}\n")
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"job":{"id":"j1","status":"VALIDATING","input_file_id":"file-1","created_at":"2025-06-09T21:14:25.429872Z","progress":0}}"#,
                status: 201)
        }
        let batch = try await api(transport).create(
            file: file, inputFileID: "file-1", llmqID: "llmq-x", route: route, key: "k")
        #expect(batch.id == "j1" && batch.phase == .running && batch.inputFileID == "file-1")
        #expect(batch.createdAt == 1_749_503_665_429)
        #expect(batch.total == nil && batch.succeeded == nil && batch.failed == nil)
        let body = try JSONParser.parse(transport.requests[0].body)
        #expect(
            body
                == .object([
                    "input_file_id": .string("file-1"), "endpoint": .string("/v1/chat/completions"),
                    "completion_window": .string("24h"),
                ]))
        // A reply without a job was not a create: Together's warning says why.
        let refused = await #expect(throws: ProviderFailure.self) {
            _ = try await api(
                BatchScriptTransport { _ in BatchScriptTransport.json(#"{"warning":"quota"}"#, status: 201) }
            )
            .create(file: file, inputFileID: "file-1", llmqID: "llmq-x", route: route, key: "k")
        }
        #expect(refused?.status == 201)
        #expect(refused?.message.contains("quota") == true)
    }

    @Test func findTakesTheNewestJobOfTheFileNotExcludedFromAnUnorderedList() async throws {
        let list =
            "[" + job("a", file: "file-1", created: "2025-06-09T21:13:00.000001Z") + ","
            + job("b", file: "file-2", created: "2025-06-11T06:11:00Z") + ","
            + job("c", file: "file-1", created: "2025-06-09T22:18:00.5Z") + ","
            + job("d", file: "file-1", created: "2025-06-09T21:14:00Z") + "]"
        let api = api(BatchScriptTransport { _ in BatchScriptTransport.json(list) })
        func find(_ file: String?, excluding: Set<String> = []) async throws -> String? {
            try await api.find(
                llmqID: "llmq-x", inputFileID: file, requestCount: 1, createdAfter: 0, excluding: excluding, key: "k")?
                .id
        }
        #expect(try await find("file-1") == "c")
        #expect(try await find("file-1", excluding: ["c"]) == "d")
        #expect(try await find("file-1", excluding: ["c", "d", "a"]) == nil)
        #expect(try await find("file-3") == nil)
        #expect(try await find(nil) == nil)
        let notAList = TogetherBatchAPI(
            adapter: OpenAIAdapter(provider: .together, baseURL: "https://together.test/v1"),
            transport: BatchScriptTransport { _ in BatchScriptTransport.json(#"{"data":[]}"#) })
        await #expect(throws: ProviderFailure.self) {
            _ = try await notAList.find(
                llmqID: "x", inputFileID: "file-1", requestCount: 1, createdAfter: 0, excluding: [], key: "k")
        }
    }

    @Test(arguments: [
        ("VALIDATING", RemoteBatch.Phase.running), ("IN_PROGRESS", .running), ("CANCELING", .cancelling),
        ("COMPLETED", .ended), ("FAILED", .ended), ("EXPIRED", .ended), ("CANCELLED", .ended), ("QUEUED", .running),
    ])
    func statusesMapToPhases(_ status: String, _ phase: RemoteBatch.Phase) async throws {
        let text =
            #"{"id":"j","status":"\#(status)","output_file_id":"file-o","error_file_id":"","error":"Invalid model ID"}"#
        let batch = try await api(BatchScriptTransport { _ in BatchScriptTransport.json(text) }).get(
            RemoteBatch(id: "j", status: "", phase: .running), key: "k")
        #expect(batch.phase == phase)
        #expect(batch.status == status)
        #expect(batch.outputLocation == "file-o")
        #expect(batch.errorLocation == nil)
        #expect(batch.message == "Invalid model ID")
    }

    @Test func resultLinesAreAnswersOrFailures() throws {
        let scratch = try BatchScratch()
        let body =
            #"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#
        let file = try scratch.file(
            "r.jsonl",
            #"{"id":"br_1","custom_id":"a","response":{"status_code":200,"body":\#(body)}}"# + "\n"
                + #"{"id":"br_2","custom_id":"b","error":{"code":"batch_client_error","message":"Unable to access model m"}}"#
                + "\n" + #"{"id":"br_3","custom_id":"c","error":"flat reason"}"# + "\n"
                + #"{"id":"br_4","custom_id":"d","response":{"status_code":400,"body":{"error":{"message":"bad","type":"invalid_request_error"}}}}"#
                + "\n")
        let outcomes = try batchResults(api(BatchScriptTransport { _ in HTTPResponse(status: 500) }), file)
        #expect(batchAnswer(outcomes["a"])?.text == "4")
        #expect(batchAnswer(outcomes["a"])?.usage.outputTokens == 1)
        #expect(
            batchFailure(outcomes["b"])
                == ProviderFailure(status: nil, type: "batch_client_error", message: "Unable to access model m"))
        #expect(batchFailure(outcomes["c"])?.message == "flat reason")
        #expect(batchFailure(outcomes["d"])?.status == 400)
        #expect(batchFailure(outcomes["d"])?.message == "bad")
    }
}
