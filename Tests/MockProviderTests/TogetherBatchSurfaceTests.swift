import LLMQCore
import Testing

@testable import MockProvider

/// Together's Files and Batch APIs on the wire: the three-step upload, the job's
/// shapes (201 wrapped, bare get, bare-array list), result lines, flat and nested
/// errors, and which requests under the shared `/v1` paths are Together's.
@Suite struct TogetherBatchSurfaceTests {
    static let headers = [("authorization", "Bearer tg-test"), ("content-type", "application/json")]
    static let model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"

    /// Requests to one server, under `/together/v1` unless told otherwise.
    struct Together {
        let http: BatchHTTP

        init(port: Int) { http = BatchHTTP(port: port) }

        func send(
            _ method: String, _ path: String, body: String? = nil,
            headers: [(String, String)] = TogetherBatchSurfaceTests.headers
        )
            throws -> RawHTTPResponse
        {
            try http.send(method, path, body: body, headers: headers)
        }

        func json(
            _ method: String, _ path: String, body: String? = nil, status: Int = 200,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> JSONValue {
            try http.json(
                method, path, body: body, headers: TogetherBatchSurfaceTests.headers, status: status,
                sourceLocation: sourceLocation)
        }

        /// Step 1, urlencoded: the 302's storage path (with its query) and file id.
        func announce(_ name: String = "requests.jsonl", root: String = "/together/v1") throws -> (String, String) {
            let response = try send(
                "POST", root + "/files", body: "purpose=batch-api&file_name=\(name)&file_type=jsonl",
                headers: [
                    ("authorization", "Bearer tg-test"), ("content-type", "application/x-www-form-urlencoded"),
                ])
            #expect(response.status == 302, "\(response.text)")
            let location = try #require(response.header("location"))
            let fileID = try #require(response.header("x-together-file-id"))
            let path = try #require(location.range(of: "/_mock/")).lowerBound
            return (String(location[path...]), fileID)
        }

        /// All three steps; the preprocessed file object.
        func upload(_ lines: [String], root: String = "/together/v1") throws -> JSONValue {
            let (path, fileID) = try announce(root: root)
            let put = try send("PUT", path, body: lines.joined(separator: "\n") + "\n", headers: [])
            #expect(put.status == 200, "\(put.text)")
            return try json("POST", root + "/files/\(fileID)/preprocess")
        }

        /// Uploads `lines` and creates a job on them; the create answer's job.
        func job(_ lines: [String], root: String = "/together/v1") throws -> JSONValue {
            let file = try upload(lines, root: root)
            let fileID = try #require(file["id"]?.stringValue)
            let created = try json("POST", root + "/batches", body: Self.createBody(fileID), status: 201)
            return try #require(created["job"])
        }

        static func createBody(_ fileID: String) -> String {
            #"{"input_file_id":"\#(fileID)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#
        }

        /// A file's lines, parsed.
        func lines(ofFile id: String, root: String = "/together/v1") throws -> [JSONValue] {
            let response = try send("GET", root + "/files/\(id)/content")
            #expect(response.status == 200)
            return try response.text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        }
    }

    /// A Together batch input line.
    static func line(_ id: String, _ prompt: String = "Say hi.", extra: String = "") -> String {
        #"{"custom_id":"\#(id)","method":"POST","url":"/v1/chat/completions","body":"#
            + chatBody(prompt, model: model, extra: extra) + "}"
    }

    @Test func theUploadIsA302AKeylessPutAndAPreprocess() async throws {
        try await withMockServer { server in
            let together = Together(port: server.port)
            let announced = try together.send(
                "POST", "/v1/files", body: "purpose=batch-api&file_name=my+requests.jsonl&file_type=jsonl",
                headers: [("authorization", "Bearer tg-test"), ("content-type", "application/x-www-form-urlencoded")])
            #expect(announced.status == 302)
            #expect(announced.body.isEmpty)
            let fileID = try #require(announced.header("x-together-file-id"))
            #expect(fileID.hasPrefix("file-") && fileID.count == 41, "\(fileID)")
            let location = try #require(announced.header("location"))
            #expect(location.hasPrefix("http://127.0.0.1/_mock/together-upload/\(fileID)?"), "\(location)")
            let path = String(location.dropFirst("http://127.0.0.1".count))
            let content = Self.line("a") + "\n" + Self.line("b") + "\n"

            // Storage takes one credential: the signed URL; a key beside it is refused.
            let withKey = try together.send("PUT", path, body: content, headers: [("authorization", "Bearer tg-test")])
            #expect(withKey.status == 400)
            #expect(withKey.text.contains("<Code>InvalidArgument</Code>"))
            let unsigned = try together.send("PUT", "/_mock/together-upload/\(fileID)", body: content, headers: [])
            #expect(unsigned.status == 403)
            #expect(server.stats.filesUploaded == 0)
            let put = try together.send("PUT", path, body: content, headers: [])
            #expect(put.status == 200)
            #expect(put.header("etag") != nil)
            #expect(server.stats.filesUploaded == 1)

            let file = try together.json("POST", "/v1/files/\(fileID)/preprocess")
            #expect(
                Set(file.objectValue?.keys ?? [])
                    == [
                        "id", "object", "created_at", "filename", "purpose", "bytes", "FileType", "LineCount",
                        "Processed", "processing_status",
                    ])
            #expect(file["id"] == .string(fileID))
            #expect(file["object"] == .string("file"))
            #expect(file["created_at"]?.intValue != nil)
            #expect(file["filename"] == .string("my requests.jsonl"))
            #expect(file["purpose"] == .string("batch-api"))
            #expect(file["bytes"] == .int(Int64(content.utf8.count)))
            #expect(file["FileType"] == .string("jsonl"))
            #expect(file["LineCount"] == .int(2))
            #expect(file["Processed"] == .bool(true))
            // Asked again, and through the Files API: the same file.
            #expect(try together.json("POST", "/together/v1/files/\(fileID)/preprocess") == file)
            #expect(try together.json("GET", "/together/v1/files/\(fileID)") == file)
            #expect(try together.json("GET", "/together/v1/files")["data"]?.arrayValue == [file])
        }
    }

    @Test func stepOneTakesMultipartTooAndAFilePartStoresAtOnce() async throws {
        try await withMockServer { server in
            let together = Together(port: server.port)
            let boundary = "tg-boundary"
            func field(_ name: String, _ value: String) -> String {
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
            }
            let multipart = [
                ("authorization", "Bearer tg-test"), ("content-type", "multipart/form-data; boundary=\(boundary)"),
            ]
            let fields =
                field("purpose", "batch-api") + field("file_name", "r.jsonl") + field("file_type", "jsonl")
                + field("checksum", "abc")
            let announced = try together.send(
                "POST", "/v1/files", body: fields + "--\(boundary)--\r\n", headers: multipart)
            #expect(announced.status == 302)
            #expect(announced.header("x-together-file-id")?.hasPrefix("file-") == true)

            let oneStep =
                field("purpose", "batch-api")
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"direct.jsonl\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\n\(Self.line("a"))\n\r\n--\(boundary)--\r\n"
            let stored = try together.send("POST", "/together/v1/files", body: oneStep, headers: multipart)
            #expect(stored.status == 200, "\(stored.text)")
            let file = try stored.json()
            #expect(file["filename"] == .string("direct.jsonl") && file["LineCount"] == .int(1))

            // Missing and wrong fields are Together's 400 (nested, on file routes).
            let noName = try together.send(
                "POST", "/together/v1/files", body: field("purpose", "batch-api") + "--\(boundary)--\r\n",
                headers: multipart)
            #expect(noName.status == 400)
            #expect(try noName.json()["error"]?["message"]?.stringValue?.contains("file_name") == true)
            let wrongPurpose = try together.send(
                "POST", "/together/v1/files", body: "purpose=batch&file_name=a.jsonl",
                headers: [("authorization", "Bearer tg-test"), ("content-type", "application/x-www-form-urlencoded")])
            #expect(wrongPurpose.status == 400)
        }
    }

    @Test func createIsWrapped201GetIsBareAndTheListABareArray() async throws {
        try await withMockServer({ $0.replyTokens = 6 }) { server in
            let together = Together(port: server.port)
            let job = try together.job([Self.line("q0"), Self.line("q1")])
            #expect(
                Set(job.objectValue?.keys ?? [])
                    == [
                        "id", "user_id", "input_file_id", "file_size_bytes", "status", "job_deadline", "created_at",
                        "endpoint", "progress", "model_id", "output_file_id", "error_file_id", "error", "completed_at",
                    ])
            let id = try #require(job["id"]?.stringValue)
            #expect(id.count == 36 && id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12], "\(id)")
            #expect(job["status"] == .string("VALIDATING"))
            #expect(job["progress"]?.doubleValue == 0)
            #expect(job["output_file_id"] == .null && job["model_id"] == .null)
            #expect(job["user_id"]?.stringValue?.count == 24)
            #expect(job["endpoint"] == .string("/v1/chat/completions"))
            let created = try #require(job["created_at"]?.stringValue)
            #expect(created.hasSuffix("Z") && created.split(separator: ".").last?.count == 7, "µs: \(created)")
            let deadline = try #require(job["job_deadline"]?.stringValue.flatMap(ISOTime.milliseconds))
            #expect(try deadline - #require(ISOTime.milliseconds(created)) == 86_400_000)

            // Zero duration: ended at the first poll; get has no wrapper.
            let got = try together.json("GET", "/together/v1/batches/\(id)")
            #expect(got["job"] == nil)
            #expect(got["id"] == .string(id))
            #expect(got["status"] == .string("COMPLETED"))
            #expect(got["progress"]?.doubleValue == 100)
            #expect(got["model_id"] == .string(Self.model))
            #expect(got["output_file_id"]?.stringValue?.hasPrefix("file-") == true)
            #expect(got["error_file_id"] == .null, "no line failed")
            #expect(got["completed_at"]?.stringValue != nil)
            #expect(got["file_size_bytes"] == job["file_size_bytes"])

            let list = try together.json("GET", "/together/v1/batches")
            #expect(list.arrayValue == [got])
            // Under /v1 the list is OpenAI's: it cannot be told apart by its path.
            let openAIList = try together.json("GET", "/v1/batches")
            #expect(openAIList["object"] == .string("list") && openAIList["data"]?.arrayValue == [])
            #expect(server.stats.batchesCreated == [.together: 1])
        }
    }

    @Test func linesAreAnsweredAsTogethersOnlineEndpointAnswersThem() async throws {
        try await withMockServer({ $0.replyTokens = 6 }) { server in
            let together = Together(port: server.port)
            let lines = (0..<3).map { Self.line("q\($0)", "Question \($0)?", extra: ",\"seed\":\($0)") }
            let refused = Self.line("hot", extra: ",\"temperature\":9")
            let noModel = #"{"custom_id":"bare","body":{"messages":[{"role":"user","content":"x"}]}}"#
            let id = try #require(try together.job(lines + [refused, noModel])["id"]?.stringValue)
            let job = try together.json("GET", "/together/v1/batches/\(id)")

            let output = try together.lines(ofFile: #require(job["output_file_id"]?.stringValue))
            #expect(Set(output.compactMap { $0["custom_id"]?.stringValue }) == ["q0", "q1", "q2"])
            for line in output {
                #expect(Set(line.objectValue?.keys ?? []) == ["id", "custom_id", "response"])
                #expect(line["id"]?.stringValue?.hasPrefix("br_") == true)
                let index = try #require(line["custom_id"]?.stringValue.flatMap { Int($0.dropFirst()) })
                let online = try together.json(
                    "POST", "/together/v1/chat/completions",
                    body: chatBody("Question \(index)?", model: Self.model, extra: ",\"seed\":\(index)"))
                let response = try #require(line["response"])
                #expect(Set(response.objectValue?.keys ?? []) == ["status_code", "body"])
                #expect(response["status_code"] == .int(200))
                #expect(response["body"]?["choices"] == online["choices"])
                #expect(response["body"]?["usage"] == online["usage"])
                #expect(response["body"]?["prompt"] == .array([]))
            }
            let errors = try together.lines(ofFile: #require(job["error_file_id"]?.stringValue))
            #expect(errors.count == 2)
            for line in errors {
                #expect(Set(line.objectValue?.keys ?? []) == ["id", "custom_id", "error"])
                #expect(line["error"]?["code"] == .string("batch_client_error"))
            }
            let byID = Dictionary(uniqueKeysWithValues: errors.map { ($0["custom_id"]?.stringValue ?? "", $0) })
            let onlineRefusal = try together.json(
                "POST", "/together/v1/chat/completions", body: chatBody(model: Self.model, extra: ",\"temperature\":9"),
                status: 400)
            #expect(byID["hot"]?["error"]?["message"] == onlineRefusal["error"]?["message"])
            #expect(byID["bare"]?["error"]?["message"] == .string("missing 'model' field in body"))
        }
    }

    @Test func downloadsSendContentLengthAndHonourARange() async throws {
        try await withMockServer { server in
            let together = Together(port: server.port)
            let id = try #require(try together.job([Self.line("a"), Self.line("b")])["id"]?.stringValue)
            let output = try #require(
                try together.json("GET", "/together/v1/batches/\(id)")["output_file_id"]?.stringValue)
            let whole = try together.send("GET", "/together/v1/files/\(output)/content")
            #expect(whole.status == 200)
            #expect(whole.header("content-length") == String(whole.body.count))
            #expect(whole.header("transfer-encoding") == nil)
            var ranged = Self.headers
            ranged.append(("range", "bytes=0-1"))
            let head = try together.send("GET", "/together/v1/files/\(output)/content", headers: ranged)
            #expect(head.status == 206)
            #expect(head.body == Array(whole.body.prefix(2)))
            #expect(head.header("content-range") == "bytes 0-1/\(whole.body.count)")
            ranged[ranged.count - 1] = ("range", "bytes=\(whole.body.count)-")
            #expect(try together.send("GET", "/together/v1/files/\(output)/content", headers: ranged).status == 416)
        }
    }

    @Test func batchErrorsAreFlatAndFileErrorsNested() async throws {
        try await withMockServer({ $0.apiKey = "tg-test" }) { server in
            let together = Together(port: server.port)
            #expect(
                try together.json("GET", "/together/v1/batches/nope", status: 404)
                    == .object(["error": .string("Job not found")]))
            #expect(
                try together.json("POST", "/together/v1/batches/nope/cancel", status: 404)
                    == .object(["error": .string("Job not found")]))
            let missing = try together.json(
                "POST", "/together/v1/batches", body: #"{"endpoint":"/v1/chat/completions"}"#, status: 400)
            #expect(missing["error"]?.stringValue?.contains("input_file_id") == true)
            let notFound = try together.json("GET", "/together/v1/files/file-nope/content", status: 404)
            #expect(notFound["error"]?["type"] == .string("not_found"))
            #expect(notFound["error"]?["message"]?.stringValue?.contains("file-nope") == true)
            let wrongKey = try together.send(
                "GET", "/together/v1/batches", headers: [("authorization", "Bearer tg-wrong")])
            #expect(wrongKey.status == 401)
            #expect(try wrongKey.json()["error"]?.stringValue?.contains("Invalid API key") == true)
            #expect(!wrongKey.text.contains("tg-wrong"))
        }
    }

    @Test func aJobOnABadFileFailsWithAnErrorAndNoFiles() async throws {
        try await withMockServer { server in
            let together = Together(port: server.port)
            func failed(_ fileID: String) throws -> JSONValue {
                let job = try together.json(
                    "POST", "/together/v1/batches", body: Together.createBody(fileID), status: 201)["job"]
                let id = try #require(job?["id"]?.stringValue)
                #expect(job?["status"] == .string("VALIDATING"))
                let ended = try together.json("GET", "/together/v1/batches/\(id)")
                #expect(ended["status"] == .string("FAILED"))
                #expect(ended["output_file_id"] == .null && ended["error_file_id"] == .null)
                #expect(ended["completed_at"]?.stringValue != nil)
                return ended
            }
            #expect(try failed("file-nope")["error"]?.stringValue?.contains("file-nope") == true)
            // Uploaded but never preprocessed.
            let (path, pending) = try together.announce()
            #expect(try together.send("PUT", path, body: Self.line("a"), headers: []).status == 200)
            #expect(try failed(pending)["error"]?.stringValue?.contains("preprocessed") == true)
            let broken = try #require(try together.upload([Self.line("a"), "{not json"])["id"]?.stringValue)
            #expect(try failed(broken)["error"]?.stringValue?.contains("line 2") == true)
            let twice = try #require(try together.upload([Self.line("a"), Self.line("a")])["id"]?.stringValue)
            #expect(try failed(twice)["error"]?.stringValue?.contains("duplicate custom_id") == true)
            let long = try #require(
                try together.upload([Self.line(String(repeating: "x", count: 65))])["id"]?.stringValue)
            #expect(try failed(long)["error"]?.stringValue?.contains("64") == true)
            // Cancelling a failed job is the terminal-state conflict.
            let job = try #require(
                try together.json("GET", "/together/v1/batches").arrayValue?.first?["id"]?.stringValue)
            let conflict = try together.json("POST", "/together/v1/batches/\(job)/cancel", status: 409)
            #expect(conflict["error"] == .string("Cannot cancel job - already in terminal state: FAILED"))
        }
    }

    @Test func cancelAnswersCancelingThenTheJobIsCancelled() async throws {
        try await withMockServer({ $0.batches.duration = .seconds(60) }) { server in
            let together = Together(port: server.port)
            let id = try #require(try together.job([Self.line("a")])["id"]?.stringValue)
            let cancelling = try together.json("POST", "/together/v1/batches/\(id)/cancel")
            #expect(cancelling["id"] == .string(id) && cancelling["status"] == .string("CANCELING"))
            let cancelled = try together.json("GET", "/together/v1/batches/\(id)")
            #expect(cancelled["status"] == .string("CANCELLED"))
            #expect(cancelled["output_file_id"] == .null)
            let again = try together.json("POST", "/together/v1/batches/\(id)/cancel", status: 409)
            #expect(again["error"] == .string("Cannot cancel job - already in terminal state: CANCELLED"))
        }
    }

    @Test func anExpiringJobEndsExpiredAtHalfProgress() async throws {
        try await withMockServer({ $0.batches.expiring = 1 }) { server in
            let together = Together(port: server.port)
            let id = try #require(try together.job((0..<4).map { Self.line("q\($0)") })["id"]?.stringValue)
            let job = try together.json("GET", "/together/v1/batches/\(id)")
            #expect(job["status"] == .string("EXPIRED"))
            #expect(job["progress"]?.doubleValue == 50)
            #expect(try together.lines(ofFile: #require(job["output_file_id"]?.stringValue)).count == 2)
            #expect(job["error_file_id"] == .null, "what did not run is in neither file")
        }
    }

    @Test func underV1TogethersFilesAndJobsAreTogethersAndOpenAIsStayOpenAIs() async throws {
        try await withMockServer { server in
            let together = Together(port: server.port)
            let http = BatchHTTP(port: server.port)
            let id = try #require(try together.job([Self.line("a")], root: "/v1")["id"]?.stringValue)
            let job = try together.json("GET", "/v1/batches/\(id)")
            #expect(job["status"] == .string("COMPLETED"), "Together's job, in Together's shape")
            let output = try #require(job["output_file_id"]?.stringValue)
            #expect(try together.lines(ofFile: output, root: "/v1").first?["response"]?["status_code"] == .int(200))
            #expect(try together.json("POST", "/v1/batches/\(id)/cancel", status: 409)["error"]?.stringValue != nil)

            // An OpenAI batch beside it is untouched, and OpenAI's list shows only it.
            let openAI = try http.openAIBatch([
                #"{"custom_id":"o","method":"POST","url":"/v1/chat/completions","body":\#(chatBody())}"#
            ])
            let openAIID = try #require(openAI["id"]?.stringValue)
            #expect(try http.json("GET", "/v1/batches/\(openAIID)")["status"] == .string("completed"))
            #expect(
                try http.json("GET", "/v1/batches")["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
                    == [openAIID])
            #expect(
                try together.json("GET", "/together/v1/batches").arrayValue?.compactMap { $0["id"]?.stringValue }
                    == [id])
            #expect(
                try http.json("GET", "/together/v1/batches/\(openAIID)", status: 404)["error"]
                    == .string("Job not found"))
            let stats = server.stats
            #expect(stats.batchesCreated == [.together: 1, .openAI: 1])
            #expect(stats.filesUploaded == 2)
        }
    }
}
