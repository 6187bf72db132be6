import Foundation
import LLMQCore
import LLMQTransport

/// Gemini's Batch Mode: `models/{model}:batchGenerateContent`, with the requests
/// inline when they fit the inline limit, else in a file uploaded through the Files
/// API (resumable upload). The batch's `displayName` is llmq's id for it.
///
/// Results come inline in the batch (`inlinedResponses`) or as a responses file;
/// `download` writes either as lines of `{"key","response"|"error"}`.
public struct GeminiBatchAPI: ProviderBatchAPI {
    public let provider = Provider.gemini
    /// No request limit is documented; this one keeps a batch (and its inline body)
    /// a manageable size.
    public var maxRequests = 100_000
    /// The Files API's 2 GB file limit **(unverified)**.
    public var maxBytes = 2_000_000_000
    /// Input files up to this size go inline with `create`. Gemini takes inline
    /// requests up to 20 MB; the inline form adds `,"metadata":{}` (14 bytes) to each
    /// line, so this leaves room for `maxRequests` lines of it.
    public var inlineMaxBytes = 18_000_000

    let adapter: GeminiAdapter
    let http: BatchHTTP

    /// - Parameter options: for every call; the default waits up to two minutes for
    ///   a silent server (a large upload is processed before the answer).
    public init(
        adapter: GeminiAdapter, transport: any HTTPTransport,
        options: HTTPRequestOptions = HTTPRequestOptions(idleTimeout: .seconds(120))
    ) {
        self.adapter = adapter
        self.http = BatchHTTP(transport: transport, options: options, failure: { adapter.failure($0) })
    }

    var root: String { adapter.baseURL + "/" + adapter.apiVersion }

    func headers(_ key: String, json: Bool = false) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if json { headers.add(name: "Content-Type", value: "application/json") }
        if !key.isEmpty { headers.add(name: "x-goog-api-key", value: key) }
        return headers
    }

    /// A resource name (`batches/b123`, `files/abc`) as a URL path, each segment escaped.
    static func path(_ name: String) -> String {
        name.split(separator: "/", omittingEmptySubsequences: false).map { BatchSupport.escaped(String($0)) }
            .joined(separator: "/")
    }

    /// `{"key":…,"request":{…generateContent body…}}`, the Files API line shape;
    /// `create` rewrites it to the inline shape when the file goes inline.
    public func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8] {
        let body = try adapter.body(canonical, route: route, stream: false)
        return BatchSupport.line([("key", .string(customID)), ("request", .object(body))])
    }

    /// Nil when the file fits `inlineMaxBytes`; else the resumable upload (`start`,
    /// then `upload, finalize` to the URL the first answer gives), returning the
    /// file's name (`files/abc123`).
    public func upload(file: URL, name: String, key: String) async throws -> String? {
        let size = try BatchSupport.size(of: file)
        guard size > inlineMaxBytes else { return nil }
        var start = headers(key, json: true)
        start.add(name: "X-Goog-Upload-Protocol", value: "resumable")
        start.add(name: "X-Goog-Upload-Command", value: "start")
        start.add(name: "X-Goog-Upload-Header-Content-Length", value: String(size))
        start.add(name: "X-Goog-Upload-Header-Content-Type", value: "application/jsonl")
        let metadata: JSONValue = .object(["file": .object(["displayName": .string(name)])])
        let started = try await http.send(
            HTTPRequest(
                method: .post, url: adapter.baseURL + "/upload/" + adapter.apiVersion + "/files", headers: start,
                body: CanonicalJSON.encode(metadata)))
        guard let uploadURL = started.headers["x-goog-upload-url"] else {
            throw ProviderFailure(
                status: started.status, type: "invalid_response", message: "the upload start gave no x-goog-upload-url")
        }
        var finish = headers(key)
        finish.add(name: "Content-Type", value: "application/jsonl")
        finish.add(name: "X-Goog-Upload-Command", value: "upload, finalize")
        finish.add(name: "X-Goog-Upload-Offset", value: "0")
        let json = try await http.json(
            HTTPRequest(method: .post, url: uploadURL, headers: finish, upload: HTTPUpload([.file(file.path)])))
        guard let fileName = json["file"]?["name"]?.stringValue ?? json["name"]?.stringValue else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "the uploaded file has no name")
        }
        return fileName
    }

    /// `POST models/{model}:batchGenerateContent` with `displayName` = `llmqID` and
    /// either `inputConfig.fileName` or the file's requests inline
    /// (`{"request":…,"metadata":{"key":…}}` each).
    public func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch
    {
        let input: JSONValue
        if let inputFileID {
            input = .object(["fileName": .string(inputFileID)])
        } else {
            var requests: [JSONValue] = []
            try JSONLines.forEach(in: file) { number, line in
                let json = try JSONLines.object(line, number: number, in: file)
                guard let key = json["key"], let request = json["request"] else {
                    throw BatchFileError(path: file.path, reason: "line \(number) has no key or request")
                }
                requests.append(.object(["request": request, "metadata": .object(["key": key])]))
            }
            input = .object(["requests": .object(["requests": .array(requests)])])
        }
        let body: JSONValue = .object([
            "batch": .object(["displayName": .string(llmqID), "inputConfig": input])
        ])
        let url = root + "/models/" + BatchSupport.escaped(route.providerModel) + ":batchGenerateContent"
        return try Self.batch(
            try await http.json(
                HTTPRequest(
                    method: .post, url: url, headers: headers(key, json: true), body: CanonicalJSON.encode(body))
            ))
    }

    /// Lists batches (`GET batches?pageSize=100&pageToken=…`) for the one whose
    /// `displayName` is `llmqID`.
    public func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?
    {
        var token: String?
        while true {
            var url = root + "/batches?pageSize=100"
            if let token { url += "&pageToken=" + BatchSupport.escaped(token) }
            let page = try await http.json(HTTPRequest(method: .get, url: url, headers: headers(key)))
            for item in page["operations"]?.arrayValue ?? page["batches"]?.arrayValue ?? [] {
                let batch = try Self.batch(item)
                if batch.llmqID == llmqID { return batch }
            }
            guard let next = page["nextPageToken"]?.stringValue, !next.isEmpty, next != token else { return nil }
            token = next
        }
    }

    public func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(try await fetch(batch.id, key: key))
    }

    func fetch(_ name: String, key: String) async throws -> JSONValue {
        try await http.json(HTTPRequest(method: .get, url: root + "/" + Self.path(name), headers: headers(key)))
    }

    /// `POST batches/{id}:cancel` (its answer is empty), then the batch as it now is.
    public func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        _ = try await http.send(
            HTTPRequest(
                method: .post, url: root + "/" + Self.path(batch.id) + ":cancel", headers: headers(key, json: true),
                body: Array("{}".utf8)))
        return try await get(batch, key: key)
    }

    /// The responses file (`GET /download/v1beta/files/…:download?alt=media`),
    /// streamed; or the batch's inline responses, written as the file's lines.
    public func download(_ batch: RemoteBatch, key: String, to file: URL) async throws {
        let json = try await fetch(batch.id, key: key)
        let output = Self.output(json)
        if let responsesFile = output?["responsesFile"]?.stringValue {
            let url =
                adapter.baseURL + "/download/" + adapter.apiVersion + "/" + Self.path(responsesFile)
                + ":download?alt=media"
            try await http.download([HTTPRequest(method: .get, url: url, headers: headers(key))], to: file)
            return
        }
        let inlined = output?["inlinedResponses"]
        let responses = inlined?["inlinedResponses"]?.arrayValue ?? inlined?.arrayValue ?? []
        // Inline responses come back in request order; one without its metadata
        // (PROVIDERS.md: `{"error":…}` alone) is keyed by position, `#<index>`.
        let lines = responses.enumerated().map { index, item -> [UInt8] in
            var members: [(String, JSONValue)] = [("key", item["metadata"]?["key"] ?? .string("#\(index)"))]
            if let error = item["error"] {
                members.append(("error", error))
            } else {
                members.append(("response", item["response"] ?? .null))
            }
            return BatchSupport.line(members)
        }
        try BatchHTTP.write(lines, to: file)
    }

    /// Lines of `{"key","response"}` (an answer, read as `generateContent`'s) or
    /// `{"key","error"}` (a `google.rpc.Status`). An error with gRPC code `CANCELLED`
    /// or `DEADLINE_EXCEEDED` is a request the batch did not run (cancelled, expired).
    public func results(in file: URL, _ each: (BatchResult) throws -> Void) throws {
        try JSONLines.forEach(in: file) { number, line in
            let json = try JSONLines.object(line, number: number, in: file)
            // A line without a key cannot be matched: its request counts as not run.
            guard let key = json["key"]?.stringValue else { return }
            try each(BatchResult(customID: key, outcome: outcome(json)))
        }
    }

    func outcome(_ line: JSONValue) -> BatchOutcome {
        if let error = line["error"], case .object = error {
            let (status, name) = Self.status(error)
            // What a cancelled or expired batch did not run (the codes are unverified:
            // PROVIDERS.md does not say how Gemini reports them).
            let canonical = error["status"]?.stringValue ?? name
            if canonical == "CANCELLED" || canonical == "DEADLINE_EXCEEDED" { return .notRun(reason: canonical ?? "") }
            var error = error.objectValue ?? [:]
            if error["status"] == nil, let name { error["status"] = .string(name) }
            return .failure(
                adapter.failure(BatchSupport.response(status: status, .object(["error": .object(error)]))))
        }
        guard let response = line["response"], case .object = response else {
            return .failure(
                ProviderFailure(status: nil, type: "invalid_response", message: "the result line has no response"))
        }
        switch adapter.parse(BatchSupport.response(status: 200, response)) {
        case .success(let answer): return .answer(answer)
        case .failure(let failure): return .failure(failure)
        }
    }

    /// The HTTP status and canonical name of a per-request error, whose `code` is a
    /// gRPC code (`google.rpc.Status`), or an HTTP status when it looks like one.
    static func status(_ error: JSONValue) -> (Int, String?) {
        let code = Int(error["code"]?.intValue ?? 2)
        if (100..<600).contains(code) { return (code, nil) }
        let table: [Int: (Int, String)] = [
            1: (499, "CANCELLED"), 2: (500, "UNKNOWN"), 3: (400, "INVALID_ARGUMENT"), 4: (504, "DEADLINE_EXCEEDED"),
            5: (404, "NOT_FOUND"), 6: (409, "ALREADY_EXISTS"), 7: (403, "PERMISSION_DENIED"),
            8: (429, "RESOURCE_EXHAUSTED"), 9: (400, "FAILED_PRECONDITION"), 10: (409, "ABORTED"),
            11: (400, "OUT_OF_RANGE"), 12: (501, "UNIMPLEMENTED"), 13: (500, "INTERNAL"), 14: (503, "UNAVAILABLE"),
            15: (500, "DATA_LOSS"), 16: (401, "UNAUTHENTICATED"),
        ]
        let mapped = table[code] ?? (500, "UNKNOWN")
        return (mapped.0, mapped.1)
    }

    /// The batch in an Operation (`{"name","metadata":{…}}`) or a bare batch.
    static func fields(_ json: JSONValue) -> JSONValue {
        if let metadata = json["metadata"], metadata["state"] != nil || metadata["displayName"] != nil {
            return metadata
        }
        return json
    }

    /// Where a done batch's output is: `metadata.output`, else the Operation's
    /// `response`, else a bare batch's `output`.
    static func output(_ json: JSONValue) -> JSONValue? {
        let fields = fields(json)
        for candidate in [fields["output"], json["response"], json["output"]] {
            if let candidate, candidate["responsesFile"] != nil || candidate["inlinedResponses"] != nil {
                return candidate
            }
        }
        return nil
    }

    /// A batch: `name`, and in its metadata `displayName`, `state`
    /// (`BATCH_STATE_*`, or the SDK's `JOB_STATE_*`), `createTime`, `batchStats`,
    /// `inputConfig.fileName` and `output`.
    static func batch(_ json: JSONValue) throws -> RemoteBatch {
        let fields = fields(json)
        guard let id = json["name"]?.stringValue ?? fields["name"]?.stringValue else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "the batch has no name")
        }
        let state = fields["state"]?.stringValue ?? "BATCH_STATE_PENDING"
        let stats = fields["batchStats"]
        return RemoteBatch(
            id: id, status: state, phase: phase(state), total: BatchSupport.count(stats?["requestCount"]),
            succeeded: BatchSupport.count(stats?["successfulRequestCount"]),
            failed: BatchSupport.count(stats?["failedRequestCount"]),
            outputLocation: output(json)?["responsesFile"]?.stringValue, llmqID: fields["displayName"]?.stringValue,
            inputFileID: fields["inputConfig"]?["fileName"]?.stringValue,
            createdAt: fields["createTime"]?.stringValue.flatMap(ISOTime.milliseconds),
            message: json["error"]?["message"]?.stringValue)
    }

    /// `PENDING | RUNNING` run; `SUCCEEDED | FAILED | CANCELLED | EXPIRED` have ended
    /// (the SDK's `JOB_STATE_PARTIALLY_SUCCEEDED` too; its `CANCELLING` is cancelling).
    static func phase(_ state: String) -> RemoteBatch.Phase {
        let word = state.split(separator: "_").last.map(String.init) ?? state
        switch word {
        case "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED": return .ended
        case "CANCELLING": return .cancelling
        default: return .running
        }
    }
}
