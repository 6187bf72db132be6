import Foundation
import LLMQCore
import LLMQTransport

/// OpenAI's Files + Batches API: upload a JSONL file (`purpose=batch`), create a
/// batch from it tagged with `metadata.llmq_batch_id`, poll it, download its output
/// and error files.
///
/// Request bodies and answers are the online adapter's; result lines carry the
/// answer's HTTP status and body, read by the adapter as if it had been sent online.
public struct OpenAIBatchAPI: ProviderBatchAPI {
    public var provider: Provider { adapter.provider }
    /// OpenAI's limits: 50,000 requests and 200 MB per batch file.
    public var maxRequests = 50_000
    public var maxBytes = 200_000_000
    /// How far the provider's clock may be from ours when `find` looks for a batch
    /// created after a recorded intent.
    public var clockSkewMilliseconds: Int64 = 300_000

    /// The metadata key holding llmq's id for a batch.
    public static let metadataKey = "llmq_batch_id"
    /// The endpoint every request line goes to.
    public static let endpoint = "/v1/chat/completions"

    let adapter: OpenAIAdapter
    let http: BatchHTTP

    /// - Parameter options: for every call; the default waits up to two minutes for
    ///   a silent server (a large upload is processed before the answer).
    public init(
        adapter: OpenAIAdapter, transport: any HTTPTransport,
        options: HTTPRequestOptions = HTTPRequestOptions(idleTimeout: .seconds(120))
    ) {
        self.adapter = adapter
        self.http = BatchHTTP(transport: transport, options: options, failure: { adapter.failure($0) })
    }

    func headers(_ key: String, contentType: String? = nil) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if !key.isEmpty { headers.add(name: "Authorization", value: "Bearer " + key) }
        return headers
    }

    /// `{"custom_id":…,"method":"POST","url":"/v1/chat/completions","body":{…}}`.
    public func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8] {
        let body = try adapter.body(canonical, route: route, stream: false)
        return BatchSupport.line([
            ("custom_id", .string(customID)), ("method", .string("POST")), ("url", .string(Self.endpoint)),
            ("body", .object(body)),
        ])
    }

    /// `POST /files`, multipart with `purpose=batch` and the file (named `name`, with
    /// `.jsonl` added if it lacks it).
    public func upload(file: URL, name: String, key: String) async throws -> String? {
        let boundary = "llmq-" + UUID().uuidString
        // OpenAI takes batch files named *.jsonl only.
        var filename = name.replacingOccurrences(of: "\"", with: "_")
        if !filename.lowercased().hasSuffix(".jsonl") { filename += ".jsonl" }
        let head =
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\n"
            + "Content-Type: application/jsonl\r\n\r\n"
        var headers = headers(key)
        headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        // The file is read as it is sent, never held in memory.
        let upload = HTTPUpload([
            .bytes(Array(head.utf8)), .file(file.path), .bytes(Array("\r\n--\(boundary)--\r\n".utf8)),
        ])
        let json = try await http.json(
            HTTPRequest(method: .post, url: adapter.baseURL + "/files", headers: headers, upload: upload))
        guard let id = json["id"]?.stringValue else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "the uploaded file has no id")
        }
        return id
    }

    /// `POST /batches` with the file id, the chat-completions endpoint, the 24 h
    /// window and `metadata.llmq_batch_id`.
    public func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch
    {
        guard let inputFileID else {
            throw ProviderFailure(
                status: nil, type: "invalid_request", message: "\(provider.rawValue) batches need an uploaded file")
        }
        let body: JSONValue = .object([
            "input_file_id": .string(inputFileID), "endpoint": .string(Self.endpoint),
            "completion_window": .string("24h"), "metadata": .object([Self.metadataKey: .string(llmqID)]),
        ])
        let json = try await http.json(
            HTTPRequest(
                method: .post, url: adapter.baseURL + "/batches",
                headers: headers(key, contentType: "application/json"),
                body: CanonicalJSON.encode(body)))
        return try Self.batch(json)
    }

    /// Lists batches newest first (`GET /batches?limit=100&after=…`) back to
    /// `createdAfter`, for the one tagged `llmqID` and made from `inputFileID`.
    public func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?
    {
        let oldest = createdAfter - clockSkewMilliseconds
        var after: String?
        while true {
            var url = adapter.baseURL + "/batches?limit=100"
            if let after { url += "&after=" + BatchSupport.escaped(after) }
            let page = try await http.json(HTTPRequest(method: .get, url: url, headers: headers(key)))
            let data = page["data"]?.arrayValue ?? []
            for item in data {
                let batch = try Self.batch(item)
                if batch.llmqID == llmqID, inputFileID == nil || batch.inputFileID == inputFileID { return batch }
            }
            let reachedOlder = data.contains { ($0["created_at"]?.intValue).map { $0 * 1000 < oldest } ?? false }
            guard page["has_more"] == .bool(true), !reachedOlder,
                let last = page["last_id"]?.stringValue ?? data.last?["id"]?.stringValue, last != after
            else { return nil }
            after = last
        }
    }

    public func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(try await batchObject(batch.id, cancel: false, key: key))
    }

    public func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(try await batchObject(batch.id, cancel: true, key: key))
    }

    /// `GET /batches/{id}`, or `POST /batches/{id}/cancel`: the batch object as sent
    /// (Together's has its own fields at the same paths).
    func batchObject(_ id: String, cancel: Bool, key: String) async throws -> JSONValue {
        let url = adapter.baseURL + "/batches/" + BatchSupport.escaped(id) + (cancel ? "/cancel" : "")
        return try await http.json(HTTPRequest(method: cancel ? .post : .get, url: url, headers: headers(key)))
    }

    /// The output file, then the error file (`GET /files/{id}/content`), in one file.
    public func download(_ batch: RemoteBatch, key: String, to file: URL) async throws {
        let requests = [batch.outputLocation, batch.errorLocation].compactMap { $0 }.map { id in
            HTTPRequest(
                method: .get, url: adapter.baseURL + "/files/" + BatchSupport.escaped(id) + "/content",
                headers: headers(key))
        }
        try await http.download(requests, to: file)
    }

    /// Lines of `{"custom_id","response":{"status_code","body"},"error"}`: a 200 is
    /// an answer, another status the failure its body describes; an `error` of
    /// `batch_expired` or `batch_cancelled` means the request was not run.
    public func results(in file: URL, _ each: (BatchResult) throws -> Void) throws {
        try JSONLines.forEach(in: file) { number, line in
            let json = try JSONLines.object(line, number: number, in: file)
            // A line without an id cannot be matched: its request counts as not run.
            guard let customID = json["custom_id"]?.stringValue else { return }
            try each(BatchResult(customID: customID, outcome: outcome(json)))
        }
    }

    func outcome(_ line: JSONValue) -> BatchOutcome {
        if let error = line["error"], error != .null {
            let code = error["code"]?.stringValue
            // An object with a code and message; a bare string (the flat form of
            // Together's other batch errors) is taken as the message.
            let message = error["message"]?.stringValue ?? error.stringValue ?? "no message"
            if code == "batch_expired" || code == "batch_cancelled" { return .notRun(reason: code ?? message) }
            return .failure(ProviderFailure(status: nil, type: code, message: message))
        }
        guard let response = line["response"], case .object = response,
            let status = response["status_code"]?.intValue
        else {
            return .failure(
                ProviderFailure(status: nil, type: "invalid_response", message: "the result line has no response"))
        }
        switch adapter.parse(BatchSupport.response(status: Int(status), response["body"] ?? .null)) {
        case .success(let answer): return .answer(answer)
        case .failure(let failure): return .failure(failure)
        }
    }

    /// A batch object: `status` (lowercase), `request_counts`, output and error file
    /// ids, `metadata.llmq_batch_id`, `created_at` in unix seconds.
    static func batch(_ json: JSONValue) throws -> RemoteBatch {
        guard let id = json["id"]?.stringValue, let status = json["status"]?.stringValue else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "the batch has no id or status")
        }
        let counts = json["request_counts"]
        let messages = (json["errors"]?["data"]?.arrayValue ?? []).compactMap { error -> String? in
            guard let message = error["message"]?.stringValue else { return nil }
            return error["line"]?.intValue.map { "line \($0): \(message)" } ?? message
        }
        return RemoteBatch(
            id: id, status: status, phase: phase(status), total: BatchSupport.count(counts?["total"]),
            succeeded: BatchSupport.count(counts?["completed"]), failed: BatchSupport.count(counts?["failed"]),
            outputLocation: json["output_file_id"]?.stringValue, errorLocation: json["error_file_id"]?.stringValue,
            llmqID: json["metadata"]?[metadataKey]?.stringValue, inputFileID: json["input_file_id"]?.stringValue,
            createdAt: json["created_at"]?.intValue.map { $0 * 1000 },
            message: messages.isEmpty ? nil : messages.joined(separator: "; "))
    }

    /// `validating | in_progress | finalizing` run; `cancelling` is on its way to
    /// `cancelled`; `completed | failed | expired | cancelled` have ended.
    static func phase(_ status: String) -> RemoteBatch.Phase {
        switch status.lowercased() {
        case "completed", "failed", "expired", "cancelled": .ended
        case "cancelling": .cancelling
        default: .running
        }
    }
}
