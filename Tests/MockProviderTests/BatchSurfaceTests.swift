import LLMQCore
import Testing

@testable import MockProvider

/// Raw HTTP to the batch endpoints: one connection per request, JSON bodies parsed.
struct BatchHTTP {
    static let openAI = [("authorization", "Bearer sk-test"), ("content-type", "application/json")]
    static let anthropic = [
        ("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01"), ("content-type", "application/json"),
    ]
    static let gemini = [("x-goog-api-key", "g-test"), ("content-type", "application/json")]

    let port: Int

    func send(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = openAI
    ) throws -> RawHTTPResponse {
        try RawHTTPConnection(port: port).request(method: method, path: path, body: body, headers: headers)
    }

    /// Sends and expects `status`, returning the body as JSON.
    func json(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = openAI,
        status: Int = 200, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> JSONValue {
        let response = try send(method, path, body: body, headers: headers)
        #expect(response.status == status, "\(method) \(path): \(response.text)", sourceLocation: sourceLocation)
        return try response.json()
    }

    // MARK: OpenAI

    /// A multipart upload of `content` as `filename` with `purpose`.
    func upload(_ content: String, filename: String = "requests.jsonl", purpose: String = "batch") throws
        -> RawHTTPResponse
    {
        let boundary = "llmq-test-boundary"
        let body =
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n\(purpose)\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\n\(content)\r\n--\(boundary)--\r\n"
        return try send(
            "POST", "/v1/files", body: body,
            headers: [
                ("authorization", "Bearer sk-test"), ("content-type", "multipart/form-data; boundary=\(boundary)"),
            ])
    }

    /// Uploads `lines` and creates a batch on them; the create answer.
    func openAIBatch(_ lines: [String], extra: String = "", status: Int = 200) throws -> JSONValue {
        let file = try upload(lines.joined(separator: "\n") + "\n").json()
        let fileID = try #require(file["id"]?.stringValue)
        return try json(
            "POST", "/v1/batches",
            body:
                "{\"input_file_id\":\"\(fileID)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\""
                + extra + "}", status: status)
    }

    /// A file's lines, parsed.
    func lines(ofFile id: String) throws -> [JSONValue] {
        let response = try send("GET", "/v1/files/\(id)/content")
        #expect(response.status == 200)
        return try response.text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }
}

/// A batch input line for OpenAI.
private func openAILine(_ id: String, _ prompt: String = "Say hi.", model: String = "gpt-4o-mini", extra: String = "")
    -> String
{
    "{\"custom_id\":\"\(id)\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
        + chatBody(prompt, model: model, extra: extra) + "}"
}

/// An Anthropic Messages body.
private func messagesBody(_ prompt: String, maxTokens: Int? = 64) -> String {
    var escaped: [UInt8] = []
    CanonicalJSON.writeString(prompt, to: &escaped)
    var body = "{\"model\":\"claude-haiku-4-5\""
    if let maxTokens { body += ",\"max_tokens\":\(maxTokens)" }
    return body + ",\"messages\":[{\"role\":\"user\",\"content\":\(String(decoding: escaped, as: UTF8.self))}]}"
}

/// A Gemini `GenerateContentRequest` body.
private func geminiBody(_ prompt: String) -> String {
    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"\(prompt)\"}]}]}"
}

@Suite struct BatchTimelineTests {
    @Test func phasesFollowTime() {
        let timeline = BatchTimeline(created: 1000, seconds: 100, expires: false)
        #expect(timeline.phase(at: 1000) == .validating)
        #expect(timeline.phase(at: 1004.9) == .validating)
        #expect(timeline.phase(at: 1005) == .inProgress)
        #expect(timeline.phase(at: 1094.9) == .inProgress)
        #expect(timeline.phase(at: 1095) == .finalizing)
        #expect(timeline.phase(at: 1100) == .ended(.completed))
        #expect(timeline.endedAt(at: 1200) == 1100)
        #expect(timeline.endedAt(at: 1099) == nil)
    }

    @Test func requestsCompleteEvenlyWhileInProgress() {
        let timeline = BatchTimeline(created: 0, seconds: 100, expires: false)
        #expect(timeline.done(of: 90, at: 5) == 0)
        #expect(timeline.done(of: 90, at: 50) == 45)
        #expect(timeline.done(of: 90, at: 95) == 90)
        #expect(timeline.done(of: 90, at: 1e9) == 90)
    }

    @Test func aZeroDurationEndsAtOnce() {
        let timeline = BatchTimeline(created: 10, seconds: 0, expires: false)
        #expect(timeline.phase(at: 10) == .ended(.completed))
        #expect(timeline.done(of: 7, at: 10) == 7)
    }

    @Test func anExpiringBatchStopsAtHalfAndEndsExpired() {
        let timeline = BatchTimeline(created: 0, seconds: 100, expires: true)
        #expect(timeline.done(of: 9, at: 94) == 4)
        #expect(timeline.phase(at: 97) == .inProgress)
        #expect(timeline.phase(at: 100) == .ended(.expired))
        #expect(timeline.done(of: 9, at: 100) == 4)
    }

    @Test func cancellingFreezesProgressUntilTheBatchIsSeenAgain() {
        var timeline = BatchTimeline(created: 0, seconds: 100, expires: false)
        timeline.cancelledAt = 50
        #expect(timeline.phase(at: 60) == .cancelling)
        #expect(timeline.done(of: 90, at: 60) == 45)
        timeline.cancelSettledAt = 61
        #expect(timeline.phase(at: 61) == .ended(.cancelled))
        #expect(timeline.phase(at: 200) == .ended(.cancelled))
        #expect(timeline.done(of: 90, at: 200) == 45)
        #expect(timeline.endedAt(at: 200) == 61)
    }

    @Test func progressContinuesForAClientThatComesBack() {
        // A store with a manual clock: the batch is where time has taken it, whoever asks.
        let clock = ManualClock(now: 5000)
        var configuration = MockProviderServer.Batches()
        configuration.duration = .seconds(100)
        let store = MockBatchStore(configuration: configuration, seed: 0, now: { clock.now })
        let timeline = store.timeline(id: "batch_x", created: store.now())
        let lines = (0..<10).map { BatchLine(key: "k\($0)", status: 200, body: [], requestID: "", lineID: "") }
        store.insert(
            MockBatch(
                provider: .openAI, id: "batch_x", timeline: timeline, lines: lines,
                runOrder: Array(0..<10), shuffleSeed: 1))
        clock.now = 5050
        let seen = store.observe("batch_x", provider: .openAI, at: store.now())
        #expect(seen?.ran(at: clock.now).filter { $0 }.count == 5)
        #expect(store.observe("batch_x", provider: .anthropic, at: clock.now) == nil)
        clock.now = 5100
        #expect(store.observe("batch_x", provider: .openAI, at: store.now())?.timeline.hasEnded(at: clock.now) == true)
    }

    @Test func failingLinesAndExpiringBatchesArePickedByHash() {
        var configuration = MockProviderServer.Batches()
        configuration.failingLines = 0.5
        configuration.expiring = 0.5
        let store = MockBatchStore(configuration: configuration, seed: 7)
        let again = MockBatchStore(configuration: configuration, seed: 7)
        let keys = (0..<200).map { "request-\($0)" }
        let failing = keys.filter(store.lineFails)
        #expect(failing == keys.filter(again.lineFails))
        #expect((60...140).contains(failing.count))
        let expiring = keys.filter { store.timeline(id: $0, created: 0).expires }
        #expect((60...140).contains(expiring.count))
        #expect(expiring == keys.filter { again.timeline(id: $0, created: 0).expires })
    }
}

private final class ManualClock: @unchecked Sendable {
    var now: Double
    init(now: Double) { self.now = now }
}

@Suite struct MultipartFormDataTests {
    @Test func partsAreSplitWithNamesFilenamesAndBodies() throws {
        let body = Array(
            ("--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n"
                + "Content-Type: application/jsonl\r\n\r\nline 1\r\nline 2\n\r\n--b--\r\n").utf8)
        #expect(MultipartFormData.boundary(contentType: "multipart/form-data; boundary=\"b\"") == "b")
        #expect(MultipartFormData.boundary(contentType: "application/json") == nil)
        let form = try #require(MultipartFormData(body, boundary: "b"))
        #expect(form.parts.map(\.name) == ["purpose", "file"])
        #expect(form.part("purpose")?.text == "batch")
        #expect(form.part("file")?.filename == "a.jsonl")
        #expect(form.part("file")?.contentType == "application/jsonl")
        #expect(form.part("file")?.text == "line 1\r\nline 2\n")
        #expect(MultipartFormData(Array("no boundary here".utf8), boundary: "b") == nil)
    }
}

@Suite struct OpenAIBatchTests {
    @Test func aWholeCycleAnswersEachLineAsTheOnlineEndpointDoes() async throws {
        try await withMockServer({ $0.replyTokens = 6 }) { server in
            let http = BatchHTTP(port: server.port)
            let lines = (0..<4).map { openAILine("q\($0)", "Question \($0)?", extra: ",\"seed\":\($0)") }
            let refused = openAILine("bad", extra: ",\"temperature\":5")
            let created = try http.openAIBatch(
                lines + [refused], extra: ",\"metadata\":{\"llmq_job\":\"job-1\",\"llmq_batch\":\"b-7\"}")
            let id = try #require(created["id"]?.stringValue)
            #expect(id.hasPrefix("batch_"))
            #expect(created["object"] == .string("batch"))
            #expect(created["status"] == .string("validating"))
            #expect(created["request_counts"] == .object(["total": .int(0), "completed": .int(0), "failed": .int(0)]))
            #expect(created["metadata"] == .object(["llmq_job": .string("job-1"), "llmq_batch": .string("b-7")]))
            #expect(created["output_file_id"] == .null)
            #expect(created["model"] == .string("gpt-4o-mini"))
            let fields = try #require(created.objectValue?.keys)
            for key in [
                "id", "object", "endpoint", "errors", "input_file_id", "completion_window", "status", "output_file_id",
                "error_file_id", "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at",
                "failed_at", "expired_at", "cancelling_at", "cancelled_at", "request_counts", "metadata", "usage",
            ] {
                #expect(fields.contains(key), "missing \(key)")
            }

            // Zero duration: ended at the first poll.
            let batch = try http.json("GET", "/v1/batches/\(id)")
            #expect(batch["status"] == .string("completed"))
            #expect(batch["request_counts"] == .object(["total": .int(5), "completed": .int(4), "failed": .int(1)]))
            #expect(batch["metadata"] == created["metadata"])
            let created_at = try #require(batch["created_at"]?.intValue)
            #expect(batch["expires_at"]?.intValue == created_at + 86_400)
            #expect(batch["completed_at"]?.intValue != nil)
            #expect(batch["usage"]?["output_tokens"] == .int(24))

            let output = try http.lines(ofFile: #require(batch["output_file_id"]?.stringValue))
            #expect(Set(output.compactMap { $0["custom_id"]?.stringValue }) == ["q0", "q1", "q2", "q3"])
            #expect(output.count == 4)
            for line in output {
                let customID = try #require(line["custom_id"]?.stringValue)
                let index = try #require(Int(customID.dropFirst()))
                let online = try http.json(
                    "POST", "/v1/chat/completions", body: chatBody("Question \(index)?", extra: ",\"seed\":\(index)"))
                let response = try #require(line["response"])
                #expect(response["status_code"] == .int(200))
                #expect(response["request_id"]?.stringValue?.hasPrefix("req_") == true)
                #expect(response["body"]?["choices"] == online["choices"])
                #expect(response["body"]?["usage"] == online["usage"])
                #expect(line["error"] == .null)
                #expect(line["id"]?.stringValue?.hasPrefix("batch_req_") == true)
            }
            let errors = try http.lines(ofFile: #require(batch["error_file_id"]?.stringValue))
            let onlineRefusal = try http.json(
                "POST", "/v1/chat/completions", body: chatBody(extra: ",\"temperature\":5"), status: 400)
            #expect(errors.count == 1)
            #expect(errors.first?["custom_id"] == .string("bad"))
            #expect(errors.first?["response"]?["status_code"] == .int(400))
            #expect(errors.first?["response"]?["body"] == onlineRefusal)

            let outputFile = try http.json("GET", "/v1/files/\(batch["output_file_id"]!.stringValue!)")
            #expect(outputFile["purpose"] == .string("batch_output"))

            let stats = server.stats
            #expect(stats.totalBatchesCreated == 1)
            #expect(stats.batchesCreated == [.openAI: 1])
            #expect(stats.filesUploaded == 1)
            #expect(stats.batchRequests == [id: 5])
        }
    }

    @Test func outputLinesComeUnordered() async throws {
        try await withMockServer({ $0.replyTokens = 2 }) { server in
            let http = BatchHTTP(port: server.port)
            let ids = (0..<60).map { "r\($0)" }
            let batch = try http.openAIBatch(ids.map { openAILine($0, "Question \($0)") })
            let ended = try http.json("GET", "/v1/batches/\(batch["id"]!.stringValue!)")
            let output = try http.lines(ofFile: #require(ended["output_file_id"]?.stringValue))
            let order = output.compactMap { $0["custom_id"]?.stringValue }
            #expect(Set(order) == Set(ids))
            #expect(order.count == ids.count)
            #expect(order != ids)
        }
    }

    @Test func uploadsAreCheckedAsTheFilesAPIChecksThem() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let notJSONL = try http.upload(openAILine("a"), filename: "requests.txt")
            #expect(notJSONL.status == 400)
            #expect(
                try notJSONL.json()["error"]?["message"] == .string("Invalid file format for Batch API. Must be .jsonl")
            )
            let badPurpose = try http.upload(openAILine("a"), purpose: "batches")
            #expect(badPurpose.status == 400)
            #expect(try badPurpose.json()["error"]?["param"] == .string("purpose"))
            let notMultipart = try http.send("POST", "/v1/files", body: "{}")
            #expect(notMultipart.status == 400)
            let noKey = try http.send("POST", "/v1/files", body: "{}", headers: [])
            #expect(noKey.status == 401)
            #expect(try noKey.json()["error"]?["code"] == .string("invalid_api_key"))

            let file = try http.upload(openAILine("a")).json()
            let id = try #require(file["id"]?.stringValue)
            #expect(id.hasPrefix("file-"))
            #expect(file["purpose"] == .string("batch"))
            #expect(file["filename"] == .string("requests.jsonl"))
            #expect(file["status"] == .string("processed"))
            #expect(try http.json("GET", "/v1/files/\(id)")["bytes"] == file["bytes"])
            #expect(try http.send("GET", "/v1/files/\(id)/content").text == openAILine("a"))
            #expect(try http.json("GET", "/v1/files")["data"]?[0]?["id"] == .string(id))
            let deleted = try http.json("DELETE", "/v1/files/\(id)")
            #expect(deleted == .object(["id": .string(id), "object": .string("file"), "deleted": .bool(true)]))
            let gone = try http.json("GET", "/v1/files/\(id)", status: 404)
            #expect(gone["error"]?["message"] == .string("No such File object: \(id)"))
            #expect(server.stats.filesUploaded == 1)
        }
    }

    @Test func createIsCheckedAtOnce() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let fileID = try #require(try http.upload(openAILine("a")).json()["id"]?.stringValue)
            let other = try #require(
                try http.upload("x", filename: "notes.txt", purpose: "user_data").json()["id"]?.stringValue)
            func create(_ body: String) throws -> JSONValue {
                try http.send("POST", "/v1/batches", body: body).json()
            }
            let base =
                "\"input_file_id\":\"\(fileID)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\""
            #expect(
                try create("{\(base),\"extra\":1}")["error"]?["message"]
                    == .string("Unrecognized request argument supplied: extra"))
            #expect(
                try create("{\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}")["error"]?["param"]
                    == .string("input_file_id"))
            let endpoint = try create(
                "{\"input_file_id\":\"\(fileID)\",\"endpoint\":\"/v1/chat\",\"completion_window\":\"24h\"}")
            #expect(endpoint["error"]?["param"] == .string("endpoint"))
            #expect(endpoint["error"]?["code"] == .string("invalid_value"))
            let window = try create(
                "{\"input_file_id\":\"\(fileID)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"1h\"}")
            #expect(window["error"]?["param"] == .string("completion_window"))
            let many = (0..<17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
            #expect(try create("{\(base),\"metadata\":{\(many)}}")["error"]?["param"] == .string("metadata"))
            #expect(try create("{\(base),\"metadata\":{\"k\":1}}")["error"]?["code"] == .string("invalid_type"))
            let missing = try http.send(
                "POST", "/v1/batches",
                body:
                    "{\"input_file_id\":\"file-nope\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
            )
            #expect(missing.status == 404)
            let purpose = try create(
                "{\"input_file_id\":\"\(other)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}")
            #expect(purpose["error"]?["param"] == .string("input_file_id"))
            #expect(server.stats.totalBatchesCreated == 0)
        }
    }

    @Test(arguments: [
        ("not json", "invalid_json_line", "{\"custom_id\":"),
        (
            "no custom_id", "missing_required_parameter",
            "{\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}"
        ),
        (
            "a GET", "invalid_value",
            "{\"custom_id\":\"x\",\"method\":\"GET\",\"url\":\"/v1/chat/completions\",\"body\":{}}"
        ),
        (
            "another url", "invalid_url",
            "{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}"
        ),
        (
            "no body", "missing_required_parameter",
            "{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\"}"
        ),
        ("a repeated custom_id", "duplicate_custom_id", openAILine("a")),
        ("another model", "mismatched_model", openAILine("z", model: "gpt-4o")),
    ])
    func aBadLineFailsTheBatchAtValidation(name: String, code: String, line: String) async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let created = try http.openAIBatch([openAILine("a"), line, openAILine("b")])
            #expect(created["status"] == .string("validating"))
            let batch = try http.json("GET", "/v1/batches/\(created["id"]!.stringValue!)")
            #expect(batch["status"] == .string("failed"), "\(name)")
            #expect(batch["failed_at"]?.intValue != nil)
            #expect(batch["output_file_id"] == .null)
            let error = try #require(batch["errors"]?["data"]?[0])
            #expect(error["code"] == .string(code), "\(name): \(error)")
            #expect(error["line"] == .int(2))
            #expect(batch["errors"]?["object"] == .string("list"))
            #expect(batch["request_counts"]?["total"] == .int(0))
            #expect(server.stats.totalBatchesCreated == 1)
        }
    }

    @Test func anEmptyFileFailsTheBatch() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let fileID = try #require(try http.upload("").json()["id"]?.stringValue)
            let created = try http.json(
                "POST", "/v1/batches",
                body:
                    "{\"input_file_id\":\"\(fileID)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
            )
            let batch = try http.json("GET", "/v1/batches/\(created["id"]!.stringValue!)")
            #expect(batch["errors"]?["data"]?[0]?["code"] == .string("empty_file"))
        }
    }

    @Test func cancelStopsTheBatchAndReportsTheRestCancelled() async throws {
        try await withMockServer({ $0.batches.duration = .seconds(600) }) { server in
            let http = BatchHTTP(port: server.port)
            let created = try http.openAIBatch([openAILine("a"), openAILine("b"), openAILine("c")])
            let id = try #require(created["id"]?.stringValue)
            #expect(try http.json("GET", "/v1/batches/\(id)")["status"] == .string("validating"))
            let cancelling = try http.json("POST", "/v1/batches/\(id)/cancel")
            #expect(cancelling["status"] == .string("cancelling"))
            #expect(cancelling["cancelling_at"]?.intValue != nil)
            #expect(cancelling["cancelled_at"] == .null)
            let cancelled = try http.json("GET", "/v1/batches/\(id)")
            #expect(cancelled["status"] == .string("cancelled"))
            #expect(cancelled["cancelled_at"]?.intValue != nil)
            #expect(cancelled["output_file_id"] == .null)
            let errors = try http.lines(ofFile: #require(cancelled["error_file_id"]?.stringValue))
            #expect(Set(errors.compactMap { $0["custom_id"]?.stringValue }) == ["a", "b", "c"])
            for line in errors {
                #expect(line["response"] == .null)
                #expect(line["error"]?["code"] == .string("batch_cancelled"))
            }
            // Again: answered as it is.
            #expect(try http.json("POST", "/v1/batches/\(id)/cancel")["status"] == .string("cancelled"))
            #expect(try http.send("POST", "/v1/batches/batch_nope/cancel").status == 404)
            #expect(try http.send("GET", "/v1/batches/batch_nope").status == 404)
        }
    }

    @Test func aCompletedBatchCannotBeCancelled() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let id = try #require(try http.openAIBatch([openAILine("a")])["id"]?.stringValue)
            let refused = try http.json("POST", "/v1/batches/\(id)/cancel", status: 400)
            #expect(refused["error"]?["message"] == .string("Cannot cancel a batch with status 'completed'."))
        }
    }

    @Test func anExpiringBatchKeepsTheLinesRunBeforeItsEnd() async throws {
        try await withMockServer({ $0.batches.expiring = 1 }) { server in
            let http = BatchHTTP(port: server.port)
            let ids = (0..<7).map { "e\($0)" }
            let created = try http.openAIBatch(ids.map { openAILine($0, $0) })
            let batch = try http.json("GET", "/v1/batches/\(created["id"]!.stringValue!)")
            #expect(batch["status"] == .string("expired"))
            #expect(batch["expired_at"]?.intValue != nil)
            #expect(batch["completed_at"] == .null)
            #expect(batch["request_counts"]?["completed"] == .int(3))
            let output = try http.lines(ofFile: #require(batch["output_file_id"]?.stringValue))
            let errors = try http.lines(ofFile: #require(batch["error_file_id"]?.stringValue))
            #expect(output.count == 3)
            #expect(errors.count == 4)
            #expect(errors.allSatisfy { $0["error"]?["code"] == .string("batch_expired") && $0["response"] == .null })
            let seen = (output + errors).compactMap { $0["custom_id"]?.stringValue }
            #expect(Set(seen) == Set(ids))
            #expect(seen.count == ids.count)
        }
    }

    @Test func failingLinesAreAnsweredWithTheServerError() async throws {
        try await withMockServer({ $0.batches.failingLines = 0.5 }) { server in
            let http = BatchHTTP(port: server.port)
            let ids = (0..<40).map { "f\($0)" }
            var failedSets: [Set<String>] = []
            for _ in 0..<2 {
                let created = try http.openAIBatch(ids.map { openAILine($0, $0) })
                let batch = try http.json("GET", "/v1/batches/\(created["id"]!.stringValue!)")
                let errors = try http.lines(ofFile: #require(batch["error_file_id"]?.stringValue))
                for line in errors {
                    #expect(line["response"]?["status_code"] == .int(500))
                    #expect(line["response"]?["body"]?["error"]?["type"] == .string("server_error"))
                }
                failedSets.append(Set(errors.compactMap { $0["custom_id"]?.stringValue }))
            }
            // Picked by custom_id: the same lines fail every time.
            #expect(failedSets[0] == failedSets[1])
            #expect(!failedSets[0].isEmpty && failedSets[0].count < ids.count)
        }
    }

    @Test func batchesAreListedNewestFirstWithACursor() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            var ids: [String] = []
            for index in 0..<3 {
                ids.append(try #require(try http.openAIBatch([openAILine("a\(index)")])["id"]?.stringValue))
            }
            let first = try http.json("GET", "/v1/batches?limit=2")
            #expect(first["object"] == .string("list"))
            #expect(first["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[2], ids[1]])
            #expect(first["has_more"] == .bool(true))
            #expect(first["last_id"] == .string(ids[1]))
            let second = try http.json("GET", "/v1/batches?limit=2&after=\(ids[1])")
            #expect(second["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[0]])
            #expect(second["has_more"] == .bool(false))
            #expect(try http.send("GET", "/v1/batches?limit=0").status == 400)
        }
    }

    @Test func aGeminiKeyOnSharedPathsReachesGemini() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            _ = try http.openAIBatch([openAILine("a")])
            #expect(try http.json("GET", "/v1/batches")["data"]?.arrayValue?.count == 1)
            #expect(try http.json("GET", "/v1/batches", headers: BatchHTTP.gemini)["operations"] == .array([]))
            #expect(try http.json("GET", "/v1/batches?key=g-test", headers: [])["operations"] == .array([]))
            #expect(server.stats.count("GET /v1beta/batches", status: 200) == 2)
        }
    }
}

@Suite struct AnthropicBatchTests {
    func create(_ http: BatchHTTP, _ requests: [(String, String)], status: Int = 200) throws -> JSONValue {
        let entries = requests.map { "{\"custom_id\":\"\($0.0)\",\"params\":\($0.1)}" }.joined(separator: ",")
        return try http.json(
            "POST", "/v1/messages/batches", body: "{\"requests\":[\(entries)]}", headers: BatchHTTP.anthropic,
            status: status)
    }

    func results(_ http: BatchHTTP, _ id: String) throws -> [String: JSONValue] {
        let response = try http.send("GET", "/v1/messages/batches/\(id)/results", headers: BatchHTTP.anthropic)
        #expect(response.status == 200)
        var results: [String: JSONValue] = [:]
        for line in response.text.split(separator: "\n") {
            let json = try JSONParser.parse(String(line))
            let key = try #require(json["custom_id"]?.stringValue)
            #expect(results[key] == nil, "\(key) twice")
            results[key] = json["result"]
        }
        return results
    }

    @Test func aWholeCycleAnswersEachRequestAsTheOnlineEndpointDoes() async throws {
        try await withMockServer({ $0.replyTokens = 5 }) { server in
            let http = BatchHTTP(port: server.port)
            let requests =
                (0..<4).map { ("r\($0)", messagesBody("Question \($0)?")) } + [
                    ("no-max", messagesBody("Hi", maxTokens: nil))
                ]
            let created = try create(http, requests)
            let id = try #require(created["id"]?.stringValue)
            #expect(id.hasPrefix("msgbatch_01"))
            #expect(created["type"] == .string("message_batch"))
            #expect(created["processing_status"] == .string("in_progress"))
            #expect(
                created["request_counts"]
                    == .object([
                        "processing": .int(5), "succeeded": .int(0), "errored": .int(0), "canceled": .int(0),
                        "expired": .int(0),
                    ]))
            #expect(created["results_url"] == .null)
            #expect(created["ended_at"] == .null)
            #expect(created["archived_at"] == .null)
            let createdAt = try #require(created["created_at"]?.stringValue.flatMap(ISOTime.milliseconds))
            let expiresAt = try #require(created["expires_at"]?.stringValue.flatMap(ISOTime.milliseconds))
            #expect(expiresAt - createdAt == 86_400_000)

            let batch = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            #expect(batch["processing_status"] == .string("ended"))
            #expect(
                batch["request_counts"]
                    == .object([
                        "processing": .int(0), "succeeded": .int(4), "errored": .int(1), "canceled": .int(0),
                        "expired": .int(0),
                    ]))
            #expect(batch["results_url"] == .string("http://127.0.0.1/v1/messages/batches/\(id)/results"))
            #expect(batch["ended_at"]?.stringValue != nil)

            let results = try results(http, id)
            #expect(Set(results.keys) == Set(requests.map(\.0)))
            for (key, body) in requests.prefix(4) {
                let online = try http.json("POST", "/v1/messages", body: body, headers: BatchHTTP.anthropic)
                #expect(results[key]?["type"] == .string("succeeded"))
                #expect(results[key]?["message"]?["content"] == online["content"])
                #expect(results[key]?["message"]?["usage"] == online["usage"])
            }
            let refusal = try http.json(
                "POST", "/v1/messages", body: messagesBody("Hi", maxTokens: nil), headers: BatchHTTP.anthropic,
                status: 400)
            #expect(results["no-max"]?["type"] == .string("errored"))
            #expect(results["no-max"]?["error"]?["type"] == .string("error"))
            #expect(results["no-max"]?["error"]?["error"] == refusal["error"])
            #expect(server.stats.batchesCreated == [.anthropic: 1])
            #expect(server.stats.batchRequests == [id: 5])
        }
    }

    @Test(arguments: [
        ("{}", "requests: Field required"),
        ("{\"requests\":[]}", "requests: List should have at least 1 item after validation, not 0"),
        ("{\"requests\":[],\"x\":1}", "x: Extra inputs are not permitted"),
        (
            "{\"requests\":[{\"custom_id\":\"a b\",\"params\":{}}]}",
            "requests.0.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
        ),
        ("{\"requests\":[{\"custom_id\":\"a\"}]}", "requests.0.params: Field required"),
        (
            "{\"requests\":[{\"custom_id\":\"a\",\"params\":{}},{\"custom_id\":\"a\",\"params\":{}}]}",
            "requests.1.custom_id: Duplicate custom_id 'a'; custom_id must be unique within a batch."
        ),
    ])
    func aBadCreateIsRefused(body: String, message: String) async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let refused = try http.json(
                "POST", "/v1/messages/batches", body: body, headers: BatchHTTP.anthropic, status: 400)
            #expect(refused["type"] == .string("error"))
            #expect(refused["error"]?["type"] == .string("invalid_request_error"))
            #expect(refused["error"]?["message"] == .string(message))
            #expect(server.stats.totalBatchesCreated == 0)
        }
    }

    @Test func headersAreCheckedAsOnline() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let noVersion = try http.send(
                "GET", "/v1/messages/batches", headers: [("x-api-key", "sk-ant"), ("content-type", "application/json")])
            #expect(noVersion.status == 400)
            let noKey = try http.send("GET", "/v1/messages/batches", headers: [("anthropic-version", "2023-06-01")])
            #expect(noKey.status == 401)
            let bearer = try http.send(
                "GET", "/v1/messages/batches",
                headers: [("authorization", "Bearer sk-ant"), ("anthropic-version", "2023-06-01")])
            #expect(bearer.status == 200)
        }
    }

    @Test func cancelEndsTheBatchWithTheRestCanceled() async throws {
        try await withMockServer({ $0.batches.duration = .seconds(600) }) { server in
            let http = BatchHTTP(port: server.port)
            let id = try #require(
                try create(http, [("a", messagesBody("a")), ("b", messagesBody("b"))])["id"]?.stringValue)
            let notYet = try http.json(
                "GET", "/v1/messages/batches/\(id)/results", headers: BatchHTTP.anthropic, status: 400)
            #expect(notYet["error"]?["type"] == .string("invalid_request_error"))
            let inProgress = try http.json(
                "DELETE", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic, status: 400)
            #expect(inProgress["error"]?["message"]?.stringValue?.contains("cancel it first") == true)
            let canceling = try http.json("POST", "/v1/messages/batches/\(id)/cancel", headers: BatchHTTP.anthropic)
            #expect(canceling["processing_status"] == .string("canceling"))
            #expect(canceling["cancel_initiated_at"]?.stringValue != nil)
            #expect(canceling["results_url"] == .null)
            let ended = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            #expect(ended["processing_status"] == .string("ended"))
            #expect(ended["request_counts"]?["canceled"] == .int(2))
            #expect(try results(http, id).values.allSatisfy { $0 == .object(["type": .string("canceled")]) })
            let deleted = try http.json("DELETE", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            #expect(deleted == .object(["id": .string(id), "type": .string("message_batch_deleted")]))
            let gone = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic, status: 404)
            #expect(gone["error"]?["type"] == .string("not_found_error"))
            #expect(
                try http.send("POST", "/v1/messages/batches/\(id)/cancel", headers: BatchHTTP.anthropic).status == 404)
        }
    }

    @Test func anEndedBatchCannotBeCanceled() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let id = try #require(try create(http, [("a", messagesBody("a"))])["id"]?.stringValue)
            _ = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            #expect(
                try http.send("POST", "/v1/messages/batches/\(id)/cancel", headers: BatchHTTP.anthropic).status == 400)
        }
    }

    @Test func anExpiringBatchKeepsTheResultsRunBeforeItsEnd() async throws {
        try await withMockServer({ $0.batches.expiring = 1 }) { server in
            let http = BatchHTTP(port: server.port)
            let requests = (0..<5).map { ("x\($0)", messagesBody("x\($0)")) }
            let id = try #require(try create(http, requests)["id"]?.stringValue)
            let batch = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            #expect(batch["request_counts"]?["succeeded"] == .int(2))
            #expect(batch["request_counts"]?["expired"] == .int(3))
            let results = try results(http, id)
            #expect(results.count == 5)
            #expect(results.values.filter { $0["type"] == .string("expired") }.count == 3)
            #expect(results.values.filter { $0["type"] == .string("succeeded") }.count == 2)
        }
    }

    @Test func resultsComeUnordered() async throws {
        try await withMockServer({ $0.replyTokens = 2 }) { server in
            let http = BatchHTTP(port: server.port)
            let keys = (0..<60).map { "k\($0)" }
            let id = try #require(try create(http, keys.map { ($0, messagesBody($0)) })["id"]?.stringValue)
            _ = try http.json("GET", "/v1/messages/batches/\(id)", headers: BatchHTTP.anthropic)
            let text = try http.send("GET", "/v1/messages/batches/\(id)/results", headers: BatchHTTP.anthropic).text
            let order = try text.split(separator: "\n").map {
                try JSONParser.parse(String($0))["custom_id"]?.stringValue
            }
            #expect(Set(order.compactMap { $0 }) == Set(keys))
            #expect(order.compactMap { $0 } != keys)
        }
    }

    @Test func listIsNewestFirstWithCursorsBothWays() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            var ids: [String] = []
            for index in 0..<3 {
                ids.append(try #require(try create(http, [("a", messagesBody("\(index)"))])["id"]?.stringValue))
            }
            let page = try http.json("GET", "/v1/messages/batches?limit=2", headers: BatchHTTP.anthropic)
            #expect(page["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[2], ids[1]])
            #expect(page["has_more"] == .bool(true))
            #expect(page["first_id"] == .string(ids[2]))
            #expect(page["last_id"] == .string(ids[1]))
            let after = try http.json(
                "GET", "/v1/messages/batches?limit=2&after_id=\(ids[1])", headers: BatchHTTP.anthropic)
            #expect(after["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[0]])
            #expect(after["has_more"] == .bool(false))
            let before = try http.json(
                "GET", "/v1/messages/batches?limit=1&before_id=\(ids[0])", headers: BatchHTTP.anthropic)
            #expect(before["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[1]])
            #expect(before["has_more"] == .bool(true))
        }
    }
}

@Suite struct GeminiBatchTests {
    func inlineBody(_ prompts: [String], displayName: String = "job-1") -> String {
        let requests = prompts.enumerated().map { index, prompt in
            "{\"request\":\(geminiBody(prompt)),\"metadata\":{\"key\":\"k\(index)\"}}"
        }.joined(separator: ",")
        return
            "{\"batch\":{\"displayName\":\"\(displayName)\",\"inputConfig\":{\"requests\":{\"requests\":[\(requests)]}}}}"
    }

    @Test(arguments: ["v1beta", "v1"])
    func inlineRequestsComeBackAnsweredAsOnline(version: String) async throws {
        try await withMockServer({ $0.replyTokens = 4 }) { server in
            let http = BatchHTTP(port: server.port)
            let prompts = ["one", "two", "three"]
            let operation = try http.json(
                "POST", "/\(version)/models/gemini-2.5-flash:batchGenerateContent", body: inlineBody(prompts),
                headers: BatchHTTP.gemini)
            let name = try #require(operation["name"]?.stringValue)
            #expect(name.hasPrefix("batches/"))
            let metadata = try #require(operation["metadata"])
            #expect(metadata["state"] == .string("BATCH_STATE_PENDING"))
            #expect(metadata["displayName"] == .string("job-1"))
            #expect(metadata["model"] == .string("models/gemini-2.5-flash"))
            #expect(
                metadata["batchStats"] == .object(["requestCount": .string("3"), "pendingRequestCount": .string("3")]))
            #expect(metadata["output"] == nil)
            #expect(operation["done"] == nil)

            let done = try http.json("GET", "/\(version)/\(name)", headers: BatchHTTP.gemini)
            #expect(done["done"] == .bool(true))
            #expect(done["metadata"]?["state"] == .string("BATCH_STATE_SUCCEEDED"))
            #expect(done["metadata"]?["endTime"]?.stringValue != nil)
            #expect(
                done["metadata"]?["batchStats"]
                    == .object(["requestCount": .string("3"), "successfulRequestCount": .string("3")]))
            let responses = try #require(
                done["metadata"]?["output"]?["inlinedResponses"]?["inlinedResponses"]?.arrayValue)
            #expect(responses.map { $0["metadata"]?["key"] } == [.string("k0"), .string("k1"), .string("k2")])
            for (index, prompt) in prompts.enumerated() {
                let online = try http.json(
                    "POST", "/\(version)/models/gemini-2.5-flash:generateContent", body: geminiBody(prompt),
                    headers: BatchHTTP.gemini)
                #expect(responses[index]["response"]?["candidates"] == online["candidates"])
                #expect(responses[index]["response"]?["usageMetadata"] == online["usageMetadata"])
            }
            #expect(server.stats.batchesCreated == [.gemini: 1])
        }
    }

    /// A resumable upload in two chunks; the file's name.
    func upload(_ http: BatchHTTP, _ content: String, version: String = "v1beta") throws -> String {
        let start = try http.send(
            "POST", "/upload/\(version)/files", body: "{\"file\":{\"display_name\":\"requests\"}}",
            headers: BatchHTTP.gemini + [
                ("x-goog-upload-protocol", "resumable"), ("x-goog-upload-command", "start"),
                ("x-goog-upload-header-content-length", String(content.utf8.count)),
                ("x-goog-upload-header-content-type", "application/jsonl"),
            ])
        #expect(start.status == 200)
        #expect(start.header("x-goog-upload-status") == "active")
        let url = try #require(start.header("x-goog-upload-url"))
        let path = String(url.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" })
        let half = content.utf8.count / 2
        let first = String(decoding: Array(content.utf8)[..<half], as: UTF8.self)
        let second = String(decoding: Array(content.utf8)[half...], as: UTF8.self)
        let chunk = try http.send(
            "POST", path, body: first, headers: [("x-goog-upload-command", "upload"), ("x-goog-upload-offset", "0")])
        #expect(chunk.header("x-goog-upload-status") == "active")
        let final = try http.send(
            "POST", path, body: second,
            headers: [("x-goog-upload-command", "upload, finalize"), ("x-goog-upload-offset", String(half))])
        #expect(final.status == 200)
        #expect(final.header("x-goog-upload-status") == "final")
        let file = try final.json()["file"]
        #expect(file?["sizeBytes"] == .string(String(content.utf8.count)))
        #expect(file?["displayName"] == .string("requests"))
        #expect(file?["mimeType"] == .string("application/jsonl"))
        #expect(file?["state"] == .string("ACTIVE"))
        return try #require(file?["name"]?.stringValue)
    }

    @Test func aFileBatchWritesAResponsesFileKeyedByKey() async throws {
        try await withMockServer({ $0.replyTokens = 3 }) { server in
            let http = BatchHTTP(port: server.port)
            let keys = (0..<30).map { "key-\($0)" }
            let lines = keys.map { "{\"key\":\"\($0)\",\"request\":\(geminiBody($0))}" } + ["not json"]
            let fileName = try upload(http, lines.joined(separator: "\n") + "\n")
            #expect(
                try http.json("GET", "/v1beta/\(fileName)", headers: BatchHTTP.gemini)["source"] == .string("UPLOADED"))
            let operation = try http.json(
                "POST", "/v1/models/gemini-2.5-flash:batchGenerateContent",
                body: "{\"batch\":{\"displayName\":\"from-file\",\"inputConfig\":{\"fileName\":\"\(fileName)\"}}}",
                headers: BatchHTTP.gemini)
            let name = try #require(operation["name"]?.stringValue)
            let done = try http.json("GET", "/v1/\(name)", headers: BatchHTTP.gemini)
            #expect(done["metadata"]?["state"] == .string("BATCH_STATE_SUCCEEDED"))
            #expect(done["metadata"]?["batchStats"]?["failedRequestCount"] == .string("1"))
            let responsesFile = try #require(done["metadata"]?["output"]?["responsesFile"]?.stringValue)
            let file = try http.json("GET", "/v1/\(responsesFile)", headers: BatchHTTP.gemini)
            #expect(file["source"] == .string("GENERATED"))
            #expect(file["downloadUri"]?.stringValue?.hasSuffix(":download?alt=media") == true)
            for path in [
                "/v1beta/\(responsesFile):download?alt=media", "/download/v1beta/\(responsesFile):download?alt=media",
            ] {
                let download = try http.send("GET", path, headers: BatchHTTP.gemini)
                #expect(download.status == 200)
                let results = try download.text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
                let order = results.map { $0["key"]?.stringValue }
                #expect(Set(order.compactMap { $0 }) == Set(keys))
                #expect(order.compactMap { $0 } != keys)
                let failed = results.filter { $0["error"] != nil }
                #expect(failed.count == 1)
                #expect(failed.first?["error"]?["code"] == .int(3))
                let online = try http.json(
                    "POST", "/v1beta/models/gemini-2.5-flash:generateContent", body: geminiBody("key-7"),
                    headers: BatchHTTP.gemini)
                #expect(
                    results.first { $0["key"] == .string("key-7") }?["response"]?["candidates"] == online["candidates"])
            }
            // Uploaded files cannot be downloaded; deleted files are gone.
            #expect(
                try http.send("GET", "/v1beta/\(fileName):download?alt=media", headers: BatchHTTP.gemini).status == 400)
            #expect(try http.json("DELETE", "/v1beta/\(fileName)", headers: BatchHTTP.gemini) == .object([:]))
            #expect(try http.send("GET", "/v1beta/\(fileName)", headers: BatchHTTP.gemini).status == 403)
            let stats = server.stats
            #expect(stats.filesUploaded == 1)
            #expect(stats.batchRequests == [name: 31])
        }
    }

    @Test func uploadsAreCheckedChunkByChunk() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let start = try http.send(
                "POST", "/upload/v1beta/files", body: "{}",
                headers: BatchHTTP.gemini + [
                    ("x-goog-upload-protocol", "resumable"), ("x-goog-upload-command", "start"),
                    ("x-goog-upload-header-content-length", "10"),
                ])
            let url = try #require(start.header("x-goog-upload-url"))
            let path = String(url.drop { $0 != "/" }.dropFirst(2).drop { $0 != "/" })
            let wrongOffset = try http.send(
                "POST", path, body: "abc",
                headers: [("x-goog-upload-command", "upload"), ("x-goog-upload-offset", "5")])
            #expect(wrongOffset.status == 400)
            let short = try http.send(
                "POST", path, body: "abc",
                headers: [("x-goog-upload-command", "upload, finalize"), ("x-goog-upload-offset", "0")])
            #expect(short.status == 400)
            let unknown = try http.send(
                "POST", "/upload/v1beta/files?upload_id=nope", body: "x", headers: [("x-goog-upload-command", "upload")]
            )
            #expect(unknown.status == 404)
            let notResumable = try http.send("POST", "/upload/v1beta/files", body: "x", headers: BatchHTTP.gemini)
            #expect(notResumable.status == 400)
            #expect(server.stats.filesUploaded == 0)
        }
    }

    @Test func badCreatesAreRefused() async throws {
        try await withMockServer({ $0.models = ["gemini-2.5-flash"] }) { server in
            let http = BatchHTTP(port: server.port)
            let path = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
            for body in [
                "{}", "{\"batch\":{\"inputConfig\":{}}}",
                "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/a\",\"requests\":{\"requests\":[]}}}}",
                "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"metadata\":{}}]}}}}",
            ] {
                let refused = try http.json("POST", path, body: body, headers: BatchHTTP.gemini, status: 400)
                #expect(refused["error"]?["status"] == .string("INVALID_ARGUMENT"), "\(body)")
            }
            let noFile = try http.json(
                "POST", path, body: "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/nope\"}}}",
                headers: BatchHTTP.gemini, status: 403)
            #expect(noFile["error"]?["status"] == .string("PERMISSION_DENIED"))
            let model = try http.json(
                "POST", "/v1beta/models/gemini-9:batchGenerateContent", body: inlineBody(["a"]),
                headers: BatchHTTP.gemini, status: 404)
            #expect(model["error"]?["status"] == .string("NOT_FOUND"))
            let noKey = try http.send("POST", path, body: inlineBody(["a"]), headers: [])
            #expect(noKey.status == 403)
            #expect(server.stats.totalBatchesCreated == 0)
        }
    }

    @Test func cancelEndsTheBatchAtOnce() async throws {
        try await withMockServer({ $0.batches.duration = .seconds(600) }) { server in
            let http = BatchHTTP(port: server.port)
            let path = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
            let name = try #require(
                try http.json("POST", path, body: inlineBody(["a", "b"]), headers: BatchHTTP.gemini)["name"]?
                    .stringValue)
            #expect(try http.json("POST", "/v1beta/\(name):cancel", headers: BatchHTTP.gemini) == .object([:]))
            let cancelled = try http.json("GET", "/v1beta/\(name)", headers: BatchHTTP.gemini)
            #expect(cancelled["metadata"]?["state"] == .string("BATCH_STATE_CANCELLED"))
            let responses = try #require(
                cancelled["metadata"]?["output"]?["inlinedResponses"]?["inlinedResponses"]?.arrayValue)
            #expect(responses.allSatisfy { $0["error"]?["code"] == .int(1) && $0["response"] == nil })
            #expect(try http.json("DELETE", "/v1beta/\(name)", headers: BatchHTTP.gemini) == .object([:]))
            let gone = try http.json("GET", "/v1beta/\(name)", headers: BatchHTTP.gemini, status: 404)
            #expect(gone["error"]?["status"] == .string("NOT_FOUND"))
        }
    }

    @Test func anEndedBatchCannotBeCancelled() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            let path = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
            let name = try #require(
                try http.json("POST", path, body: inlineBody(["a"]), headers: BatchHTTP.gemini)["name"]?.stringValue)
            let refused = try http.json("POST", "/v1beta/\(name):cancel", headers: BatchHTTP.gemini, status: 400)
            #expect(refused["error"]?["status"] == .string("FAILED_PRECONDITION"))
        }
    }

    @Test func anExpiringBatchAnswersHalfAndReportsTheRest() async throws {
        try await withMockServer({ $0.batches.expiring = 1 }) { server in
            let http = BatchHTTP(port: server.port)
            let name = try #require(
                try http.json(
                    "POST", "/v1/models/gemini-2.5-flash:batchGenerateContent", body: inlineBody(["a", "b", "c", "d"]),
                    headers: BatchHTTP.gemini)["name"]?.stringValue)
            let done = try http.json("GET", "/v1/\(name)", headers: BatchHTTP.gemini)
            #expect(done["metadata"]?["state"] == .string("BATCH_STATE_EXPIRED"))
            let responses = try #require(
                done["metadata"]?["output"]?["inlinedResponses"]?["inlinedResponses"]?.arrayValue)
            #expect(responses.filter { $0["response"] != nil }.count == 2)
            #expect(responses.filter { $0["error"]?["code"] == .int(4) }.count == 2)
        }
    }

    @Test func failingLinesCarryTheInternalStatus() async throws {
        try await withMockServer({ $0.batches.failingLines = 1 }) { server in
            let http = BatchHTTP(port: server.port)
            let name = try #require(
                try http.json(
                    "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", body: inlineBody(["a", "b"]),
                    headers: BatchHTTP.gemini)["name"]?.stringValue)
            let done = try http.json("GET", "/v1beta/\(name)", headers: BatchHTTP.gemini)
            let responses = try #require(
                done["metadata"]?["output"]?["inlinedResponses"]?["inlinedResponses"]?.arrayValue)
            #expect(responses.allSatisfy { $0["error"]?["code"] == .int(13) && $0["metadata"] != nil })
        }
    }

    @Test func batchesAreListedInPages() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            var names: [String] = []
            for prompt in ["a", "b"] {
                names.append(
                    try #require(
                        try http.json(
                            "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", body: inlineBody([prompt]),
                            headers: BatchHTTP.gemini)["name"]?.stringValue))
            }
            let first = try http.json("GET", "/v1beta/batches?pageSize=1", headers: BatchHTTP.gemini)
            #expect(first["operations"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == [names[1]])
            let token = try #require(first["nextPageToken"]?.stringValue)
            let second = try http.json(
                "GET", "/v1beta/batches?pageSize=1&pageToken=\(token)", headers: BatchHTTP.gemini)
            #expect(second["operations"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == [names[0]])
            #expect(second["nextPageToken"] == nil)
        }
    }
}

@Suite struct BatchStatsTests {
    @Test func statsCountBatchesByProviderAndUploads() async throws {
        try await withMockServer { server in
            let http = BatchHTTP(port: server.port)
            _ = try http.openAIBatch([openAILine("a"), openAILine("b")])
            _ = try http.json(
                "POST", "/v1/messages/batches",
                body: "{\"requests\":[{\"custom_id\":\"a\",\"params\":\(messagesBody("a"))}]}",
                headers: BatchHTTP.anthropic)
            let json = try http.json("GET", "/_mock/stats", headers: [])
            #expect(json["batches_created"] == .int(2))
            #expect(
                json["batches_created_by_provider"]
                    == .object(["anthropic": .int(1), "gemini": .int(0), "openai": .int(1), "together": .int(0)]))
            #expect(json["files_uploaded"] == .int(1))
            #expect(json["batch_requests"]?.objectValue?.count == 2)
            #expect(
                json["batch_requests"]?.objectValue?.members.map(\.value).sorted {
                    ($0.intValue ?? 0) < ($1.intValue ?? 0)
                } == [.int(1), .int(2)])
            server.resetStats()
            #expect(server.stats.totalBatchesCreated == 0)
        }
    }
}
