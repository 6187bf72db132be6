import LLMQCore
import NIOCore
import NIOHTTP1

/// Together AI's Files and Batch APIs (`PROVIDERS.md` §6, with the wire details of
/// together-python, together-py and the OpenAPI spec).
///
/// - Upload in three steps: `POST /v1/files` with form fields `purpose`, `file_name`
///   and `file_type` (urlencoded or multipart, as the two SDKs send them) answers 302
///   with `Location` (a presigned-style URL on the mock itself,
///   `/_mock/together-upload/{id}?X-Amz-Signature=…`) and `X-Together-File-Id`; a `PUT`
///   of the bytes there, without `Authorization` (storage refuses a second credential),
///   answers 200; `POST /v1/files/{id}/preprocess` answers the file object with its
///   PascalCase `FileType`, `LineCount` and `Processed`. A multipart body with a `file`
///   part is stored at once (the docs' one-step curl form).
/// - `POST /v1/batches` answers 201 `{"job":{…}}`; get and cancel the bare job; the
///   list a bare array, unordered. Statuses are UPPERCASE: `VALIDATING`,
///   `IN_PROGRESS`, then `COMPLETED` along `BatchTimeline`, or `EXPIRED` (what ran is in
///   the output file, the rest nowhere), or after a cancel `CANCELING` until next seen,
///   then `CANCELLED`. `progress` is 0–100; times are ISO 8601 with microseconds;
///   `job_deadline` is a day after creation; there are no request counts.
/// - An input file that is missing, not preprocessed, not JSONL of `custom_id` (unique,
///   at most 64 characters) and `body`, or over the limits makes the job `FAILED` with
///   a top-level `error` once validation is over, and no files.
/// - Each line is answered as Together's online endpoint answers it
///   (`BatchLineAnswerer` through `/together/v1/chat/completions`): a success goes to
///   the output file as `{"id":"br_…","custom_id","response":{"status_code","body"}}`,
///   a refusal to the error file as `{"id","custom_id","error":{"code","message"}}`.
///   Output and error file ids appear only for files with lines.
/// - Batch routes answer errors flat, `{"error":"…"}`; file routes nested,
///   `{"error":{"message","type"}}`.
///
/// Together's paths are OpenAI's, on one port. Under the mock's `/together/v1` prefix
/// every request here is Together's. Under `/v1` this surface takes only what is
/// Together's by its content: an upload with `purpose=batch-api`, `preprocess`, a
/// create naming a Together file, and the files and jobs it made by id; the lists
/// under `/v1` stay OpenAI's (one cannot tell whose list is asked for), so a Together
/// client that lists batches needs `TOGETHER_BASE_URL=http://HOST:PORT/together/v1`.
/// Stats name the endpoints by their `/together/v1` paths wherever they arrive.
///
/// Error wording, the validation rules beyond the documented limits, the output file
/// names, the error-line code of a 5xx (`batch_server_error`) and the storage's XML
/// errors are **(unverified)**.
final class TogetherBatchSurface: MockSurfaceBesideOnline {
    static let uploadFile = 0
    static let putUpload = 1
    static let preprocess = 2
    static let listFiles = 3
    static let getFile = 4
    static let fileContent = 5
    static let createBatch = 6
    static let listBatches = 7
    static let getBatch = 8
    static let cancelBatch = 9

    let endpointNames = [
        "POST /together/v1/files", "PUT /_mock/together-upload/{file_id}",
        "POST /together/v1/files/{file_id}/preprocess", "GET /together/v1/files", "GET /together/v1/files/{file_id}",
        "GET /together/v1/files/{file_id}/content", "POST /together/v1/batches", "GET /together/v1/batches",
        "GET /together/v1/batches/{id}", "POST /together/v1/batches/{id}/cancel",
    ]

    /// Where the 302 sends the bytes (standing in for Together's presigned storage URL).
    static let uploadPath = "/_mock/together-upload/"
    static let purposes = ["fine-tune", "calibration", "eval", "batch-api"]
    /// `file_type` values and the MIME type each is kept under.
    static let fileTypes = [
        ("jsonl", "application/jsonl"), ("csv", "text/csv"), ("parquet", "application/vnd.apache.parquet"),
    ]
    /// The endpoints a batch may target here (Together also batches audio).
    static let batchEndpoints = ["/v1/chat/completions"]
    static let maximumRequests = 50_000
    static let maximumBatchFileBytes = 100_000_000
    static let maximumCustomIDLength = 64

    let online: TogetherSurface
    let store: MockBatchStore
    /// The account's `user_id` on every job: 24 hex digits, as Together's.
    let userID: String

    init(online: TogetherSurface, store: MockBatchStore) {
        self.online = online
        self.store = store
        var id = ByteWriter(capacity: 24)
        id.writeHexadecimal(SplitMix64.mix(store.seed ^ 0x7573_6572), minimumDigits: 16)
        id.writeHexadecimal(SplitMix64.mix(store.seed ^ 0x6964) >> 32, minimumDigits: 8)
        userID = String(decoding: id.bytes, as: UTF8.self)
    }

    // MARK: - Routing

    /// The endpoint of `method` on a path below the API root (`files/x/content`).
    static func endpoint(_ method: HTTPMethod, _ rest: Substring) -> Int? {
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        switch (method, parts.first, parts.count) {
        case (.POST, "files"?, 1): return uploadFile
        case (.GET, "files"?, 1): return listFiles
        case (.GET, "files"?, 2) where !parts[1].isEmpty: return getFile
        case (.POST, "files"?, 3) where !parts[1].isEmpty && parts[2] == "preprocess": return preprocess
        case (.GET, "files"?, 3) where !parts[1].isEmpty && parts[2] == "content": return fileContent
        case (.POST, "batches"?, 1): return createBatch
        case (.GET, "batches"?, 1): return listBatches
        case (.GET, "batches"?, 2) where !parts[1].isEmpty: return getBatch
        case (.POST, "batches"?, 3) where !parts[1].isEmpty && parts[2] == "cancel": return cancelBatch
        default: return nil
        }
    }

    /// The path below the API root, under `/together/v1/` or `/v1/`.
    static func rest(_ path: Substring) -> Substring? {
        for root in [TogetherPrefixSurface.prefix + "/", "/v1/"] where path.hasPrefix(root) {
            return path.dropFirst(root.count)
        }
        return nil
    }

    /// The file or job id in a path below the API root (`files/{id}/content`).
    static func resourceID(_ rest: Substring) -> String {
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count > 1 ? String(parts[1]) : ""
    }

    /// Everything under `/together/v1`, and the storage URL.
    func match(method: HTTPMethod, path: Substring) -> Int? {
        if path.hasPrefix(Self.uploadPath) {
            let id = path.dropFirst(Self.uploadPath.count)
            return method == .PUT && !id.isEmpty && !id.contains("/") ? Self.putUpload : nil
        }
        guard path.hasPrefix(TogetherPrefixSurface.prefix + "/"), let rest = Self.rest(path) else { return nil }
        return Self.endpoint(method, rest)
    }

    /// Under `/v1`, only what is Together's by its content (see the type's notes).
    func match(_ request: MockRequest) -> Int? {
        if let endpoint = match(method: request.method, path: request.path) { return endpoint }
        guard request.path.hasPrefix("/v1/"), let rest = Self.rest(request.path),
            let endpoint = Self.endpoint(request.method, rest)
        else { return nil }
        let id = Self.resourceID(rest)
        switch endpoint {
        case Self.uploadFile:
            return Self.purpose(request) == "batch-api" ? endpoint : nil
        case Self.preprocess:
            return endpoint
        case Self.getFile, Self.fileContent:
            return store.file(id, provider: .together) != nil ? endpoint : nil
        case Self.createBatch:
            guard let fileID = request.body.jsonObject()?["input_file_id"]?.stringValue else { return nil }
            return isTogetherFile(fileID) ? endpoint : nil
        case Self.getBatch, Self.cancelBatch:
            let seen = store.observe(
                id, provider: .together, at: store.now(), settle: false, writeResults: Self.results)
            return seen != nil ? endpoint : nil
        default:
            return nil
        }
    }

    /// A file stored here, or one whose upload has begun.
    private func isTogetherFile(_ id: String) -> Bool {
        store.file(id, provider: .together) != nil
            || store.withUpload(id, { upload in (upload.file.provider == .together, nil) }) == true
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        if endpoint == Self.putUpload { return .respond(put(request, context: &context)) }
        guard authenticated(request) else {
            let message =
                "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys."
            return .respond(
                endpoint >= Self.createBatch
                    ? Self.flatError(.unauthorized, message)
                    : Self.fileError(.unauthorized, message, type: "invalid_api_key"))
        }
        let rest = Self.rest(request.path) ?? ""
        let id = Self.resourceID(rest)
        let now = store.now()
        switch endpoint {
        case Self.uploadFile: return .respond(announceUpload(request, at: now, context: &context))
        case Self.preprocess: return .respond(preprocess(id))
        case Self.listFiles:
            var body = ByteWriter(capacity: 32 + 320 * 8)
            body.writeStaticString("{\"data\":[")
            for (index, file) in store.files(provider: .together).reversed().enumerated() {
                if index > 0 { body.writeStaticString(",") }
                Self.writeFile(file, to: &body)
            }
            body.writeStaticString("]}")
            return .respond(Self.ok(body))
        case Self.getFile:
            guard let file = store.file(id, provider: .together) else { return .respond(Self.fileNotFound(id)) }
            var body = ByteWriter(capacity: 320)
            Self.writeFile(file, to: &body)
            return .respond(Self.ok(body))
        case Self.fileContent: return .respond(content(id, request: request))
        case Self.createBatch: return .respond(createBatch(request, at: now, context: &context))
        case Self.listBatches:
            // Together's list has no order; the mock's follows the (random) ids.
            let batches = store.batches(provider: .together, at: now, writeResults: Self.results).sorted {
                $0.id < $1.id
            }
            var body = ByteWriter(capacity: 2 + batches.count * 600)
            body.writeStaticString("[")
            for (index, batch) in batches.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                write(batch, at: now, justCreated: false, to: &body)
            }
            body.writeStaticString("]")
            return .respond(Self.ok(body))
        case Self.getBatch:
            guard let batch = store.observe(id, provider: .together, at: now, writeResults: Self.results) else {
                return .respond(Self.flatError(.notFound, "Job not found"))
            }
            return .respond(render(batch, at: now))
        default:
            return .respond(cancel(id, at: now))
        }
    }

    private func authenticated(_ request: MockRequest) -> Bool {
        let key = OpenAISurface.bearerToken(request.headers.first(name: "authorization") ?? "")
        return !key.isEmpty && (online.configuration.apiKey.map { key.utf8.elementsEqual($0.utf8) } ?? true)
    }

    // MARK: - Files

    /// Step 1: checks the form and answers 302 to the storage URL, or stores a file
    /// sent along at once.
    private func announceUpload(_ request: MockRequest, at now: Double, context: inout MockRequestContext)
        -> MockResponse
    {
        guard let form = Self.form(request) else {
            return Self.fileError(
                .badRequest,
                "Invalid request: send purpose, file_name and file_type as form fields "
                    + "(application/x-www-form-urlencoded or multipart/form-data).")
        }
        guard let purpose = form.value("purpose"), !purpose.isEmpty else {
            return Self.fileError(.badRequest, "Missing required field: purpose")
        }
        guard Self.purposes.contains(purpose) else {
            return Self.fileError(
                .badRequest,
                "Invalid purpose '\(purpose)'. Supported values are: \(Self.purposes.joined(separator: ", ")).")
        }
        let fileType = form.value("file_type") ?? "jsonl"
        guard let mimeType = Self.fileTypes.first(where: { $0.0 == fileType })?.1 else {
            return Self.fileError(
                .badRequest, "Invalid file_type '\(fileType)'. Supported values are: jsonl, csv, parquet.")
        }
        let id = Self.fileID(context: &context)
        if let part = form.file {
            let file = StoredFile(
                provider: .together, id: id, filename: form.value("file_name") ?? part.filename ?? "file.\(fileType)",
                purpose: purpose, mimeType: mimeType, created: now, bytes: Array(part.body))
            store.addFile(file)
            context.server.stats.recordFileUploaded()
            var body = ByteWriter(capacity: 320)
            Self.writeFile(file, to: &body)
            return Self.ok(body)
        }
        guard let filename = form.value("file_name"), !filename.isEmpty else {
            return Self.fileError(.badRequest, "Missing required field: file_name")
        }
        store.startUpload(
            MockBatchStore.Upload(
                file: StoredFile(
                    provider: .together, id: id, filename: filename, purpose: purpose, mimeType: mimeType,
                    created: now, bytes: []),
                expectedBytes: nil),
            id: id)
        let location =
            BatchFormats.origin(request) + Self.uploadPath + id + "?X-Amz-Expires=3600&X-Amz-Signature="
            + signature(id)
        return MockResponse(
            status: .found,
            headers: [
                (name: "location", value: location), (name: "x-together-file-id", value: id),
                (name: "content-type", value: "text/plain; charset=utf-8"),
            ],
            body: .full([]))
    }

    /// Step 2, at the storage URL: the bytes, without a key. Answers as S3 does.
    private func put(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        let id = String(request.path.dropFirst(Self.uploadPath.count))
        if request.headers.first(name: "authorization") != nil {
            return Self.storageError(
                .badRequest, code: "InvalidArgument",
                message:
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                    + "string parameter or the Authorization header should be specified")
        }
        guard GeminiSurface.queryValue(request.query, "X-Amz-Signature").map({ $0 == signature(id) }) == true else {
            return Self.storageError(
                .forbidden, code: "SignatureDoesNotMatch",
                message:
                    "The request signature we calculated does not match the signature you provided. Check your key "
                    + "and signing method.")
        }
        let bytes = Array(request.body.readableBytesView)
        let received = store.withUpload(id) { upload in
            upload.received = bytes
            upload.expectedBytes = bytes.count
            return (true, nil)
        }
        guard received == true else {
            return Self.storageError(.forbidden, code: "AccessDenied", message: "Access Denied")
        }
        context.server.stats.recordFileUploaded()
        var hash = FNV1a()
        for byte in bytes { hash.combine(byte) }
        var etag = ByteWriter(capacity: 18)
        etag.writeStaticString("\"")
        etag.writeHexadecimal(hash.value, minimumDigits: 16)
        etag.writeStaticString("\"")
        return MockResponse(
            status: .ok, headers: [(name: "etag", value: String(decoding: etag.bytes, as: UTF8.self))],
            body: .full([]))
    }

    /// Step 3: the uploaded bytes become the file; asked again, the file as it is.
    private func preprocess(_ id: String) -> MockResponse {
        let finished = store.withUpload(id) { upload -> (StoredFile?, StoredFile?) in
            guard upload.file.provider == .together, upload.expectedBytes != nil else { return (nil, nil) }
            var file = upload.file
            file.bytes = upload.received
            return (file, file)
        }
        var body = ByteWriter(capacity: 320)
        switch finished {
        case .some(.some(let file)):
            Self.writeFile(file, to: &body)
        case .some(.none):
            return Self.fileError(
                .badRequest, "File \(id) has no content yet: upload it to the URL the upload request gave first.")
        case .none:
            guard let file = store.file(id, provider: .together) else { return Self.fileNotFound(id) }
            Self.writeFile(file, to: &body)
        }
        return Self.ok(body)
    }

    /// The file's bytes, whole or the `Range` asked for (together-py resumes with one).
    private func content(_ id: String, request: MockRequest) -> MockResponse {
        guard let file = store.file(id, provider: .together) else { return Self.fileNotFound(id) }
        var headers = [(name: "content-type", value: "application/octet-stream")]
        guard let range = request.headers.first(name: "range") else {
            return MockResponse(status: .ok, headers: headers, body: .full(file.bytes))
        }
        guard let bounds = Self.byteRange(range, count: file.bytes.count) else {
            headers.append((name: "content-range", value: "bytes */\(file.bytes.count)"))
            return MockResponse(status: .rangeNotSatisfiable, headers: headers, body: .full([]))
        }
        headers.append(
            (name: "content-range", value: "bytes \(bounds.lowerBound)-\(bounds.upperBound)/\(file.bytes.count)"))
        return MockResponse(status: .partialContent, headers: headers, body: .full(Array(file.bytes[bounds])))
    }

    /// `bytes=N-`, `bytes=N-M` or `bytes=-K` within `count` bytes; nil if unsatisfiable.
    static func byteRange(_ header: String, count: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), count > 0 else { return nil }
        let spec = header.dropFirst("bytes=".count).split(separator: ",").first ?? ""
        let ends = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard ends.count == 2 else { return nil }
        let first = Int(ends[0].trimmed(of: " "))
        let last = Int(ends[1].trimmed(of: " "))
        switch (first, last) {
        case (let start?, let end?) where start <= end && start < count: return start...min(end, count - 1)
        case (let start?, nil) where ends[1].isEmpty && start < count: return start...(count - 1)
        case (nil, let suffix?) where ends[0].isEmpty && suffix > 0: return max(0, count - suffix)...(count - 1)
        default: return nil
        }
    }

    /// The file object: `id`, `object`, `created_at` (unix seconds), `filename`,
    /// `purpose`, `bytes`, `FileType`, `LineCount`, `Processed`, `processing_status`.
    static func writeFile(_ file: StoredFile, to body: inout ByteWriter) {
        var lines = 0
        var blank = true
        for byte in file.bytes {
            if byte == 0x0A {
                if !blank { lines += 1 }
                blank = true
            } else if byte != 0x0D && byte != 0x20 {
                blank = false
            }
        }
        if !blank { lines += 1 }
        body.writeStaticString("{\"id\":")
        body.writeJSONString(file.id)
        body.writeStaticString(",\"object\":\"file\",\"created_at\":")
        body.writeDecimal(Int(file.created))
        body.writeStaticString(",\"filename\":")
        body.writeJSONString(file.filename)
        body.writeStaticString(",\"purpose\":")
        body.writeJSONString(file.purpose)
        body.writeStaticString(",\"bytes\":")
        body.writeDecimal(file.bytes.count)
        body.writeStaticString(",\"FileType\":")
        body.writeJSONString(fileTypes.first { $0.1 == file.mimeType }?.0 ?? "jsonl")
        body.writeStaticString(",\"LineCount\":")
        body.writeDecimal(lines)
        body.writeStaticString(",\"Processed\":true,\"processing_status\":\"COMPLETED\"}")
    }

    // MARK: - Creating a job

    private func createBatch(_ request: MockRequest, at now: Double, context: inout MockRequestContext)
        -> MockResponse
    {
        guard let object = request.body.jsonObject() else {
            return Self.flatError(.badRequest, "Invalid request body: expected a JSON object")
        }
        for name in ["input_file_id", "endpoint"] where object[name]?.stringValue?.isEmpty ?? true {
            return Self.flatError(.badRequest, "\(name) is required")
        }
        for name in ["completion_window", "model_id"] {
            if let value = object[name], value != .null, value.stringValue == nil {
                return Self.flatError(.badRequest, "\(name) must be a string")
            }
        }
        if let value = object["priority"], value != .null, value.intValue == nil {
            return Self.flatError(.badRequest, "priority must be an integer")
        }
        let fileID = object["input_file_id"]!.stringValue!
        let endpoint = object["endpoint"]!.stringValue!
        guard Self.batchEndpoints.contains(endpoint) else {
            return Self.flatError(
                .badRequest,
                "Unsupported endpoint '\(endpoint)'; supported: \(Self.batchEndpoints.joined(separator: ", "))")
        }
        let id = Self.uuid(context: &context)
        var fields = MockBatch.OpenAIFields(
            endpoint: endpoint, inputFileID: fileID, completionWindow: "24h", metadata: nil,
            model: object["model_id"]?.stringValue, outputFileID: Self.fileID(context: &context),
            errorFileID: Self.fileID(context: &context))
        var lines: [BatchLine] = []
        switch validate(fileID) {
        case .failure(let failure):
            fields.validationErrors = [BatchValidationError(code: "invalid_input", message: failure.reason)]
        case .success(let inputs):
            fields.model = fields.model ?? inputs.first?.body["model"]?.stringValue
            lines.reserveCapacity(inputs.count)
            for input in inputs { lines.append(answer(input, headers: request.headers, context: &context)) }
        }
        let batch = MockBatch(
            provider: .together, id: id, timeline: store.timeline(id: id, created: now), lines: lines,
            runOrder: BatchLineAnswerer.runOrder(count: lines.count, id: id, seed: store.seed),
            shuffleSeed: context.generator.next(), openAI: fields)
        store.insert(batch)
        context.server.stats.recordBatchCreated(.together, id: id, requests: lines.count)
        var body = ByteWriter(capacity: 700)
        body.writeStaticString("{\"job\":")
        write(batch, at: now, justCreated: true, to: &body)
        body.writeStaticString("}")
        return Self.ok(body, status: .created)
    }

    /// One input line that passed validation.
    struct InputLine {
        var customID: String
        var body: JSONValue
    }

    /// Why a job fails as a whole.
    struct InvalidInput: Error {
        var reason: String
    }

    /// Checks the input file as the validation step does: the lines, or the reason.
    func validate(_ fileID: String) -> Result<[InputLine], InvalidInput> {
        guard let file = store.file(fileID, provider: .together) else {
            if isTogetherFile(fileID) {
                return .failure(InvalidInput(reason: "Input file \(fileID) has not been preprocessed"))
            }
            return .failure(InvalidInput(reason: "Input file not found: \(fileID)"))
        }
        guard file.purpose == "batch-api" else {
            return .failure(
                InvalidInput(reason: "Input file \(fileID) has purpose '\(file.purpose)', not 'batch-api'"))
        }
        guard file.bytes.count <= Self.maximumBatchFileBytes else {
            return .failure(
                InvalidInput(
                    reason: "Input file is \(file.bytes.count) bytes, more than the 100 MB one batch may take"))
        }
        var rawLines = file.bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        while let last = rawLines.last, last.allSatisfy({ $0 == 13 || $0 == 32 }) { rawLines.removeLast() }
        guard !rawLines.isEmpty else { return .failure(InvalidInput(reason: "The input file is empty")) }
        guard rawLines.count <= Self.maximumRequests else {
            return .failure(
                InvalidInput(
                    reason: "The input file has \(rawLines.count) requests, more than the \(Self.maximumRequests) "
                        + "one batch may take"))
        }
        var lines: [InputLine] = []
        lines.reserveCapacity(rawLines.count)
        var seen = Set<String>()
        for (offset, raw) in rawLines.enumerated() {
            let number = offset + 1
            let text = raw.last == 13 ? raw.dropLast() : raw
            guard let object = (try? JSONParser.parse(Array(text)))?.objectValue else {
                return .failure(InvalidInput(reason: "Invalid JSONL: line \(number) is not a JSON object"))
            }
            guard let customID = object["custom_id"]?.stringValue, !customID.isEmpty else {
                return .failure(InvalidInput(reason: "Invalid JSONL: line \(number) has no custom_id"))
            }
            guard customID.count <= Self.maximumCustomIDLength else {
                return .failure(
                    InvalidInput(
                        reason:
                            "Invalid JSONL: line \(number): custom_id is longer than \(Self.maximumCustomIDLength) "
                            + "characters"))
            }
            guard seen.insert(customID).inserted else {
                return .failure(
                    InvalidInput(reason: "Invalid JSONL: line \(number): duplicate custom_id '\(customID)'"))
            }
            guard let body = object["body"], body.objectValue != nil else {
                return .failure(InvalidInput(reason: "Invalid JSONL: line \(number) has no body object"))
            }
            lines.append(InputLine(customID: customID, body: body))
        }
        return .success(lines)
    }

    /// A line answered as `/together/v1/chat/completions` answers it online; a body
    /// without a model fails as Together's executor fails it.
    private func answer(_ line: InputLine, headers: MockHeaders, context: inout MockRequestContext) -> BatchLine {
        var lineContext = BatchLineAnswerer.lineContext(&context)
        let requestID = lineContext.requestID
        var lineID = ByteWriter(capacity: 46)
        lineID.writeStaticString("br_")
        Base62.write(43, from: &context.generator, to: &lineID)
        var status = 400
        var body: [UInt8]
        if line.body["model"]?.stringValue == nil {
            body = Self.lineError("missing 'model' field in body")
        } else {
            switch BatchLineAnswerer.answer(
                target: TogetherPrefixSurface.prefix + "/chat/completions", headers: headers,
                body: line.body.compactBytes, failing: store.lineFails(key: line.customID), context: &lineContext)
            {
            case .answered(let answerStatus, let answerBody):
                status = answerStatus
                body = answerBody
            case .streamRequested:
                body = Self.lineError("stream is not supported in batch requests")
            }
        }
        return BatchLine(
            key: line.customID, status: status, body: body, requestID: requestID,
            lineID: String(decoding: lineID.bytes, as: UTF8.self))
    }

    private static func lineError(_ message: String) -> [UInt8] {
        var body = ByteWriter(capacity: 96 + message.utf8.count)
        body.writeStaticString("{\"error\":{\"message\":")
        body.writeJSONString(message)
        body.writeStaticString(",\"type\":\"invalid_request_error\"}}")
        return body.bytes
    }

    // MARK: - Jobs

    private func cancel(_ id: String, at now: Double) -> MockResponse {
        switch store.cancel(id, provider: .together, at: now, writeResults: Self.results) {
        case .notFound:
            return Self.flatError(.notFound, "Job not found")
        case .ended(let batch), .alreadyCancelled(let batch):
            let status = Self.status(batch, at: now)
            guard status == "CANCELING" else {
                return Self.flatError(.conflict, "Cannot cancel job - already in terminal state: \(status)")
            }
            return render(batch, at: now)
        case .cancelled(let batch):
            return render(batch, at: now)
        }
    }

    private func render(_ batch: MockBatch, at time: Double) -> MockResponse {
        var body = ByteWriter(capacity: 700)
        write(batch, at: time, justCreated: false, to: &body)
        return Self.ok(body)
    }

    /// The job's `status` at `time`.
    static func status(_ batch: MockBatch, at time: Double) -> String {
        let timeline = batch.timeline
        if batch.openAI?.validationErrors != nil, timeline.cancelledAt == nil, time >= timeline.validatedAt {
            return "FAILED"
        }
        switch timeline.phase(at: time) {
        case .validating: return "VALIDATING"
        case .inProgress, .finalizing: return "IN_PROGRESS"
        case .cancelling: return "CANCELING"
        case .ended(.completed): return "COMPLETED"
        case .ended(.expired): return "EXPIRED"
        case .ended(.cancelled): return "CANCELLED"
        }
    }

    /// The job object: every field, null where the job has not got there.
    func write(_ batch: MockBatch, at time: Double, justCreated: Bool, to body: inout ByteWriter) {
        guard let fields = batch.openAI else { return }
        let status = justCreated ? "VALIDATING" : Self.status(batch, at: time)
        let ended = ["COMPLETED", "EXPIRED", "CANCELLED"].contains(status)
        let ran = status == "VALIDATING" || status == "FAILED" ? [] : batch.ran(at: time)
        var done = 0
        var output = false
        var errors = false
        for (index, didRun) in ran.enumerated() where didRun {
            done += 1
            if batch.lines[index].succeeded { output = true } else { errors = true }
        }
        body.writeStaticString("{\"id\":")
        body.writeJSONString(batch.id)
        body.writeStaticString(",\"user_id\":")
        body.writeJSONString(userID)
        body.writeStaticString(",\"input_file_id\":")
        body.writeJSONString(fields.inputFileID)
        body.writeStaticString(",\"file_size_bytes\":")
        body.writeDecimal(store.file(fields.inputFileID, provider: .together)?.bytes.count ?? 0)
        body.writeStaticString(",\"status\":")
        body.writeJSONString(status)
        body.writeStaticString(",\"job_deadline\":")
        body.writeJSONString(BatchFormats.rfc3339(batch.timeline.created + 86_400))
        body.writeStaticString(",\"created_at\":")
        body.writeJSONString(BatchFormats.rfc3339(batch.timeline.created))
        body.writeStaticString(",\"endpoint\":")
        body.writeJSONString(fields.endpoint)
        body.writeStaticString(",\"progress\":")
        body.writeString(String(batch.lines.isEmpty ? 0 : 100 * Double(done) / Double(batch.lines.count)))
        body.writeStaticString(",\"model_id\":")
        body.writeJSONStringOrNull(status == "VALIDATING" ? nil : fields.model)
        body.writeStaticString(",\"output_file_id\":")
        body.writeJSONStringOrNull(ended && output ? fields.outputFileID : nil)
        body.writeStaticString(",\"error_file_id\":")
        body.writeJSONStringOrNull(ended && errors ? fields.errorFileID : nil)
        body.writeStaticString(",\"error\":")
        body.writeJSONStringOrNull(status == "FAILED" ? fields.validationErrors?.first?.message : nil)
        body.writeStaticString(",\"completed_at\":")
        let finished = status == "FAILED" ? batch.timeline.validatedAt : ended ? batch.timeline.endedAt(at: time) : nil
        body.writeJSONStringOrNull(finished.map(BatchFormats.rfc3339))
        body.writeStaticString("}")
    }

    /// The output and error files of a job that has just ended: the lines that ran,
    /// shuffled; lines that never ran are in neither.
    @Sendable static func results(_ batch: MockBatch, at time: Double) -> [StoredFile] {
        guard batch.provider == .together, let fields = batch.openAI, !batch.lines.isEmpty else { return [] }
        let ran = batch.ran(at: time)
        var output = ByteWriter(capacity: batch.lines.count * 900)
        var errors = ByteWriter(capacity: 1024)
        for index in batch.shuffledIndices() where ran[index] {
            let line = batch.lines[index]
            var entry = ByteWriter(capacity: 160 + line.body.count)
            entry.writeStaticString("{\"id\":")
            entry.writeJSONString(line.lineID)
            entry.writeStaticString(",\"custom_id\":")
            entry.writeJSONStringOrNull(line.key)
            if line.succeeded {
                entry.writeStaticString(",\"response\":{\"status_code\":")
                entry.writeDecimal(line.status)
                entry.writeStaticString(",\"body\":")
                entry.writeBytes(line.body)
                entry.writeStaticString("}}\n")
                output.writeBytes(entry.bytes)
            } else {
                let message = (try? JSONParser.parse(line.body))?["error"]?["message"]?.stringValue
                entry.writeStaticString(",\"error\":{\"code\":")
                entry.writeJSONString(line.status >= 500 ? "batch_server_error" : "batch_client_error")
                entry.writeStaticString(",\"message\":")
                entry.writeJSONString(message ?? "The request failed with status \(line.status).")
                entry.writeStaticString("}}\n")
                errors.writeBytes(entry.bytes)
            }
        }
        var files: [StoredFile] = []
        for (id, bytes, name) in [
            (fields.outputFileID, output.bytes, "output"), (fields.errorFileID, errors.bytes, "error"),
        ] where !bytes.isEmpty {
            files.append(
                StoredFile(
                    provider: .together, id: id, filename: "batch_\(batch.id)_\(name).jsonl", purpose: "batch-api",
                    mimeType: "application/jsonl", created: time, bytes: bytes, generated: true))
        }
        return files
    }

    // MARK: - Forms

    /// Form fields from a urlencoded or multipart body (a part with a filename is the
    /// file), then from the query string (an older client repeated them there).
    struct Form {
        var fields: [(name: String, value: String)] = []
        var file: MultipartFormData.Part?

        func value(_ name: String) -> String? {
            fields.first { $0.name == name }?.value
        }
    }

    /// The `purpose` of an upload, found without parsing a whole multipart body where
    /// it comes first (as every client sends it): an OpenAI upload of 200 MB is
    /// not split into parts twice to learn that it is not Together's.
    static func purpose(_ request: MockRequest) -> String? {
        let contentType = request.headers.first(name: "content-type") ?? ""
        let scanned = min(request.body.readableBytes, 1 << 16)
        if MultipartFormData.boundary(contentType: contentType) != nil,
            let head = request.body.getBytes(at: request.body.readerIndex, length: scanned)
        {
            let name = Array("name=\"purpose\"".utf8)
            if let field = MultipartFormData.find(name, in: head, from: 0),
                let start = MultipartFormData.find([13, 10, 13, 10], in: head, from: field + name.count),
                let end = MultipartFormData.find([13, 10], in: head, from: start + 4)
            {
                return String(decoding: head[(start + 4)..<end], as: UTF8.self)
            }
            if scanned == request.body.readableBytes { return nil }
        }
        return form(request)?.value("purpose")
    }

    /// The request's form, or nil if its body is neither encoding.
    static func form(_ request: MockRequest) -> Form? {
        var form = Form()
        let contentType = request.headers.first(name: "content-type") ?? ""
        let body = Array(request.body.readableBytesView)
        if let boundary = MultipartFormData.boundary(contentType: contentType) {
            guard let parts = MultipartFormData(body, boundary: boundary)?.parts else { return nil }
            for part in parts {
                if part.filename != nil || part.name == "file" {
                    form.file = form.file ?? part
                } else {
                    form.fields.append((part.name, part.text))
                }
            }
        } else if contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            form.fields = urlencoded(body[...])
        } else if !body.isEmpty {
            return nil
        }
        if let query = request.query { form.fields += urlencoded(ArraySlice(query.utf8)) }
        return form
    }

    /// `a=1&b=two+words` decoded.
    static func urlencoded(_ text: ArraySlice<UInt8>) -> [(name: String, value: String)] {
        text.split(separator: UInt8(ascii: "&")).map { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            return (decoded(parts[0]), parts.count > 1 ? decoded(parts[1]) : "")
        }
    }

    /// `+` as a space and `%XX` as its byte.
    private static func decoded(_ text: ArraySlice<UInt8>) -> String {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "%"), index + 2 < text.endIndex, let high = hex(text[index + 1]),
                let low = hex(text[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 3
                continue
            }
            bytes.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Helpers

    /// The storage URL's signature for a file id: stable for the server's seed.
    private func signature(_ id: String) -> String {
        var hash = FNV1a()
        hash.combine(id)
        var text = ByteWriter(capacity: 16)
        text.writeHexadecimal(SplitMix64.mix(hash.value ^ store.seed ^ 0x7369_676E), minimumDigits: 16)
        return String(decoding: text.bytes, as: UTF8.self)
    }

    /// `file-` and a UUID, as Together's file ids.
    static func fileID(context: inout MockRequestContext) -> String {
        "file-" + uuid(context: &context)
    }

    /// A random (version 4) UUID, lowercase, as Together's job ids.
    static func uuid(context: inout MockRequestContext) -> String {
        let high = context.generator.next() & 0xFFFF_FFFF_FFFF_0FFF | 0x4000
        let low = context.generator.next() & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        var text = ByteWriter(capacity: 32)
        text.writeHexadecimal(high, minimumDigits: 16)
        text.writeHexadecimal(low, minimumDigits: 16)
        let hex = text.bytes
        var id: [UInt8] = []
        id.reserveCapacity(36)
        for (index, byte) in hex.enumerated() {
            if [8, 12, 16, 20].contains(index) { id.append(UInt8(ascii: "-")) }
            id.append(byte)
        }
        return String(decoding: id, as: UTF8.self)
    }

    static func ok(_ body: ByteWriter, status: HTTPResponseStatus = .ok) -> MockResponse {
        MockResponse(
            status: status, headers: [(name: "content-type", value: "application/json")], body: .full(body.bytes))
    }

    /// A batch route's error: `{"error":"…"}`.
    static func flatError(_ status: HTTPResponseStatus, _ message: String) -> MockResponse {
        var body = ByteWriter(capacity: 32 + message.utf8.count)
        body.writeStaticString("{\"error\":")
        body.writeJSONString(message)
        body.writeStaticString("}")
        return ok(body, status: status)
    }

    /// A file route's error: `{"error":{"message","type"}}`.
    static func fileError(_ status: HTTPResponseStatus, _ message: String, type: String = "invalid_request_error")
        -> MockResponse
    {
        var body = ByteWriter(capacity: 64 + message.utf8.count)
        body.writeStaticString("{\"error\":{\"message\":")
        body.writeJSONString(message)
        body.writeStaticString(",\"type\":")
        body.writeJSONString(type)
        body.writeStaticString("}}")
        return ok(body, status: status)
    }

    static func fileNotFound(_ id: String) -> MockResponse {
        fileError(.notFound, "File \(id) not found", type: "not_found")
    }

    /// The storage's own error: S3's XML.
    static func storageError(_ status: HTTPResponseStatus, code: String, message: String) -> MockResponse {
        let xml =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\(code)</Code><Message>\(message)</Message>"
            + "</Error>"
        return MockResponse(
            status: status, headers: [(name: "content-type", value: "application/xml")], body: .full(Array(xml.utf8)))
    }
}
