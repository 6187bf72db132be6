import LLMQCore
import NIOHTTP1

/// OpenAI's Files and Batch APIs (`PROVIDERS.md` §2): upload a JSONL file, create a
/// batch on it, poll it, download its output and error files.
///
/// - `POST /v1/files` takes `multipart/form-data` with `file` and `purpose`; a batch
///   file must be named `*.jsonl` and be at most 200 MB. `GET /v1/files[/{id}]`,
///   `GET /v1/files/{id}/content` and `DELETE /v1/files/{id}` serve and remove files.
/// - `POST /v1/batches` checks its body at once (400 for unknown fields, a wrong
///   `endpoint` or `completion_window`, bad `metadata`; 404 for an unknown file) and
///   answers `validating`. The file's lines are checked as the real validation step
///   checks them (JSON, `custom_id` present and unique, `method` POST, `url` equal to
///   the endpoint, one model, at most 50,000 lines): a bad file makes the batch
///   `failed` with `errors` once validation is over.
/// - Each line is answered exactly as `POST {url}` would be answered online
///   (`BatchLineAnswerer`): a line the online endpoint refuses keeps its 4xx status and
///   error body, in the error file.
/// - Then `in_progress` (request counts growing), `finalizing`, `completed`, along
///   `BatchTimeline`; or `expired`, with the lines run before it in the output file
///   and the rest in the error file as `batch_expired`. Cancel answers `cancelling`,
///   and the batch is `cancelled` when next seen: lines run before the cancel keep
///   their answers, the rest are `batch_cancelled`.
/// - Output and error lines come in shuffled order (real files are unordered).
///
/// Error messages for the validation codes and the 404s follow the real API's style
/// but are **(unverified)**.
final class OpenAIBatchSurface: MockSurfaceBesideOnline {
    static let uploadFile = 0
    static let listFiles = 1
    static let getFile = 2
    static let fileContent = 3
    static let deleteFile = 4
    static let createBatch = 5
    static let listBatches = 6
    static let getBatch = 7
    static let cancelBatch = 8

    let endpointNames = [
        "POST /v1/files", "GET /v1/files", "GET /v1/files/{file_id}", "GET /v1/files/{file_id}/content",
        "DELETE /v1/files/{file_id}", "POST /v1/batches", "GET /v1/batches", "GET /v1/batches/{batch_id}",
        "POST /v1/batches/{batch_id}/cancel",
    ]

    /// The endpoints a batch may target (`PROVIDERS.md` §2).
    static let batchEndpoints = [
        "/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
        "/v1/images/generations", "/v1/images/edits", "/v1/videos",
    ]
    static let purposes = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
    static let maximumRequests = 50_000
    static let maximumBatchFileBytes = 200 << 20
    /// Most validation errors listed in a failed batch's `errors`.
    static let maximumListedErrors = 100

    let online: OpenAISurface
    let store: MockBatchStore

    init(online: OpenAISurface, store: MockBatchStore) {
        self.online = online
        self.store = store
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "v1" else { return nil }
        switch (method, parts[2], parts.count) {
        case (.POST, "files", 3): return Self.uploadFile
        case (.GET, "files", 3): return Self.listFiles
        case (.GET, "files", 4) where !parts[3].isEmpty: return Self.getFile
        case (.GET, "files", 5) where !parts[3].isEmpty && parts[4] == "content": return Self.fileContent
        case (.DELETE, "files", 4) where !parts[3].isEmpty: return Self.deleteFile
        case (.POST, "batches", 3): return Self.createBatch
        case (.GET, "batches", 3): return Self.listBatches
        case (.GET, "batches", 4) where !parts[3].isEmpty: return Self.getBatch
        case (.POST, "batches", 5) where !parts[3].isEmpty && parts[4] == "cancel": return Self.cancelBatch
        default: return nil
        }
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        if let failure = online.authenticate(request) { return .respond(online.error(failure, context: &context)) }
        let id = String(request.path.split(separator: "/").dropFirst(2).first ?? "")
        let response: MockResponse
        switch endpoint {
        case Self.uploadFile: response = upload(request, context: &context)
        case Self.listFiles: response = listFiles(request, context: &context)
        case Self.getFile: response = getFile(id, context: &context)
        case Self.fileContent: response = fileContent(id, context: &context)
        case Self.deleteFile: response = deleteFile(id, context: &context)
        case Self.createBatch: response = createBatch(request, context: &context)
        case Self.listBatches: response = listBatches(request, context: &context)
        case Self.getBatch: response = getBatch(id, context: &context)
        default: response = cancelBatch(id, context: &context)
        }
        return .respond(response)
    }

    // MARK: - Files

    private func upload(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        let malformed = OpenAIError(
            message:
                "Invalid request: the body must be multipart/form-data with a 'file' part and a 'purpose' part.")
        guard let contentType = request.headers.first(name: "content-type"),
            let boundary = MultipartFormData.boundary(contentType: contentType),
            let form = MultipartFormData(Array(request.body.readableBytesView), boundary: boundary)
        else { return online.error(malformed, context: &context) }
        guard let purpose = form.part("purpose")?.text else {
            return online.error(Self.missing("purpose"), context: &context)
        }
        guard let file = form.part("file") else { return online.error(Self.missing("file"), context: &context) }
        guard Self.purposes.contains(purpose) else {
            return online.error(
                OpenAIError(
                    message:
                        "Invalid value: '\(purpose)'. Supported values are: "
                        + Self.quotedList(Self.purposes) + ".",
                    param: "purpose", code: "invalid_value"),
                context: &context)
        }
        let filename = file.filename ?? "file"
        if purpose == "batch" {
            guard filename.lowercased().hasSuffix(".jsonl") else {
                return online.error(
                    OpenAIError(message: "Invalid file format for Batch API. Must be .jsonl", param: "file"),
                    context: &context)
            }
            guard file.body.count <= Self.maximumBatchFileBytes else {
                return online.error(
                    OpenAIError(
                        message:
                            "File is too large: \(file.body.count) bytes. Files with purpose 'batch' may be at most "
                            + "200 MB.",
                        param: "file"),
                    context: &context)
            }
        }
        let stored = StoredFile(
            provider: .openAI, id: context.makeID(prefix: "file-", digits: 22), filename: filename, purpose: purpose,
            mimeType: file.contentType ?? "application/octet-stream", created: store.now(), bytes: Array(file.body))
        store.addFile(stored)
        context.server.stats.recordFileUploaded()
        var body = ByteWriter(capacity: 256)
        Self.writeFile(stored, to: &body)
        return ok(body, context: context)
    }

    private func listFiles(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        var files = store.files(provider: .openAI).reversed() as [StoredFile]
        if let purpose = GeminiSurface.queryValue(request.query, "purpose") {
            files = files.filter { $0.purpose == purpose }
        }
        var body = ByteWriter(capacity: 64 + files.count * 200)
        body.writeStaticString("{\"object\":\"list\",\"data\":[")
        for (index, file) in files.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            Self.writeFile(file, to: &body)
        }
        body.writeStaticString("],\"first_id\":")
        body.writeJSONStringOrNull(files.first?.id)
        body.writeStaticString(",\"last_id\":")
        body.writeJSONStringOrNull(files.last?.id)
        body.writeStaticString(",\"has_more\":false}")
        return ok(body, context: context)
    }

    private func getFile(_ id: String, context: inout MockRequestContext) -> MockResponse {
        guard let file = store.file(id, provider: .openAI) else { return noSuchFile(id, context: &context) }
        var body = ByteWriter(capacity: 256)
        Self.writeFile(file, to: &body)
        return ok(body, context: context)
    }

    private func fileContent(_ id: String, context: inout MockRequestContext) -> MockResponse {
        guard let file = store.file(id, provider: .openAI) else { return noSuchFile(id, context: &context) }
        return MockResponse(
            status: .ok, headers: online.baseHeaders(context: context, contentType: "application/octet-stream"),
            body: .full(file.bytes))
    }

    private func deleteFile(_ id: String, context: inout MockRequestContext) -> MockResponse {
        guard store.deleteFile(id, provider: .openAI) else { return noSuchFile(id, context: &context) }
        var body = ByteWriter(capacity: 96)
        body.writeStaticString("{\"id\":")
        body.writeJSONString(id)
        body.writeStaticString(",\"object\":\"file\",\"deleted\":true}")
        return ok(body, context: context)
    }

    private func noSuchFile(_ id: String, context: inout MockRequestContext) -> MockResponse {
        online.error(
            OpenAIError(status: .notFound, message: "No such File object: \(id)", param: "id"), context: &context)
    }

    static func writeFile(_ file: StoredFile, to body: inout ByteWriter) {
        body.writeStaticString("{\"id\":")
        body.writeJSONString(file.id)
        body.writeStaticString(",\"object\":\"file\",\"bytes\":")
        body.writeDecimal(file.bytes.count)
        body.writeStaticString(",\"created_at\":")
        body.writeDecimal(Int(file.created))
        body.writeStaticString(",\"filename\":")
        body.writeJSONString(file.filename)
        body.writeStaticString(",\"purpose\":")
        body.writeJSONString(file.purpose)
        body.writeStaticString(",\"status\":\"processed\",\"expires_at\":null,\"status_details\":null}")
    }

    // MARK: - Creating a batch

    static let createFields: Set<String> = [
        "input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after",
    ]

    private func createBatch(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        let parsed: (fileID: String, endpoint: String, metadata: JSONValue?)
        do {
            parsed = try Self.checkCreate(request.body.jsonObject())
        } catch {
            return online.error(error, context: &context)
        }
        guard let file = store.file(parsed.fileID, provider: .openAI) else {
            return online.error(
                OpenAIError(
                    status: .notFound, message: "No such File object: \(parsed.fileID)", param: "input_file_id"),
                context: &context)
        }
        guard file.purpose == "batch" else {
            return online.error(
                OpenAIError(
                    message:
                        "Invalid 'input_file_id': \(file.id) has purpose '\(file.purpose)'; a batch's input file "
                        + "must have purpose 'batch'.",
                    param: "input_file_id", code: "invalid_value"),
                context: &context)
        }
        let now = store.now()
        let id = Self.hexID(prefix: "batch_", context: &context)
        var fields = MockBatch.OpenAIFields(
            endpoint: parsed.endpoint, inputFileID: file.id, completionWindow: "24h", metadata: parsed.metadata,
            outputFileID: context.makeID(prefix: "file-", digits: 22),
            errorFileID: context.makeID(prefix: "file-", digits: 22))
        var lines: [BatchLine] = []
        switch Self.validate(file.bytes, endpoint: parsed.endpoint) {
        case .failure(let errors):
            fields.validationErrors = errors.errors
        case .success(let requests):
            fields.model = requests.first?.body["model"]?.stringValue
            lines.reserveCapacity(requests.count)
            for line in requests { lines.append(answer(line, headers: request.headers, context: &context)) }
        }
        let batch = MockBatch(
            provider: .openAI, id: id, timeline: store.timeline(id: id, created: now), lines: lines,
            runOrder: BatchLineAnswerer.runOrder(count: lines.count, id: id, seed: store.seed),
            shuffleSeed: context.generator.next(), openAI: fields)
        store.insert(batch)
        context.server.stats.recordBatchCreated(.openAI, id: id, requests: lines.count)
        return render(batch, at: now, justCreated: true, context: &context)
    }

    /// The body's input file, endpoint and metadata, or the 400 the API answers.
    private static func checkCreate(_ object: JSONObject?) throws(OpenAIError) -> (
        fileID: String, endpoint: String, metadata: JSONValue?
    ) {
        guard let object else {
            throw OpenAIError(
                message:
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                    + "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
                    + "not valid JSON.)")
        }
        for key in object.keys where !createFields.contains(key) {
            throw OpenAIError(message: "Unrecognized request argument supplied: \(key)")
        }
        let fileID = try requiredString(object, "input_file_id")
        let endpoint = try requiredString(object, "endpoint")
        guard batchEndpoints.contains(endpoint) else {
            throw OpenAIError(
                message: "Invalid value: '\(endpoint)'. Supported values are: \(quotedList(batchEndpoints)).",
                param: "endpoint", code: "invalid_value")
        }
        let window = try requiredString(object, "completion_window")
        guard window == "24h" else {
            throw OpenAIError(
                message: "Invalid value: '\(window)'. Supported values are: '24h'.", param: "completion_window",
                code: "invalid_value")
        }
        let metadata = object["metadata"].flatMap { $0 == .null ? nil : $0 }
        if let metadata { try checkMetadata(metadata) }
        if let expiry = object["output_expires_after"], expiry != .null {
            guard let fields = expiry.objectValue else {
                throw invalidType("output_expires_after", "an object", expiry)
            }
            guard fields["anchor"] == .string("created_at") else {
                throw OpenAIError(
                    message: "Invalid value for 'output_expires_after.anchor'. Supported values are: 'created_at'.",
                    param: "output_expires_after.anchor", code: "invalid_value")
            }
            guard let seconds = fields["seconds"]?.intValue, (3600...2_592_000).contains(seconds) else {
                throw OpenAIError(
                    message: "Invalid 'output_expires_after.seconds': expected an integer from 3600 to 2592000.",
                    param: "output_expires_after.seconds", code: "invalid_value")
            }
        }
        return (fileID, endpoint, metadata)
    }

    /// Metadata: at most 16 pairs, keys up to 64 characters, string values up to 512.
    private static func checkMetadata(_ metadata: JSONValue) throws(OpenAIError) {
        guard let pairs = metadata.objectValue else { throw invalidType("metadata", "an object", metadata) }
        guard pairs.count <= 16 else {
            throw OpenAIError(
                message:
                    "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got "
                    + "\(pairs.count) properties instead.",
                param: "metadata", code: "object_above_max_properties")
        }
        for (key, value) in pairs {
            guard key.count <= 64 else {
                throw OpenAIError(
                    message:
                        "Invalid 'metadata': string too long. Keys must be at most 64 characters, but got a key of "
                        + "\(key.count) characters.",
                    param: "metadata", code: "string_above_max_length")
            }
            guard let text = value.stringValue else { throw invalidType("metadata.\(key)", "a string", value) }
            guard text.count <= 512 else {
                throw OpenAIError(
                    message:
                        "Invalid 'metadata.\(key)': string too long. Expected a string with maximum length 512, but "
                        + "got a string with length \(text.count) instead.",
                    param: "metadata.\(key)", code: "string_above_max_length")
            }
        }
    }

    /// One input line that passed validation.
    struct InputLine {
        var customID: String
        var url: String
        var body: JSONValue
    }

    /// Checks an input file as the validation step does; the lines, or up to
    /// `maximumListedErrors` errors.
    static func validate(_ bytes: [UInt8], endpoint: String) -> Result<[InputLine], ValidationErrors> {
        var rawLines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        while let last = rawLines.last, last.allSatisfy({ $0 == 13 || $0 == 32 }) { rawLines.removeLast() }
        guard !rawLines.isEmpty else {
            return .failure(
                ValidationErrors([.init(code: "empty_file", message: "The batch input file is empty.")]))
        }
        guard rawLines.count <= maximumRequests else {
            return .failure(
                ValidationErrors([
                    .init(
                        code: "too_many_requests",
                        message:
                            "The batch input file has \(rawLines.count) requests, more than the \(maximumRequests) "
                            + "allowed in one batch.")
                ]))
        }
        var errors: [BatchValidationError] = []
        var lines: [InputLine] = []
        var seen = Set<String>()
        var model: String?
        for (offset, raw) in rawLines.enumerated() {
            guard errors.count < maximumListedErrors else { break }
            let number = offset + 1
            func fail(_ code: String, _ message: String, _ param: String? = nil) {
                errors.append(BatchValidationError(code: code, message: message, param: param, line: number))
            }
            let text = raw.last == 13 ? raw.dropLast() : raw
            guard let object = (try? JSONParser.parse(Array(text)))?.objectValue else {
                fail("invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            }
            guard let customID = object["custom_id"]?.stringValue else {
                fail("missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id")
                continue
            }
            guard seen.insert(customID).inserted else {
                fail(
                    "duplicate_custom_id",
                    "The custom_id for this request is a duplicate of another request. The custom_id parameter "
                        + "must be unique for each request in a batch.",
                    "custom_id")
                continue
            }
            guard let method = object["method"]?.stringValue else {
                fail("missing_required_parameter", "Missing required parameter: 'method'.", "method")
                continue
            }
            guard method == "POST" else {
                fail("invalid_value", "Invalid value: '\(method)'. Supported values are: 'POST'.", "method")
                continue
            }
            guard let url = object["url"]?.stringValue else {
                fail("missing_required_parameter", "Missing required parameter: 'url'.", "url")
                continue
            }
            guard url == endpoint else {
                fail(
                    "invalid_url",
                    "The URL provided for this request does not match the batch endpoint '\(endpoint)'.", "url")
                continue
            }
            guard let body = object["body"], body.objectValue != nil else {
                fail("missing_required_parameter", "Missing required parameter: 'body'.", "body")
                continue
            }
            guard let lineModel = body["model"]?.stringValue else {
                fail("missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model")
                continue
            }
            if let model, model != lineModel {
                fail(
                    "mismatched_model",
                    "The model '\(lineModel)' does not match the model '\(model)' of the requests before it; all "
                        + "requests in a batch must use the same model.",
                    "body.model")
                continue
            }
            model = lineModel
            lines.append(InputLine(customID: customID, url: url, body: body))
        }
        return errors.isEmpty ? .success(lines) : .failure(ValidationErrors(errors))
    }

    struct ValidationErrors: Error {
        var errors: [BatchValidationError]
        init(_ errors: [BatchValidationError]) { self.errors = errors }
    }

    private func answer(_ line: InputLine, headers: MockHeaders, context: inout MockRequestContext) -> BatchLine {
        var lineContext = BatchLineAnswerer.lineContext(&context)
        let requestID = lineContext.requestID
        let outcome = BatchLineAnswerer.answer(
            target: line.url, headers: headers, body: line.body.compactBytes,
            failing: store.lineFails(key: line.customID), context: &lineContext)
        var status = 200
        var body: [UInt8]
        switch outcome {
        case .answered(let answerStatus, let answerBody):
            status = answerStatus
            body = answerBody
        case .streamRequested:
            status = 400
            var writer = ByteWriter(capacity: 160)
            OpenAIError(message: "Streaming is not supported in batch requests.", param: "stream").write(to: &writer)
            body = writer.bytes
        }
        var usage: BatchLine.TokenUsage?
        if (200..<300).contains(status), let json = try? JSONParser.parse(body), let counts = json["usage"] {
            usage = BatchLine.TokenUsage(
                input: Int(counts["prompt_tokens"]?.intValue ?? 0),
                cached: Int(counts["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0),
                output: Int(counts["completion_tokens"]?.intValue ?? 0),
                reasoning: Int(counts["completion_tokens_details"]?["reasoning_tokens"]?.intValue ?? 0))
        }
        return BatchLine(
            key: line.customID, status: status, body: body, requestID: requestID,
            lineID: Self.hexID(prefix: "batch_req_", context: &context), usage: usage)
    }

    // MARK: - Batches

    private func getBatch(_ id: String, context: inout MockRequestContext) -> MockResponse {
        let now = store.now()
        guard let batch = store.observe(id, provider: .openAI, at: now, writeResults: Self.results) else {
            return noSuchBatch(id, context: &context)
        }
        return render(batch, at: now, context: &context)
    }

    private func cancelBatch(_ id: String, context: inout MockRequestContext) -> MockResponse {
        let now = store.now()
        switch store.cancel(id, provider: .openAI, at: now, writeResults: Self.results) {
        case .notFound:
            return noSuchBatch(id, context: &context)
        case .ended(let batch):
            return online.error(
                OpenAIError(
                    message: "Cannot cancel a batch with status '\(Self.status(batch, at: now))'.", param: "batch_id"),
                context: &context)
        case .alreadyCancelled(let batch), .cancelled(let batch):
            return render(batch, at: now, context: &context)
        }
    }

    private func listBatches(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        var limit = 20
        if let text = GeminiSurface.queryValue(request.query, "limit") {
            guard let value = Int(text), (1...100).contains(value) else {
                return online.error(
                    OpenAIError(
                        message: "Invalid 'limit': expected an integer from 1 to 100, but got '\(text)' instead.",
                        param: "limit", code: "invalid_value"),
                    context: &context)
            }
            limit = value
        }
        let now = store.now()
        var batches = store.batches(provider: .openAI, at: now, writeResults: Self.results)[...]
        if let after = GeminiSurface.queryValue(request.query, "after") {
            if let position = batches.firstIndex(where: { $0.id == after }) {
                batches = batches[(position + 1)...]
            } else {
                batches = []
            }
        }
        let page = batches.prefix(limit)
        var body = ByteWriter(capacity: 128 + page.count * 900)
        body.writeStaticString("{\"object\":\"list\",\"data\":[")
        for (index, batch) in page.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            Self.write(batch, at: now, justCreated: false, to: &body)
        }
        body.writeStaticString("],\"first_id\":")
        body.writeJSONStringOrNull(page.first?.id)
        body.writeStaticString(",\"last_id\":")
        body.writeJSONStringOrNull(page.last?.id)
        body.writeStaticString(",\"has_more\":")
        body.writeStaticString(batches.count > page.count ? "true" : "false")
        body.writeStaticString("}")
        return ok(body, context: context)
    }

    private func noSuchBatch(_ id: String, context: inout MockRequestContext) -> MockResponse {
        online.error(
            OpenAIError(status: .notFound, message: "No such Batch object: \(id)", param: "batch_id"),
            context: &context)
    }

    private func render(
        _ batch: MockBatch, at time: Double, justCreated: Bool = false, context: inout MockRequestContext
    )
        -> MockResponse
    {
        var body = ByteWriter(capacity: 1024)
        Self.write(batch, at: time, justCreated: justCreated, to: &body)
        return ok(body, context: context)
    }

    /// The batch's `status` at `time`.
    static func status(_ batch: MockBatch, at time: Double) -> String {
        let timeline = batch.timeline
        if batch.openAI?.validationErrors != nil, timeline.cancelledAt == nil, time >= timeline.validatedAt {
            return "failed"
        }
        switch timeline.phase(at: time) {
        case .validating: return "validating"
        case .inProgress: return "in_progress"
        case .finalizing: return "finalizing"
        case .cancelling: return "cancelling"
        case .ended(.completed): return "completed"
        case .ended(.expired): return "expired"
        case .ended(.cancelled): return "cancelled"
        }
    }

    /// Which result files an ended batch has: lines that ran and succeeded go to the
    /// output file; lines that ran and failed, and lines that never ran, to the error file.
    private static func resultFiles(_ batch: MockBatch) -> (output: Bool, error: Bool) {
        let ran = batch.ran(at: .infinity)
        var output = false
        var error = false
        for (index, line) in batch.lines.enumerated() {
            if ran[index] && line.succeeded { output = true } else { error = true }
        }
        return (output, error)
    }

    /// The Batch object: every field, null where the batch has not got there.
    static func write(_ batch: MockBatch, at time: Double, justCreated: Bool, to body: inout ByteWriter) {
        guard let fields = batch.openAI else { return }
        let timeline = batch.timeline
        let status = justCreated ? "validating" : Self.status(batch, at: time)
        let ended = ["completed", "expired", "cancelled"].contains(status)
        let validated =
            status != "validating" && status != "failed" && (timeline.cancelledAt ?? .infinity) >= timeline.validatedAt
        func stamp(_ value: Double?) {
            if let value { body.writeDecimal(Int(value)) } else { body.writeStaticString("null") }
        }
        body.writeStaticString("{\"id\":")
        body.writeJSONString(batch.id)
        body.writeStaticString(",\"object\":\"batch\",\"endpoint\":")
        body.writeJSONString(fields.endpoint)
        body.writeStaticString(",\"model\":")
        body.writeJSONStringOrNull(fields.model)
        body.writeStaticString(",\"errors\":")
        if status == "failed", let errors = fields.validationErrors {
            body.writeStaticString("{\"object\":\"list\",\"data\":[")
            for (index, error) in errors.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                body.writeStaticString("{\"code\":")
                body.writeJSONString(error.code)
                body.writeStaticString(",\"message\":")
                body.writeJSONString(error.message)
                body.writeStaticString(",\"param\":")
                body.writeJSONStringOrNull(error.param)
                body.writeStaticString(",\"line\":")
                if let line = error.line { body.writeDecimal(line) } else { body.writeStaticString("null") }
                body.writeStaticString("}")
            }
            body.writeStaticString("]}")
        } else {
            body.writeStaticString("null")
        }
        body.writeStaticString(",\"input_file_id\":")
        body.writeJSONString(fields.inputFileID)
        body.writeStaticString(",\"completion_window\":")
        body.writeJSONString(fields.completionWindow)
        body.writeStaticString(",\"status\":")
        body.writeJSONString(status)
        let files = ended ? resultFiles(batch) : (output: false, error: false)
        body.writeStaticString(",\"output_file_id\":")
        body.writeJSONStringOrNull(files.output ? fields.outputFileID : nil)
        body.writeStaticString(",\"error_file_id\":")
        body.writeJSONStringOrNull(files.error ? fields.errorFileID : nil)
        body.writeStaticString(",\"created_at\":")
        stamp(timeline.created)
        body.writeStaticString(",\"in_progress_at\":")
        stamp(validated && !justCreated ? timeline.validatedAt : nil)
        body.writeStaticString(",\"expires_at\":")
        stamp(timeline.created + 86_400)
        body.writeStaticString(",\"finalizing_at\":")
        stamp(status == "finalizing" || status == "completed" ? timeline.processedAt : nil)
        body.writeStaticString(",\"completed_at\":")
        stamp(status == "completed" ? timeline.endsAt : nil)
        body.writeStaticString(",\"failed_at\":")
        stamp(status == "failed" ? timeline.validatedAt : nil)
        body.writeStaticString(",\"expired_at\":")
        stamp(status == "expired" ? timeline.endsAt : nil)
        body.writeStaticString(",\"cancelling_at\":")
        stamp(justCreated ? nil : timeline.cancelledAt)
        body.writeStaticString(",\"cancelled_at\":")
        stamp(status == "cancelled" ? timeline.cancelSettledAt : nil)
        // Counts appear once validation is over; they grow as lines run.
        var completed = 0
        var failed = 0
        var usage = BatchLine.TokenUsage(input: 0, cached: 0, output: 0, reasoning: 0)
        if validated && !justCreated {
            for (index, ran) in batch.ran(at: time).enumerated() where ran {
                let line = batch.lines[index]
                if line.succeeded {
                    completed += 1
                    if let counts = line.usage {
                        usage.input += counts.input
                        usage.cached += counts.cached
                        usage.output += counts.output
                        usage.reasoning += counts.reasoning
                    }
                } else {
                    failed += 1
                }
            }
        }
        body.writeStaticString(",\"request_counts\":{\"total\":")
        body.writeDecimal(validated && !justCreated ? batch.lines.count : 0)
        body.writeStaticString(",\"completed\":")
        body.writeDecimal(completed)
        body.writeStaticString(",\"failed\":")
        body.writeDecimal(failed)
        body.writeStaticString("},\"usage\":{\"input_tokens\":")
        body.writeDecimal(usage.input)
        body.writeStaticString(",\"input_tokens_details\":{\"cached_tokens\":")
        body.writeDecimal(usage.cached)
        body.writeStaticString("},\"output_tokens\":")
        body.writeDecimal(usage.output)
        body.writeStaticString(",\"output_tokens_details\":{\"reasoning_tokens\":")
        body.writeDecimal(usage.reasoning)
        body.writeStaticString("},\"total_tokens\":")
        body.writeDecimal(usage.input + usage.output)
        body.writeStaticString("},\"metadata\":")
        if let metadata = fields.metadata {
            body.writeBytes(metadata.compactBytes)
        } else {
            body.writeStaticString("null")
        }
        body.writeStaticString("}")
    }

    /// The output and error files of a batch that has just ended, lines shuffled.
    @Sendable static func results(_ batch: MockBatch, at time: Double) -> [StoredFile] {
        guard let fields = batch.openAI, !batch.lines.isEmpty else { return [] }
        let ending = batch.timeline.phase(at: time)
        let ran = batch.ran(at: time)
        var output = ByteWriter(capacity: batch.lines.count * 900)
        var errors = ByteWriter(capacity: 1024)
        for index in batch.shuffledIndices() {
            let line = batch.lines[index]
            var entry = ByteWriter(capacity: 320 + line.body.count)
            entry.writeStaticString("{\"id\":")
            entry.writeJSONString(line.lineID)
            entry.writeStaticString(",\"custom_id\":")
            entry.writeJSONStringOrNull(line.key)
            if ran[index] {
                entry.writeStaticString(",\"response\":{\"status_code\":")
                entry.writeDecimal(line.status)
                entry.writeStaticString(",\"request_id\":")
                entry.writeJSONString(line.requestID)
                entry.writeStaticString(",\"body\":")
                entry.writeBytes(line.body)
                entry.writeStaticString("},\"error\":null}\n")
            } else if ending == .ended(.cancelled) {
                entry.writeString(
                    ",\"response\":null,\"error\":{\"code\":\"batch_cancelled\",\"message\":"
                        + "\"This request was not executed because the batch was cancelled.\"}}\n")
            } else {
                entry.writeString(
                    ",\"response\":null,\"error\":{\"code\":\"batch_expired\",\"message\":"
                        + "\"This request could not be executed before the completion window expired.\"}}\n")
            }
            if ran[index] && line.succeeded {
                output.writeBytes(entry.bytes)
            } else {
                errors.writeBytes(entry.bytes)
            }
        }
        var files: [StoredFile] = []
        if output.count > 0 {
            files.append(
                StoredFile(
                    provider: .openAI, id: fields.outputFileID, filename: "batch_\(batch.id)_output.jsonl",
                    purpose: "batch_output", mimeType: "application/jsonl", created: time, bytes: output.bytes,
                    generated: true))
        }
        if errors.count > 0 {
            files.append(
                StoredFile(
                    provider: .openAI, id: fields.errorFileID, filename: "batch_\(batch.id)_error.jsonl",
                    purpose: "batch_output", mimeType: "application/jsonl", created: time, bytes: errors.bytes,
                    generated: true))
        }
        return files
    }

    // MARK: - Helpers

    private func ok(_ body: ByteWriter, context: MockRequestContext) -> MockResponse {
        MockResponse(status: .ok, headers: online.baseHeaders(context: context), body: .full(body.bytes))
    }

    /// `prefix` and 32 hex digits (`batch_…`, `batch_req_…`).
    static func hexID(prefix: StaticString, context: inout MockRequestContext) -> String {
        var id = ByteWriter(capacity: 48)
        id.writeStaticString(prefix)
        id.writeHexadecimal(context.generator.next(), minimumDigits: 16)
        id.writeHexadecimal(context.generator.next(), minimumDigits: 16)
        return String(decoding: id.bytes, as: UTF8.self)
    }

    static func quotedList(_ values: [String]) -> String {
        let quoted = values.map { "'\($0)'" }
        return quoted.dropLast().joined(separator: ", ") + (quoted.count > 1 ? ", and " : "") + (quoted.last ?? "")
    }

    private static func requiredString(_ object: JSONObject, _ name: String) throws(OpenAIError) -> String {
        guard let value = object[name], value != .null else { throw missing(name) }
        guard let text = value.stringValue else { throw invalidType(name, "a string", value) }
        return text
    }

    private static func missing(_ param: String) -> OpenAIError {
        OpenAIError(
            message: "Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
    }

    private static func invalidType(_ param: String, _ expected: String, _ value: JSONValue) -> OpenAIError {
        OpenAIError(
            message: "Invalid type for '\(param)': expected \(expected), but got \(value.kindDescription) instead.",
            param: param, code: "invalid_type")
    }
}
