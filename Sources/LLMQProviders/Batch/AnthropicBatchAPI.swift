import Foundation
import LLMQCore
import LLMQTransport

/// Anthropic's Message Batches: the requests go inline with create
/// (`POST /v1/messages/batches`), results are read from the batch's `results_url`.
///
/// A batch carries no metadata, so `find` can only look for a batch of the same size
/// created since the intent was recorded.
public struct AnthropicBatchAPI: ProviderBatchAPI {
    public let provider = Provider.anthropic
    /// Anthropic's limits: 100,000 requests or 256 MB per batch.
    public var maxRequests = 100_000
    public var maxBytes = 256_000_000
    /// How far the provider's clock may be from ours when `find` looks for a batch
    /// created after a recorded intent.
    public var clockSkewMilliseconds: Int64 = 300_000

    let adapter: AnthropicAdapter
    let http: BatchHTTP

    /// - Parameter options: for every call; the default waits up to two minutes for
    ///   a silent server (a large create is read whole before the answer).
    public init(
        adapter: AnthropicAdapter, transport: any HTTPTransport,
        options: HTTPRequestOptions = HTTPRequestOptions(idleTimeout: .seconds(120))
    ) {
        self.adapter = adapter
        self.http = BatchHTTP(transport: transport, options: options, failure: { adapter.failure($0) })
    }

    var batchesURL: String { adapter.baseURL + "/v1/messages/batches" }

    func headers(_ key: String, json: Bool = false) -> HTTPHeaders {
        var headers: HTTPHeaders = ["anthropic-version": AnthropicAdapter.apiVersion]
        if json { headers.add(name: "Content-Type", value: "application/json") }
        if !key.isEmpty { headers.add(name: "x-api-key", value: key) }
        return headers
    }

    /// Whether Anthropic takes `id` as a `custom_id`: `^[a-zA-Z0-9_-]{1,64}$`.
    public static func acceptsCustomID(_ id: String) -> Bool {
        let bytes = id.utf8
        return (1...64).contains(bytes.count)
            && bytes.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }

    /// `{"custom_id":…,"params":{…Messages body, no stream…}}`. Anthropic takes only
    /// ids of 1 to 64 letters, digits, `_` and `-`: others are refused.
    public func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8] {
        guard Self.acceptsCustomID(customID) else {
            throw ProviderFailure(
                status: nil, type: "unsupported",
                message: "an Anthropic batch custom_id is 1 to 64 letters, digits, '_' or '-'")
        }
        let params = try adapter.body(canonical, route: route, stream: false)
        return BatchSupport.line([("custom_id", .string(customID)), ("params", .object(params))])
    }

    /// Nothing to upload: the requests go inline with `create`.
    public func upload(file: URL, name: String, key: String) async throws -> String? { nil }

    /// `POST /v1/messages/batches` with `{"requests":[…the file's lines…]}`.
    public func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch
    {
        // Up to 256 MB: written to disk beside the input file and sent from there,
        // never held in memory.
        let body = try BatchSupport.joinedLines(of: file, prefix: #"{"requests":["#, suffix: "]}")
        defer { unlink(body.path) }
        return try Self.batch(
            try await http.json(
                HTTPRequest(
                    method: .post, url: batchesURL, headers: headers(key, json: true),
                    upload: HTTPUpload([.file(body.path)])))
        )
    }

    /// Lists batches newest first (`GET /v1/messages/batches?limit=100&after_id=…`)
    /// back to `createdAfter`; of those created since then with `requestCount`
    /// requests, the one created nearest `createdAfter`.
    public func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?
    {
        let oldest = createdAfter - clockSkewMilliseconds
        var best: RemoteBatch?
        var after: String?
        while true {
            var url = batchesURL + "?limit=100"
            if let after { url += "&after_id=" + BatchSupport.escaped(after) }
            let page = try await http.json(HTTPRequest(method: .get, url: url, headers: headers(key)))
            let data = page["data"]?.arrayValue ?? []
            var reachedOlder = false
            for item in data {
                let batch = try Self.batch(item)
                guard let created = batch.createdAt else { continue }
                if created < oldest {
                    reachedOlder = true
                    continue
                }
                guard batch.total == requestCount, !excluding.contains(batch.id) else { continue }
                if let chosen = best?.createdAt, abs(chosen - createdAfter) <= abs(created - createdAfter) { continue }
                best = batch
            }
            guard page["has_more"] == .bool(true), !reachedOlder,
                let last = page["last_id"]?.stringValue ?? data.last?["id"]?.stringValue, last != after
            else { return best }
            after = last
        }
    }

    public func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(
            try await http.json(
                HTTPRequest(method: .get, url: batchesURL + "/" + BatchSupport.escaped(batch.id), headers: headers(key))
            ))
    }

    /// `POST …/{id}/cancel`: the batch goes to `canceling`, then ends.
    public func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch {
        try Self.batch(
            try await http.json(
                HTTPRequest(
                    method: .post, url: batchesURL + "/" + BatchSupport.escaped(batch.id) + "/cancel",
                    headers: headers(key))))
    }

    /// `GET results_url` (the SDK's `Accept: application/binary`), streamed.
    public func download(_ batch: RemoteBatch, key: String, to file: URL) async throws {
        var headers = headers(key)
        headers.add(name: "Accept", value: "application/binary")
        let url = batch.outputLocation ?? batchesURL + "/" + BatchSupport.escaped(batch.id) + "/results"
        try await http.download([HTTPRequest(method: .get, url: url, headers: headers)], to: file)
    }

    /// Lines of `{"custom_id","result":{"type":…}}`: `succeeded` carries the message,
    /// `errored` the error body, `canceled` and `expired` were not run.
    public func results(in file: URL, _ each: (BatchResult) throws -> Void) throws {
        try JSONLines.forEach(in: file) { number, line in
            let json = try JSONLines.object(line, number: number, in: file)
            // A line without an id cannot be matched: its request counts as not run.
            guard let customID = json["custom_id"]?.stringValue else { return }
            try each(BatchResult(customID: customID, outcome: outcome(json["result"] ?? .null)))
        }
    }

    func outcome(_ result: JSONValue) -> BatchOutcome {
        switch result["type"]?.stringValue {
        case "succeeded":
            switch adapter.parse(BatchSupport.response(status: 200, result["message"] ?? .null)) {
            case .success(let answer): return .answer(answer)
            case .failure(let failure): return .failure(failure)
            }
        case "errored":
            let body = result["error"] ?? .null
            let type = body["error"]?["type"]?.stringValue
            return .failure(adapter.failure(BatchSupport.response(status: Self.status(forErrorType: type), body)))
        case "canceled", "expired":
            return .notRun(reason: result["type"]?.stringValue ?? "")
        case let other:
            return .failure(
                ProviderFailure(
                    status: nil, type: "invalid_response",
                    message: "unknown batch result type \(other.map { "\"\($0)\"" } ?? "(none)")"))
        }
    }

    /// The HTTP status Anthropic sends with an error type (PROVIDERS.md §3), since a
    /// result line carries the type only.
    static func status(forErrorType type: String?) -> Int {
        switch type {
        case "invalid_request_error": 400
        case "authentication_error": 401
        case "billing_error": 402
        case "permission_error": 403
        case "not_found_error": 404
        case "request_too_large": 413
        case "rate_limit_error": 429
        case "timeout_error": 504
        case "overloaded_error": 529
        default: 500
        }
    }

    /// A batch object: `processing_status` (`in_progress | canceling | ended`),
    /// `request_counts` (the total is their sum), `results_url`, RFC 3339 times.
    static func batch(_ json: JSONValue) throws -> RemoteBatch {
        guard let id = json["id"]?.stringValue, let status = json["processing_status"]?.stringValue else {
            throw ProviderFailure(
                status: 200, type: "invalid_response", message: "the batch has no id or processing_status")
        }
        let counts = json["request_counts"]
        let total = ["processing", "succeeded", "errored", "canceled", "expired"].compactMap {
            BatchSupport.count(counts?[$0])
        }
        let phase: RemoteBatch.Phase =
            switch status {
            case "ended": .ended
            case "canceling": .cancelling
            default: .running
            }
        return RemoteBatch(
            id: id, status: status, phase: phase, total: total.isEmpty ? nil : total.reduce(0, +),
            succeeded: BatchSupport.count(counts?["succeeded"]), failed: BatchSupport.count(counts?["errored"]),
            outputLocation: json["results_url"]?.stringValue,
            createdAt: json["created_at"]?.stringValue.flatMap(ISOTime.milliseconds))
    }
}
