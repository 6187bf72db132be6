import Foundation
import LLMQCore
import LLMQTransport

/// Together AI's Batch API (`PROVIDERS.md` §6): upload a JSONL file in three steps,
/// create a batch from it, poll it, download its output and error files.
///
/// Input lines are OpenAI's; bodies and answers are the online adapter's. What differs
/// from OpenAI:
/// - the upload is `POST /files` (answered 302 with a presigned `Location` and
///   `X-Together-File-Id`, never followed), a `PUT` of the bytes to that URL without
///   the key, then `POST /files/{id}/preprocess`;
/// - create answers `{"job":{…}}`, get and cancel the bare job; statuses are UPPERCASE;
///   there are no request counts (only a 0–100 `progress`), no metadata, and a failed
///   job's reason is its top-level `error` string;
/// - the list is a bare array with no paging and no order, so `find` looks for the
///   job made from the recorded input file;
/// - batch errors are flat, `{"error":"…"}`, which the adapter reads as the message.
public struct TogetherBatchAPI: ProviderBatchAPI {
    public var provider: Provider { openAI.provider }
    /// Together's limits: 50,000 requests and 100 MB per batch file.
    public var maxRequests = 50_000
    public var maxBytes = 100_000_000

    /// OpenAI's batch API on the same adapter: input lines, the endpoint, get and
    /// cancel calls, result files and their download are the same.
    let openAI: OpenAIBatchAPI
    var adapter: OpenAIAdapter { openAI.adapter }
    var http: BatchHTTP { openAI.http }

    /// - Parameter options: for every call; the default waits up to two minutes for
    ///   a silent server (a large upload is processed before the answer).
    public init(
        adapter: OpenAIAdapter, transport: any HTTPTransport,
        options: HTTPRequestOptions = HTTPRequestOptions(idleTimeout: .seconds(120))
    ) {
        openAI = OpenAIBatchAPI(adapter: adapter, transport: transport, options: options)
    }

    func headers(_ key: String, contentType: String? = nil) -> HTTPHeaders {
        openAI.headers(key, contentType: contentType)
    }

    /// OpenAI's line: `{"custom_id":…,"method":"POST","url":"/v1/chat/completions","body":{…}}`.
    /// Together takes `custom_id`s of up to 64 characters; llmq's are shorter.
    public func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8] {
        try openAI.inputLine(customID: customID, canonical: canonical, route: route)
    }

    /// The three steps: `POST /files` (form fields `purpose=batch-api`, `file_name`,
    /// `file_type=jsonl`), expecting a 302 that is not followed; `PUT` of the bytes to
    /// its `Location`, which is signed, so it carries no key; then
    /// `POST /files/{id}/preprocess`. Returns the file id.
    public func upload(file: URL, name: String, key: String) async throws -> String? {
        var filename = name
        if !filename.lowercased().hasSuffix(".jsonl") { filename += ".jsonl" }
        let form = "purpose=batch-api&file_name=" + BatchSupport.escaped(filename) + "&file_type=jsonl"
        let announced = try await http.transport.send(
            HTTPRequest(
                method: .post, url: adapter.baseURL + "/files",
                headers: headers(key, contentType: "application/x-www-form-urlencoded"), body: Array(form.utf8)),
            options: http.options)
        guard (300..<400).contains(announced.status) else {
            if !announced.isSuccess { throw adapter.failure(announced) }
            throw ProviderFailure(
                status: announced.status, type: "invalid_response", message: "the upload was not redirected to storage")
        }
        guard let location = announced.headers["Location"], !location.isEmpty,
            let fileID = announced.headers["X-Together-File-Id"], !fileID.isEmpty
        else {
            throw ProviderFailure(
                status: announced.status, type: "invalid_response",
                message: "the upload answer lacks its Location or X-Together-File-Id header")
        }
        // The signed URL is the credential: no Authorization (storage would refuse
        // two). The file is read as it is sent.
        do {
            _ = try await http.send(
                HTTPRequest(method: .put, url: storageURL(location), upload: HTTPUpload([.file(file.path)])))
        } catch let failure as ProviderFailure {
            // Storage's answer, not Together's: its 400s include a PUT that timed out
            // or was cut short. Without a status it is not taken as a refusal of the
            // file, and the upload is made again.
            throw ProviderFailure(
                status: nil, type: "storage",
                message: "the upload to Together's storage failed (HTTP \(failure.status ?? 0)): "
                    + Self.storageReason(failure.message) + "; llmq uploads the file again")
        }
        let processed = try await http.json(
            HTTPRequest(
                method: .post, url: adapter.baseURL + "/files/" + BatchSupport.escaped(fileID) + "/preprocess",
                headers: headers(key)))
        return processed["id"]?.stringValue ?? fileID
    }

    /// The `<Code>` and `<Message>` of an S3-style XML error, rather than the raw
    /// body (which can also list the signed request and the access key id).
    static func storageReason(_ body: String) -> String {
        func element(_ name: String) -> String? {
            guard let start = body.range(of: "<\(name)>"),
                let end = body.range(of: "</\(name)>", range: start.upperBound..<body.endIndex)
            else { return nil }
            return String(body[start.upperBound..<end.lowerBound])
        }
        guard let code = element("Code") else { return body }
        return element("Message").map { "\(code): \($0)" } ?? code
    }

    /// `Location` as an absolute URL (a relative one is taken from the API's origin).
    func storageURL(_ location: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        guard let scheme = adapter.baseURL.range(of: "://") else { return location }
        let origin =
            adapter.baseURL[scheme.upperBound...].firstIndex(of: "/").map { String(adapter.baseURL[..<$0]) }
            ?? adapter.baseURL
        return origin + (location.hasPrefix("/") ? "" : "/") + location
    }

    /// `POST /batches` with the file id, the chat-completions endpoint and the 24 h
    /// window, answered `{"job":{…},"warning"?}`. Together keeps no tag: the batch is
    /// found again by its input file.
    public func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch
    {
        guard let inputFileID else {
            throw ProviderFailure(
                status: nil, type: "invalid_request", message: "\(provider.rawValue) batches need an uploaded file")
        }
        let body: JSONValue = .object([
            "input_file_id": .string(inputFileID), "endpoint": .string(OpenAIBatchAPI.endpoint),
            "completion_window": .string("24h"),
        ])
        let response = try await http.send(
            HTTPRequest(
                method: .post, url: adapter.baseURL + "/batches",
                headers: headers(key, contentType: "application/json"),
                body: CanonicalJSON.encode(body)))
        let json = try? JSONParser.parse(response.body)
        guard let job = json?["job"], job["id"]?.stringValue != nil else {
            // Together's own client takes a reply without a job as "not created".
            throw ProviderFailure(
                status: response.status, type: "invalid_response",
                message: json?["warning"]?.stringValue.map { "no batch was created: " + $0 }
                    ?? "no batch was created (the answer has no job)")
        }
        return try Self.batch(job)
    }

    /// Lists every batch (`GET /batches`: a bare array, unpaged, unordered) for the
    /// ones made from `inputFileID`, not in `excluding`; the newest if several are.
    /// Without an input file id there is nothing to match.
    public func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?
    {
        guard let inputFileID else { return nil }
        let response = try await http.send(
            HTTPRequest(method: .get, url: adapter.baseURL + "/batches", headers: headers(key)))
        guard let list = (try? JSONParser.parse(response.body))?.arrayValue else {
            throw ProviderFailure(
                status: response.status, type: "invalid_response", message: "the batch list is not a JSON array")
        }
        var found: RemoteBatch?
        for item in list where item["input_file_id"]?.stringValue == inputFileID {
            let batch = try Self.batch(item)
            guard !excluding.contains(batch.id) else { continue }
            if let best = found, (best.createdAt ?? .min) >= (batch.createdAt ?? .min) { continue }
            found = batch
        }
        return found
    }

    /// The bare job (`GET /batches/{id}`).
    public func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(try await openAI.batchObject(batch.id, cancel: false, key: key))
    }

    /// The bare job (`POST /batches/{id}/cancel`): `CANCELING`, then `CANCELLED`.
    public func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(try await openAI.batchObject(batch.id, cancel: true, key: key))
    }

    /// The output file, then the error file (`GET /files/{id}/content`), in one file.
    public func download(_ batch: RemoteBatch, key: String, to file: URL) async throws {
        try await openAI.download(batch, key: key, to: file)
    }

    /// OpenAI's lines: output `{"id","custom_id","response":{"status_code","body"}}`
    /// and error `{"id","custom_id","error":{"code","message"}}`. Requests an expired
    /// or cancelled job did not run are in neither file.
    public func results(in file: URL, _ each: (BatchResult) throws -> Void) throws {
        try openAI.results(in: file, each)
    }

    /// A job: `status` (UPPERCASE), output and error file ids (absent or null until
    /// the files exist), `input_file_id`, `created_at` (ISO 8601), and a failed job's
    /// `error`. There are no counts.
    static func batch(_ json: JSONValue) throws -> RemoteBatch {
        guard let id = json["id"]?.stringValue, let status = json["status"]?.stringValue else {
            throw ProviderFailure(status: 200, type: "invalid_response", message: "the batch has no id or status")
        }
        func text(_ name: String) -> String? {
            json[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        }
        return RemoteBatch(
            id: id, status: status, phase: phase(status), outputLocation: text("output_file_id"),
            errorLocation: text("error_file_id"), inputFileID: text("input_file_id"),
            createdAt: text("created_at").flatMap(ISOTime.milliseconds), message: text("error"))
    }

    /// `VALIDATING | IN_PROGRESS` run; `CANCELING` is on its way to `CANCELLED`;
    /// `COMPLETED | FAILED | EXPIRED | CANCELLED` have ended. A status Together adds
    /// later is taken as running.
    static func phase(_ status: String) -> RemoteBatch.Phase {
        switch status.uppercased() {
        case "COMPLETED", "FAILED", "EXPIRED", "CANCELLED": .ended
        case "CANCELING", "CANCELLING": .cancelling
        default: .running
        }
    }
}
