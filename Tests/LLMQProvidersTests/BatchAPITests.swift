import Foundation
import LLMQCore
import LLMQProviders
import LLMQTransport
import Synchronization
import Testing

/// A transport that answers every request from a script and records what was sent.
/// Streamed requests are not scripted (the transport's streaming response cannot be
/// built outside it): downloads are tested against the fake provider.
final class BatchScriptTransport: HTTPTransport {
    typealias Script = @Sendable (HTTPRequest) -> HTTPResponse

    let script: Script
    private let sent = Mutex<[HTTPRequest]>([])

    init(_ script: @escaping Script) { self.script = script }

    var requests: [HTTPRequest] { sent.withLock { $0 } }

    /// An upload is read when sent, as the real transport reads it (its files may be
    /// gone afterwards), and recorded as the request's body.
    func send(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPResponse {
        var request = request
        if let upload = request.upload {
            request.body = try upload.collect()
            request.upload = nil
        }
        sent.withLock { $0.append(request) }
        return script(request)
    }

    func stream(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPStreamingResponse {
        throw TransportError.invalidRequest(reason: "not scripted")
    }

    static func json(_ text: String, status: Int = 200, headers: HTTPHeaders = [:]) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: Array(text.utf8))
    }
}

/// A temporary directory for one test.
struct BatchScratch: ~Copyable {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func file(_ name: String, _ text: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    func file(_ name: String, lines: [[UInt8]]) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try Data(lines.flatMap { $0 + [0x0A] }).write(to: url)
        return url
    }
}

func batchResults(_ api: any ProviderBatchAPI, _ file: URL) throws -> [String: BatchOutcome] {
    var outcomes: [String: BatchOutcome] = [:]
    try api.results(in: file) { result in
        #expect(outcomes[result.customID] == nil, "\(result.customID) twice")
        outcomes[result.customID] = result.outcome
    }
    return outcomes
}

/// Polls a batch at a fake provider until it has ended (20 s at most).
func waitForEnd(_ api: any ProviderBatchAPI, _ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
    var batch = batch
    for _ in 0..<400 where batch.phase != .ended {
        try await Task.sleep(for: .milliseconds(50))
        batch = try await api.get(batch, key: key)
    }
    #expect(batch.phase == .ended)
    return batch
}

/// Downloads an ended batch's results into `directory` and reads them by custom id.
func downloadedResults(_ api: any ProviderBatchAPI, _ batch: RemoteBatch, key: String, into directory: URL)
    async throws -> [String: BatchOutcome]
{
    let file = directory.appendingPathComponent("results-\(UUID().uuidString).jsonl")
    try await api.download(batch, key: key, to: file)
    #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))
    return try batchResults(api, file)
}

func batchAnswer(_ outcome: BatchOutcome?) -> ProviderAnswer? {
    if case .answer(let answer) = outcome { return answer }
    return nil
}

func batchFailure(_ outcome: BatchOutcome?) -> ProviderFailure? {
    if case .failure(let failure) = outcome { return failure }
    return nil
}

let batchCanonical = #"{"messages":[{"content":"2+2?","role":"user"}],"max_tokens":50,"model":"m"}"#

// MARK: - OpenAI

@Suite struct OpenAIBatchAPITests {
    let route = ModelRouter.route("gpt-4o-mini")!

    func api(_ transport: any HTTPTransport = BatchScriptTransport { _ in HTTPResponse(status: 500) })
        -> OpenAIBatchAPI
    {
        OpenAIBatchAPI(adapter: OpenAIAdapter(baseURL: "http://openai.test/v1/"), transport: transport)
    }

    @Test func anInputLineIsTheOnlineBodyUnderCustomIDMethodAndURL() throws {
        let line = try api().inputLine(customID: "req-1", canonical: try JSONParser.parse(batchCanonical), route: route)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasPrefix(#"{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"#))
        #expect(!text.contains("\n"))
        let json = try JSONParser.parse(line)
        #expect(json["body"]?["model"] == .string("gpt-4o-mini"))
        #expect(json["body"]?["max_completion_tokens"] == .int(50))
        #expect(json["body"]?["max_tokens"] == nil)
        #expect(json["body"]?["stream"] == nil)
    }

    @Test func resultLinesFromProvidersMDBecomeAnswersFailuresAndNotRun() throws {
        let scratch = try BatchScratch()
        let file = try scratch.file(
            "out.jsonl",
            #"""
            {"id":"batch_req_1","custom_id":"req-1","response":{"status_code":200,"request_id":"req_c187","body":{"id":"chatcmpl-x","object":"chat.completion","created":1711475054,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":1,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":16}}}},"error":null}
            {"id":"batch_req_2","custom_id":"req-2","response":null,"error":{"code":"batch_expired","message":"Request not run before the window closed."}}

            {"id":"batch_req_3","custom_id":"req-3","response":{"status_code":400,"request_id":"req_3","body":{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","param":"messages","code":"empty_array"}}},"error":null}
            {"id":"batch_req_4","custom_id":"req-4","response":null,"error":{"code":"batch_cancelled","message":"Batch was cancelled."}}
            {"id":"batch_req_5","custom_id":"req-5","response":null,"error":{"code":"request_timeout","message":"The request timed out."}}\#r
            """#)
        let outcomes = try batchResults(api(), file)
        #expect(outcomes.count == 5)
        let answer = try #require(batchAnswer(outcomes["req-1"]))
        #expect(answer.text == "4")
        #expect(answer.finishReason == "stop")
        #expect(answer.model == "gpt-4o-mini")
        #expect(answer.usage == Usage(inputTokens: 8, cachedInputTokens: 16, outputTokens: 1))
        #expect(try JSONParser.parse(answer.raw)["id"] == .string("chatcmpl-x"))
        #expect(outcomes["req-2"] == .notRun(reason: "batch_expired"))
        let failure = try #require(batchFailure(outcomes["req-3"]))
        #expect(failure.status == 400)
        #expect(failure.type == "empty_array")
        #expect(failure.message == "Invalid 'messages': empty array.")
        #expect(outcomes["req-4"] == .notRun(reason: "batch_cancelled"))
        #expect(batchFailure(outcomes["req-5"])?.type == "request_timeout")
    }

    @Test func aLineThatIsNotJSONIsAFileError() throws {
        let scratch = try BatchScratch()
        let file = try scratch.file(
            "out.jsonl", "{\"custom_id\":\"a\",\"error\":{\"code\":\"batch_expired\"}}\n{oops\n")
        var seen: [String] = []
        #expect(throws: BatchFileError.self) { try api().results(in: file) { seen.append($0.customID) } }
        #expect(seen == ["a"])
    }

    @Test func uploadSendsMultipartAndCreateTagsTheBatch() async throws {
        let scratch = try BatchScratch()
        let input = try scratch.file("b1.jsonl", "{\"custom_id\":\"r1\"}\n")
        let transport = BatchScriptTransport { request in
            if request.url.hasSuffix("/files") {
                return BatchScriptTransport.json(
                    #"{"id":"file-abc","object":"file","bytes":20,"created_at":1711471533,"filename":"b1.jsonl","purpose":"batch","status":"processed","expires_at":null}"#
                )
            }
            return BatchScriptTransport.json(
                #"""
                {"id":"batch_abc","object":"batch","endpoint":"/v1/chat/completions","errors":null,"input_file_id":"file-abc",
                 "completion_window":"24h","status":"validating","output_file_id":null,"error_file_id":null,
                 "created_at":1711471533,"request_counts":{"total":0,"completed":0,"failed":0},"metadata":{"llmq_batch_id":"job-1-b1"}}
                """#)
        }
        let api = api(transport)
        let fileID = try await api.upload(file: input, name: "b1.jsonl", key: "sk-test")
        #expect(fileID == "file-abc")
        let batch = try await api.create(
            file: input, inputFileID: "file-abc", llmqID: "job-1-b1", route: route, key: "sk-test")
        #expect(batch.id == "batch_abc")
        #expect(batch.phase == .running)
        #expect(batch.llmqID == "job-1-b1")
        #expect(batch.inputFileID == "file-abc")
        #expect(batch.createdAt == 1_711_471_533_000)

        let upload = transport.requests[0]
        #expect(upload.method == .post)
        #expect(upload.url == "http://openai.test/v1/files")
        #expect(upload.headers["Authorization"] == "Bearer sk-test")
        let contentType = try #require(upload.headers["Content-Type"])
        #expect(contentType.hasPrefix("multipart/form-data; boundary="))
        let boundary = String(contentType.dropFirst("multipart/form-data; boundary=".count))
        let body = String(decoding: upload.body, as: UTF8.self)
        #expect(body.contains("--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"))
        #expect(body.contains("name=\"file\"; filename=\"b1.jsonl\"\r\n"))
        #expect(body.contains("\r\n\r\n{\"custom_id\":\"r1\"}\n\r\n--\(boundary)--\r\n"))

        let create = transport.requests[1]
        #expect(create.url == "http://openai.test/v1/batches")
        let sent = try JSONParser.parse(create.body)
        #expect(sent["input_file_id"] == .string("file-abc"))
        #expect(sent["endpoint"] == .string("/v1/chat/completions"))
        #expect(sent["completion_window"] == .string("24h"))
        #expect(sent["metadata"]?["llmq_batch_id"] == .string("job-1-b1"))
    }

    @Test func theBatchObjectFromProvidersMDReadsAsRunningWithCounts() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"""
                {"id":"batch_abc","object":"batch","endpoint":"/v1/chat/completions","errors":null,"input_file_id":"file-abc",
                 "completion_window":"24h","status":"in_progress","output_file_id":null,"error_file_id":null,
                 "created_at":1711471533,"in_progress_at":1711471538,"expires_at":1711557933,"finalizing_at":null,
                 "completed_at":null,"failed_at":null,"expired_at":null,"cancelling_at":null,"cancelled_at":null,
                 "request_counts":{"total":100,"completed":23,"failed":1},"metadata":{}}
                """#)
        }
        let batch = try await api(transport).get(RemoteBatch(id: "batch_abc", status: "", phase: .running), key: "k")
        #expect(transport.requests[0].url == "http://openai.test/v1/batches/batch_abc")
        #expect(batch.status == "in_progress")
        #expect(batch.phase == .running)
        #expect(batch.total == 100)
        #expect(batch.succeeded == 23)
        #expect(batch.failed == 1)
        #expect(batch.llmqID == nil)
        #expect(batch.outputLocation == nil)
    }

    @Test(arguments: [
        ("validating", RemoteBatch.Phase.running), ("in_progress", .running), ("finalizing", .running),
        ("cancelling", .cancelling), ("completed", .ended), ("failed", .ended), ("expired", .ended),
        ("cancelled", .ended),
    ])
    func statusesMapToPhases(_ status: String, _ phase: RemoteBatch.Phase) async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"id":"batch_1","status":"\#(status)","output_file_id":"file-out","error_file_id":"file-err","#
                    + #""errors":{"object":"list","data":[{"code":"invalid_json","message":"bad line","param":null,"line":3}]}}"#
            )
        }
        let batch = try await api(transport).cancel(RemoteBatch(id: "batch_1", status: "", phase: .running), key: "k")
        #expect(transport.requests[0].url == "http://openai.test/v1/batches/batch_1/cancel")
        #expect(transport.requests[0].method == .post)
        #expect(batch.phase == phase)
        #expect(batch.outputLocation == "file-out")
        #expect(batch.errorLocation == "file-err")
        #expect(batch.message == "line 3: bad line")
    }

    @Test func findPagesNewestFirstAndMatchesMetadataAndInputFile() async throws {
        let transport = BatchScriptTransport { request in
            if request.url.contains("after=batch_2") {
                return BatchScriptTransport.json(
                    #"""
                    {"object":"list","data":[
                     {"id":"batch_3","status":"in_progress","input_file_id":"file-other","metadata":{"llmq_batch_id":"job-b1"},"created_at":2000},
                     {"id":"batch_4","status":"in_progress","input_file_id":"file-abc","metadata":{"llmq_batch_id":"job-b1"},"created_at":1999}],
                     "first_id":"batch_3","last_id":"batch_4","has_more":true}
                    """#)
            }
            return BatchScriptTransport.json(
                #"""
                {"object":"list","data":[
                 {"id":"batch_1","status":"completed","input_file_id":"file-abc","metadata":{},"created_at":2002},
                 {"id":"batch_2","status":"completed","input_file_id":"file-x","metadata":{"llmq_batch_id":"other"},"created_at":2001}],
                 "first_id":"batch_1","last_id":"batch_2","has_more":true}
                """#)
        }
        let found = try await api(transport).find(
            llmqID: "job-b1", inputFileID: "file-abc", requestCount: 3, createdAfter: 1_999_000, excluding: [], key: "k"
        )
        #expect(found?.id == "batch_4")
        #expect(
            transport.requests.map(\.url) == [
                "http://openai.test/v1/batches?limit=100", "http://openai.test/v1/batches?limit=100&after=batch_2",
            ])
    }

    @Test func findStopsAtBatchesOlderThanTheIntent() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"object":"list","data":[{"id":"batch_1","status":"completed","created_at":1000,"metadata":{}}],"#
                    + #""first_id":"batch_1","last_id":"batch_1","has_more":true}"#)
        }
        let found = try await api(transport).find(
            llmqID: "job-b1", inputFileID: nil, requestCount: 3, createdAfter: 1_000_000_000, excluding: [], key: "k")
        #expect(found == nil)
        #expect(transport.requests.count == 1)
    }

    @Test func anHTTPErrorIsTheProvidersFailureWithoutTheKey() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"error":{"message":"Incorrect API key provided: sk-ab***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                status: 401)
        }
        let error = await #expect(throws: ProviderFailure.self) {
            try await api(transport).get(RemoteBatch(id: "batch_1", status: "", phase: .running), key: "sk-secret-key")
        }
        #expect(error?.status == 401)
        #expect(error?.type == "invalid_api_key")
        #expect(error?.message == "Incorrect API key provided: sk-ab***.")
        #expect(error.map { !String(describing: $0).contains("sk-secret-key") } == true)
    }

    @Test func createWithoutAnUploadedFileIsRefused() async throws {
        let scratch = try BatchScratch()
        let input = try scratch.file("b.jsonl", "")
        await #expect(throws: ProviderFailure.self) {
            try await api().create(file: input, inputFileID: nil, llmqID: "x", route: route, key: "k")
        }
    }
}

// MARK: - Anthropic

@Suite struct AnthropicBatchAPITests {
    let route = ModelRouter.route("sonnet")!

    func api(_ transport: any HTTPTransport = BatchScriptTransport { _ in HTTPResponse(status: 500) })
        -> AnthropicBatchAPI
    {
        AnthropicBatchAPI(adapter: AnthropicAdapter(baseURL: "http://anthropic.test"), transport: transport)
    }

    func batchJSON(_ id: String, created: String, counts: (Int, Int) = (2, 0), status: String = "in_progress")
        -> String
    {
        #"{"id":"\#(id)","type":"message_batch","processing_status":"\#(status)","#
            + #""request_counts":{"processing":\#(counts.0),"succeeded":\#(counts.1),"errored":0,"canceled":0,"expired":0},"#
            + #""created_at":"\#(created)","expires_at":"2025-01-02T00:00:00Z","ended_at":null,"#
            + #""cancel_initiated_at":null,"archived_at":null,"results_url":null}"#
    }

    @Test func anInputLineIsTheMessagesBodyUnderCustomIDAndParams() throws {
        let line = try api().inputLine(customID: "r_1-x", canonical: try JSONParser.parse(batchCanonical), route: route)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasPrefix(#"{"custom_id":"r_1-x","params":{"#))
        let json = try JSONParser.parse(line)
        #expect(json["params"]?["model"] == .string("claude-sonnet-4-5"))
        #expect(json["params"]?["max_tokens"] == .int(50))
        #expect(json["params"]?["stream"] == nil)
        #expect(json["params"]?["messages"]?.arrayValue?.count == 1)
    }

    @Test(arguments: ["", "has space", "dot.ted", String(repeating: "a", count: 65), "ümlaut"])
    func customIDsAnthropicRefusesAreRefused(_ id: String) {
        #expect(throws: ProviderFailure.self) {
            try api().inputLine(customID: id, canonical: try JSONParser.parse(batchCanonical), route: route)
        }
    }

    @Test func whatTheOnlineAdapterRefusesIsRefused() {
        #expect(throws: ProviderFailure.self) {
            try api().inputLine(
                customID: "r1", canonical: try JSONParser.parse(#"{"messages":[],"seed":7}"#), route: route)
        }
    }

    @Test func resultLinesFromProvidersMDBecomeAnswersFailuresAndNotRun() throws {
        let scratch = try BatchScratch()
        let file = try scratch.file(
            "results.jsonl",
            #"""
            {"custom_id":"r1","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":2,"cache_read_input_tokens":5}}}}
            {"custom_id":"r2","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"},"request_id":"req_2"}}}
            {"custom_id":"r3","result":{"type":"canceled"}}
            {"custom_id":"r4","result":{"type":"expired"}}
            {"custom_id":"r5","result":{"type":"errored","error":{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}}}
            """#)
        let outcomes = try batchResults(api(), file)
        let answer = try #require(batchAnswer(outcomes["r1"]))
        #expect(answer.text == "Hi")
        #expect(answer.finishReason == "stop")
        #expect(answer.usage == Usage(inputTokens: 10, cachedInputTokens: 5, outputTokens: 2))
        let failure = try #require(batchFailure(outcomes["r2"]))
        #expect(failure.status == 400)
        #expect(failure.type == "invalid_request_error")
        #expect(failure.message == "max_tokens: field required")
        #expect(outcomes["r3"] == .notRun(reason: "canceled"))
        #expect(outcomes["r4"] == .notRun(reason: "expired"))
        #expect(batchFailure(outcomes["r5"])?.status == 529)
    }

    @Test func theBatchObjectFromProvidersMDReadsWithItsTotalAndTime() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"""
                {"id":"msgbatch_01A","type":"message_batch","processing_status":"in_progress",
                 "request_counts":{"processing":2,"succeeded":0,"errored":0,"canceled":0,"expired":0},
                 "created_at":"2025-01-01T00:00:00Z","expires_at":"2025-01-02T00:00:00Z","ended_at":null,
                 "cancel_initiated_at":null,"archived_at":null,"results_url":null}
                """#)
        }
        let batch = try await api(transport).get(RemoteBatch(id: "msgbatch_01A", status: "", phase: .running), key: "k")
        #expect(transport.requests[0].url == "http://anthropic.test/v1/messages/batches/msgbatch_01A")
        #expect(transport.requests[0].headers["x-api-key"] == "k")
        #expect(transport.requests[0].headers["anthropic-version"] == "2023-06-01")
        #expect(batch.phase == .running)
        #expect(batch.total == 2)
        #expect(batch.succeeded == 0)
        #expect(batch.createdAt == ISOTime.milliseconds("2025-01-01T00:00:00Z"))
        #expect(batch.llmqID == nil)
    }

    @Test func createSendsTheFilesLinesInline() async throws {
        let scratch = try BatchScratch()
        let created = batchJSON("msgbatch_1", created: "2025-01-01T00:00:00Z")
        let transport = BatchScriptTransport { _ in BatchScriptTransport.json(created) }
        let api = api(transport)
        let lines = try ["r1", "r2"].map {
            try api.inputLine(customID: $0, canonical: try JSONParser.parse(batchCanonical), route: route)
        }
        let file = try scratch.file("b.jsonl", lines: lines)
        #expect(try await api.upload(file: file, name: "b.jsonl", key: "k") == nil)
        let batch = try await api.create(file: file, inputFileID: nil, llmqID: "job-b1", route: route, key: "k")
        #expect(batch.id == "msgbatch_1")
        let sent = try JSONParser.parse(transport.requests[0].body)
        #expect(transport.requests[0].url == "http://anthropic.test/v1/messages/batches")
        #expect(sent["requests"]?.arrayValue?.map { $0["custom_id"] } == [.string("r1"), .string("r2")])
        #expect(sent["requests"]?.arrayValue?.first?["params"]?["model"] == .string("claude-sonnet-4-5"))
    }

    @Test func findTakesTheBatchOfTheSameSizeCreatedNearestTheIntent() async throws {
        let transport = BatchScriptTransport { request in
            if request.url.contains("after_id=msgbatch_2") {
                return BatchScriptTransport.json(
                    #"{"data":["# + batchJSON("msgbatch_3", created: "2025-01-01T00:00:05Z") + ","
                        + batchJSON("msgbatch_4", created: "2024-12-01T00:00:00Z")
                        + #"],"has_more":true,"first_id":"msgbatch_3","last_id":"msgbatch_4"}"#)
            }
            return BatchScriptTransport.json(
                #"{"data":["# + batchJSON("msgbatch_1", created: "2025-01-01T00:10:00Z") + ","
                    + batchJSON("msgbatch_2", created: "2025-01-01T00:00:30Z", counts: (1, 0))
                    + #"],"has_more":true,"first_id":"msgbatch_1","last_id":"msgbatch_2"}"#)
        }
        let intent = try #require(ISOTime.milliseconds("2025-01-01T00:00:00Z"))
        let found = try await api(transport).find(
            llmqID: "job-b1", inputFileID: nil, requestCount: 2, createdAfter: intent, excluding: [], key: "k")
        #expect(found?.id == "msgbatch_3")
        #expect(
            transport.requests.map(\.url) == [
                "http://anthropic.test/v1/messages/batches?limit=100",
                "http://anthropic.test/v1/messages/batches?limit=100&after_id=msgbatch_2",
            ])
    }

    @Test func findAllowsForClockSkewButNotMore() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"data":["# + batchJSON("msgbatch_1", created: "2024-12-31T23:58:00Z") + #"],"has_more":false}"#)
        }
        let intent = try #require(ISOTime.milliseconds("2025-01-01T00:00:00Z"))
        var api = api(transport)
        #expect(
            try await api.find(
                llmqID: "x", inputFileID: nil, requestCount: 2, createdAfter: intent, excluding: [], key: "k")?.id
                == "msgbatch_1")
        api.clockSkewMilliseconds = 60_000
        #expect(
            try await api.find(
                llmqID: "x", inputFileID: nil, requestCount: 2, createdAfter: intent, excluding: [], key: "k") == nil)
    }

    @Test func anHTTPErrorIsTheProvidersFailure() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"type":"error","error":{"type":"not_found_error","message":"batch not found"},"request_id":"req_1"}"#,
                status: 404)
        }
        let error = await #expect(throws: ProviderFailure.self) {
            try await api(transport).cancel(RemoteBatch(id: "msgbatch_x", status: "", phase: .running), key: "k")
        }
        #expect(transport.requests[0].url == "http://anthropic.test/v1/messages/batches/msgbatch_x/cancel")
        #expect(error?.type == "not_found_error")
        #expect(error?.message == "batch not found")
    }
}

// MARK: - Gemini

@Suite struct GeminiBatchAPITests {
    let route = ModelRouter.route("gemini-2.5-flash")!

    func api(_ transport: any HTTPTransport = BatchScriptTransport { _ in HTTPResponse(status: 500) })
        -> GeminiBatchAPI
    {
        GeminiBatchAPI(adapter: GeminiAdapter(baseURL: "http://gemini.test"), transport: transport)
    }

    static let operation = #"""
        {"name":"batches/b123","metadata":{"@type":"type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
         "model":"models/gemini-2.5-flash","displayName":"job1","state":"BATCH_STATE_PENDING","createTime":"2025-07-01T00:00:00Z",
         "batchStats":{"requestCount":"1","pendingRequestCount":"1"}}}
        """#

    @Test func anInputLineIsTheGenerateContentBodyUnderKeyAndRequest() throws {
        let line = try api().inputLine(customID: "r1", canonical: try JSONParser.parse(batchCanonical), route: route)
        #expect(String(decoding: line, as: UTF8.self).hasPrefix(#"{"key":"r1","request":{"#))
        let json = try JSONParser.parse(line)
        #expect(json["request"]?["generationConfig"]?["maxOutputTokens"] == .int(50))
        #expect(json["request"]?["contents"]?.arrayValue?.first?["role"] == .string("user"))
    }

    @Test func aSmallBatchGoesInlineWithItsKeysAsMetadata() async throws {
        let scratch = try BatchScratch()
        let transport = BatchScriptTransport { _ in BatchScriptTransport.json(Self.operation) }
        let api = api(transport)
        let lines = try ["r1", "r2"].map {
            try api.inputLine(customID: $0, canonical: try JSONParser.parse(batchCanonical), route: route)
        }
        let file = try scratch.file("b.jsonl", lines: lines)
        #expect(try await api.upload(file: file, name: "b.jsonl", key: "g") == nil)
        #expect(transport.requests.isEmpty)
        let batch = try await api.create(file: file, inputFileID: nil, llmqID: "job1", route: route, key: "g")
        #expect(batch.id == "batches/b123")
        #expect(batch.llmqID == "job1")
        #expect(batch.phase == .running)
        #expect(batch.total == 1)
        #expect(batch.createdAt == ISOTime.milliseconds("2025-07-01T00:00:00Z"))
        let sent = transport.requests[0]
        #expect(sent.url == "http://gemini.test/v1beta/models/gemini-2.5-flash:batchGenerateContent")
        #expect(sent.headers["x-goog-api-key"] == "g")
        let body = try JSONParser.parse(sent.body)
        #expect(body["batch"]?["displayName"] == .string("job1"))
        let requests = try #require(body["batch"]?["inputConfig"]?["requests"]?["requests"]?.arrayValue)
        #expect(requests.map { $0["metadata"]?["key"] } == [.string("r1"), .string("r2")])
        #expect(requests[0]["request"]?["generationConfig"]?["maxOutputTokens"] == .int(50))
    }

    @Test func aLargeBatchIsUploadedResumablyAndCreatedFromTheFile() async throws {
        let scratch = try BatchScratch()
        let file = try scratch.file("b.jsonl", "{\"key\":\"r1\",\"request\":{}}\n")
        let transport = BatchScriptTransport { request in
            if request.url.hasSuffix("/upload/v1beta/files") {
                return BatchScriptTransport.json("{}", headers: ["x-goog-upload-url": "http://gemini.test/up?id=9"])
            }
            if request.url.hasPrefix("http://gemini.test/up") {
                return BatchScriptTransport.json(
                    #"{"file":{"name":"files/abc123","mimeType":"application/jsonl"}}"#,
                    headers: ["x-goog-upload-status": "final"])
            }
            return BatchScriptTransport.json(Self.operation)
        }
        var api = api(transport)
        api.inlineMaxBytes = 4
        let fileName = try await api.upload(file: file, name: "b.jsonl", key: "g")
        #expect(fileName == "files/abc123")
        let start = transport.requests[0]
        #expect(start.headers["X-Goog-Upload-Protocol"] == "resumable")
        #expect(start.headers["X-Goog-Upload-Command"] == "start")
        #expect(start.headers["X-Goog-Upload-Header-Content-Length"] == "26")
        #expect(start.headers["x-goog-api-key"] == "g")
        let finish = transport.requests[1]
        #expect(finish.url == "http://gemini.test/up?id=9")
        #expect(finish.headers["X-Goog-Upload-Command"] == "upload, finalize")
        #expect(finish.headers["X-Goog-Upload-Offset"] == "0")
        #expect(finish.body.count == 26)
        _ = try await api.create(file: file, inputFileID: fileName, llmqID: "job1", route: route, key: "g")
        let body = try JSONParser.parse(transport.requests[2].body)
        #expect(body["batch"]?["inputConfig"] == .object(["fileName": .string("files/abc123")]))
    }

    @Test func findListsPagesForTheDisplayName() async throws {
        let transport = BatchScriptTransport { request in
            if request.url.contains("pageToken=next") {
                return BatchScriptTransport.json(#"{"operations":["# + Self.operation + "]}")
            }
            return BatchScriptTransport.json(
                #"{"operations":[{"name":"batches/other","metadata":{"displayName":"x","state":"BATCH_STATE_SUCCEEDED"}}],"#
                    + #""nextPageToken":"next"}"#)
        }
        let found = try await api(transport).find(
            llmqID: "job1", inputFileID: nil, requestCount: 1, createdAfter: 0, excluding: [], key: "g")
        #expect(found?.id == "batches/b123")
        #expect(
            transport.requests.map(\.url) == [
                "http://gemini.test/v1beta/batches?pageSize=100",
                "http://gemini.test/v1beta/batches?pageSize=100&pageToken=next",
            ])
    }

    @Test func cancelThenReadsTheBatchAgain() async throws {
        let transport = BatchScriptTransport { request in
            request.url.hasSuffix(":cancel")
                ? BatchScriptTransport.json("{}")
                : BatchScriptTransport.json(
                    #"{"name":"batches/b123","metadata":{"displayName":"job1","state":"BATCH_STATE_CANCELLED"}}"#)
        }
        let batch = try await api(transport).cancel(
            RemoteBatch(id: "batches/b123", status: "", phase: .running), key: "g")
        #expect(
            transport.requests.map(\.url) == [
                "http://gemini.test/v1beta/batches/b123:cancel", "http://gemini.test/v1beta/batches/b123",
            ])
        #expect(batch.phase == .ended)
    }

    @Test func inlineResponsesAreDownloadedAsKeyedLines() async throws {
        let scratch = try BatchScratch()
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"""
                {"name":"batches/b123","metadata":{"displayName":"job1","state":"BATCH_STATE_SUCCEEDED",
                 "output":{"inlinedResponses":{"inlinedResponses":[
                  {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"4"}]},"finishReason":"STOP","index":0}],
                   "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"thoughtsTokenCount":2,"cachedContentTokenCount":1}},"metadata":{"key":"r1"}},
                  {"error":{"code":3,"message":"Request contains an invalid argument."},"metadata":{"key":"r2"}}]}}}}
                """#)
        }
        let api = api(transport)
        let batch = try await api.get(RemoteBatch(id: "batches/b123", status: "", phase: .running), key: "g")
        #expect(batch.phase == .ended)
        #expect(batch.outputLocation == nil)
        let file = scratch.directory.appendingPathComponent("results.jsonl")
        try await api.download(batch, key: "g", to: file)
        #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2)
        #expect(text.hasPrefix(#"{"key":"r1","response":{"#))
        let outcomes = try batchResults(api, file)
        let answer = try #require(batchAnswer(outcomes["r1"]))
        #expect(answer.text == "4")
        #expect(answer.finishReason == "stop")
        #expect(answer.usage == Usage(inputTokens: 2, cachedInputTokens: 1, outputTokens: 3, reasoningTokens: 2))
        let failure = try #require(batchFailure(outcomes["r2"]))
        #expect(failure.status == 400)
        #expect(failure.type == "INVALID_ARGUMENT")
        #expect(failure.message == "Request contains an invalid argument.")
    }

    @Test func inlineResponsesWithoutTheirMetadataAreKeyedByPosition() async throws {
        let scratch = try BatchScratch()
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"""
                {"name":"batches/b9","metadata":{"displayName":"job1","state":"BATCH_STATE_SUCCEEDED",
                 "output":{"inlinedResponses":{"inlinedResponses":[
                  {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"4"}]},"finishReason":"STOP","index":0}]}},
                  {"error":{"code":3,"message":"bad"}}]}}}}
                """#)
        }
        let api = api(transport)
        let batch = try await api.get(RemoteBatch(id: "batches/b9", status: "", phase: .running), key: "g")
        let file = scratch.directory.appendingPathComponent("results.jsonl")
        try await api.download(batch, key: "g", to: file)
        let outcomes = try batchResults(api, file)
        #expect(try #require(batchAnswer(outcomes["#0"])).text == "4")
        #expect(try #require(batchFailure(outcomes["#1"])).message == "bad")
    }

    @Test func resultLinesWithoutAnIdAreSkippedNotFatal() throws {
        let scratch = try BatchScratch()
        let file = scratch.directory.appendingPathComponent("results.jsonl")
        try Data(
            (#"{"result":{"type":"expired"}}"# + "\n"
                + #"{"custom_id":"r1","result":{"type":"expired"}}"# + "\n").utf8
        ).write(to: file)
        var seen: [String] = []
        try AnthropicBatchAPI(
            adapter: AnthropicAdapter(baseURL: "http://anthropic.test"),
            transport: BatchScriptTransport { _ in HTTPResponse(status: 500) }
        ).results(in: file) { seen.append($0.customID) }
        #expect(seen == ["r1"])
    }

    @Test func responsesFileLinesFromProvidersMDAreRead() throws {
        let scratch = try BatchScratch()
        let file = try scratch.file(
            "results.jsonl",
            #"""
            {"key":"r1","response":{"candidates":[{"content":{"role":"model","parts":[{"text":"{\"a\":4}"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":17,"totalTokenCount":22,"cachedContentTokenCount":0},"modelVersion":"gemini-2.5-flash","responseId":"FugfaZ"}}
            {"key":"r2","error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED"}}
            {"key":"r3","response":{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}}
            """#)
        let outcomes = try batchResults(api(), file)
        let answer = try #require(batchAnswer(outcomes["r1"]))
        #expect(answer.text == #"{"a":4}"#)
        #expect(answer.model == "gemini-2.5-flash")
        #expect(answer.usage == Usage(inputTokens: 3, outputTokens: 19, reasoningTokens: 17))
        let failure = try #require(batchFailure(outcomes["r2"]))
        #expect(failure.status == 429)
        #expect(failure.type == "RESOURCE_EXHAUSTED")
        #expect(batchAnswer(outcomes["r3"])?.finishReason == "content_filter")
    }

    @Test(arguments: [
        ("BATCH_STATE_PENDING", RemoteBatch.Phase.running), ("BATCH_STATE_RUNNING", .running),
        ("BATCH_STATE_SUCCEEDED", .ended), ("BATCH_STATE_FAILED", .ended), ("BATCH_STATE_CANCELLED", .ended),
        ("BATCH_STATE_EXPIRED", .ended), ("JOB_STATE_SUCCEEDED", .ended), ("JOB_STATE_RUNNING", .running),
    ])
    func statesMapToPhases(_ state: String, _ phase: RemoteBatch.Phase) async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"name":"batches/b1","metadata":{"state":"\#(state)","output":{"responsesFile":"files/batch-xyz"}},"#
                    + #""error":{"code":3,"message":"bad input file"}}"#)
        }
        let batch = try await api(transport).get(RemoteBatch(id: "batches/b1", status: "", phase: .running), key: "g")
        #expect(batch.phase == phase)
        #expect(batch.status == state)
        #expect(batch.outputLocation == "files/batch-xyz")
        #expect(batch.message == "bad input file")
    }

    @Test func anHTTPErrorIsTheProvidersFailure() async throws {
        let transport = BatchScriptTransport { _ in
            BatchScriptTransport.json(
                #"{"error":{"code":404,"message":"Batch not found.","status":"NOT_FOUND"}}"#, status: 404)
        }
        let error = await #expect(throws: ProviderFailure.self) {
            try await api(transport).get(RemoteBatch(id: "batches/nope", status: "", phase: .running), key: "g")
        }
        #expect(error?.type == "NOT_FOUND")
        #expect(error?.message == "Batch not found.")
    }
}

// MARK: - Shared

@Suite struct BatchAPISharedTests {
    @Test func resultsAreReadLineByLineAcrossChunkBoundaries() throws {
        let scratch = try BatchScratch()
        var text = ""
        for index in 0..<3000 {
            text +=
                #"{"custom_id":"r\#(index)","error":{"code":"batch_expired","message":"\#(String(repeating: "x", count: index % 700))"}}"#
            text += index % 3 == 0 ? "\r\n" : "\n"
        }
        let file = try scratch.file("out.jsonl", String(text.dropLast()))
        let api = OpenAIBatchAPI(
            adapter: OpenAIAdapter(baseURL: "http://x"),
            transport: BatchScriptTransport { _ in
                HTTPResponse(status: 500)
            })
        var ids: [String] = []
        try api.results(in: file) { ids.append($0.customID) }
        #expect(ids == (0..<3000).map { "r\($0)" })
    }

    @Test func aMissingFileIsAFileError() {
        let api = AnthropicBatchAPI(
            adapter: AnthropicAdapter(baseURL: "http://x"),
            transport: BatchScriptTransport { _ in
                HTTPResponse(status: 500)
            })
        #expect(throws: BatchFileError.self) {
            try api.results(in: URL(fileURLWithPath: "/nonexistent/llmq/results.jsonl")) { _ in }
        }
    }

    @Test func theFactoryGivesABatchAPIWhereTheProviderHasOne() throws {
        let transport = BatchScriptTransport { _ in HTTPResponse(status: 500) }
        let environment = [
            "OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k", "TOGETHER_API_KEY": "k",
            "OPENAI_BASE_URL": "http://localhost:8000/v1",
        ]
        func endpoint(_ provider: Provider) throws -> ProviderEndpoint {
            try ProviderDirectory.endpoint(for: provider, environment: environment)
        }
        #expect(try endpoint(.openai).batchAPI(transport: transport)?.provider == .openai)
        #expect(try endpoint(.anthropic).batchAPI(transport: transport)?.provider == .anthropic)
        #expect(try endpoint(.gemini).batchAPI(transport: transport)?.provider == .gemini)
        #expect(try endpoint(.openaiCompatible).batchAPI(transport: transport) == nil)
        #expect(try endpoint(.together).batchAPI(transport: transport)?.provider == .together)
    }
}
