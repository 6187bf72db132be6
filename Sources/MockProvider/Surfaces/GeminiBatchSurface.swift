import LLMQCore
import NIOHTTP1

/// Gemini's Batch Mode and Files API (`PROVIDERS.md` §5), under `/v1beta/` and `/v1/`
/// (google-genai 3.x calls `/v1/`).
///
/// - `POST /{v}/models/{model}:batchGenerateContent` takes
///   `{"batch":{"displayName","inputConfig":{"requests":{"requests":[{"request","metadata"}]}}}}`
///   (at most 20 MB inline) or `"inputConfig":{"fileName":"files/…"}` with lines
///   `{"key","request"}`, and answers an Operation: `name` `batches/…` and `metadata`
///   (`model`, `displayName`, `state`, `createTime`, `updateTime`, `endTime`,
///   `batchStats`, and `output` once done). Each request is answered exactly as
///   `:generateContent` would answer it (`BatchLineAnswerer`).
/// - `state` is `BATCH_STATE_PENDING`, `RUNNING`, then `SUCCEEDED` along
///   `BatchTimeline`, or `EXPIRED` (half the requests answered, the rest errors);
///   cancel ends a batch `CANCELLED` at once, with the requests run so far. Get, list
///   (`pageSize`, `pageToken`), `:cancel` and delete under `batches/`.
/// - Output: `inlinedResponses` in request order, each `{"response"}` or `{"error"}`
///   (a google.rpc.Status: gRPC code and message) with the request's `metadata`; or,
///   for a file input, `responsesFile` naming a generated file of `{"key","response"}`
///   and `{"key","error"}` lines in shuffled order, downloaded with
///   `GET /{v}/files/{name}:download?alt=media` (or `/download/{v}/…`).
/// - Files: the resumable upload (`POST /upload/{v}/files` with
///   `X-Goog-Upload-Protocol: resumable` and command `start`, then the bytes to the
///   `x-goog-upload-url` with `upload, finalize`, in one or more chunks), get, list and
///   delete under `files/`.
///
/// `/v1/batches…` and `/v1/files…` are OpenAI's paths too: this surface claims them
/// only for a Gemini credential (`x-goog-api-key` or `?key=`), as `PROVIDERS.md`
/// advises. The `@type` string, the omitted zero `batchStats` fields, the Status codes
/// of per-request errors, cancel being immediate, and the error messages are
/// **(unverified)**.
final class GeminiBatchSurface: MockSurfaceBesideOnline {
    static let create = 0
    static let listBatches = 1
    static let getBatch = 2
    static let cancelBatch = 3
    static let deleteBatch = 4
    static let upload = 5
    static let listFiles = 6
    static let getFile = 7
    static let deleteFile = 8
    static let download = 9

    let endpointNames = [
        "POST /v1beta/models/{model}:batchGenerateContent", "GET /v1beta/batches", "GET /v1beta/batches/{id}",
        "POST /v1beta/batches/{id}:cancel", "DELETE /v1beta/batches/{id}", "POST /upload/v1beta/files",
        "GET /v1beta/files", "GET /v1beta/files/{name}", "DELETE /v1beta/files/{name}",
        "GET /v1beta/files/{name}:download",
    ]

    /// Largest inline batch request.
    static let maximumInlineBytes = 20 << 20
    static let operationType = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"

    let online: GeminiSurface
    let store: MockBatchStore

    init(online: GeminiSurface, store: MockBatchStore) {
        self.online = online
        self.store = store
    }

    /// The API version and the rest of a path: `/v1beta/batches/x` → (`v1beta`, `batches/x`).
    static func versioned(_ path: Substring) -> (version: Substring, rest: Substring)? {
        for version in ["v1beta", "v1"] {
            for prefix in ["/\(version)/", "/download/\(version)/", "/upload/\(version)/"]
            where path.hasPrefix(prefix) {
                return (Substring(version), path.dropFirst(prefix.count))
            }
        }
        return nil
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        guard let (_, rest) = Self.versioned(path) else { return nil }
        if path.hasPrefix("/upload/") { return method == .POST && rest == "files" ? Self.upload : nil }
        if path.hasPrefix("/download/") { return method == .GET && Self.isDownload(rest) ? Self.download : nil }
        if method == .POST, let (_, verb) = GeminiSurface.split(path), verb == "batchGenerateContent" {
            return Self.create
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        switch (method, parts.first, parts.count) {
        case (.GET, "batches"?, 1): return Self.listBatches
        case (.GET, "batches"?, 2) where Self.isName(parts[1]): return Self.getBatch
        case (.DELETE, "batches"?, 2) where Self.isName(parts[1]): return Self.deleteBatch
        case (.POST, "batches"?, 2) where parts[1].hasSuffix(":cancel"): return Self.cancelBatch
        case (.GET, "files"?, 1): return Self.listFiles
        case (.GET, "files"?, 2) where Self.isDownload(rest): return Self.download
        case (.GET, "files"?, 2) where Self.isName(parts[1]): return Self.getFile
        case (.DELETE, "files"?, 2) where Self.isName(parts[1]): return Self.deleteFile
        default: return nil
        }
    }

    func match(_ request: MockRequest) -> Int? {
        guard let endpoint = match(method: request.method, path: request.path) else { return nil }
        // Under /v1/, batches and files without a colon verb are OpenAI's too.
        let shared = [Self.listBatches, Self.getBatch, Self.deleteBatch, Self.listFiles, Self.getFile, Self.deleteFile]
        guard request.path.hasPrefix("/v1/"), shared.contains(endpoint) else { return endpoint }
        let header = request.headers.first(name: "x-goog-api-key") ?? ""
        return !header.isEmpty || GeminiSurface.queryValue(request.query, "key") != nil ? endpoint : nil
    }

    private static func isName(_ part: Substring) -> Bool {
        !part.isEmpty && !part.contains(":")
    }

    private static func isDownload(_ rest: Substring) -> Bool {
        rest.hasPrefix("files/") && rest.hasSuffix(":download") && rest.count > "files/:download".count
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        // An upload's later requests carry its id instead of the key, as at Google.
        let isChunk = endpoint == Self.upload && GeminiSurface.queryValue(request.query, "upload_id") != nil
        if !isChunk, let failure = online.authenticate(request) {
            return .respond(online.error(failure, context: context))
        }
        guard let (version, rest) = Self.versioned(request.path) else {
            return .respond(
                online.error(GeminiError(code: 404, status: "NOT_FOUND", message: "Not found."), context: context))
        }
        let now = store.now()
        let origin = BatchFormats.origin(request)
        let name = Self.resourceName(rest)
        switch endpoint {
        case Self.create:
            return .respond(create(request, version: version, at: now, context: &context))
        case Self.listBatches:
            return .respond(listBatches(request, at: now, origin: origin, context: context))
        case Self.getBatch:
            guard let batch = store.observe(name, provider: .gemini, at: now, writeResults: Self.responsesFile) else {
                return .respond(online.error(Self.batchNotFound, context: context))
            }
            var body = ByteWriter(capacity: 1024)
            Self.writeOperation(batch, at: now, justCreated: false, to: &body)
            return .respond(ok(body))
        case Self.cancelBatch:
            let id = String(name.dropLast(":cancel".count))
            switch store.cancel(id, provider: .gemini, at: now, immediately: true, writeResults: Self.responsesFile) {
            case .notFound:
                return .respond(online.error(Self.batchNotFound, context: context))
            case .ended:
                return .respond(
                    online.error(
                        GeminiError(
                            code: 400, status: "FAILED_PRECONDITION",
                            message: "Batch \(id) has already ended and cannot be cancelled."),
                        context: context))
            case .alreadyCancelled, .cancelled:
                return .respond(ok(ByteWriter(bytes: "{}")))
            }
        case Self.deleteBatch:
            guard store.deleteBatch(name, provider: .gemini) else {
                return .respond(online.error(Self.batchNotFound, context: context))
            }
            return .respond(ok(ByteWriter(bytes: "{}")))
        case Self.upload:
            return .respond(upload(request, version: version, origin: origin, at: now, context: &context))
        case Self.listFiles:
            let files = store.files(provider: .gemini).reversed()
            var body = ByteWriter(capacity: 32 + files.count * 400)
            body.writeStaticString("{\"files\":[")
            for (index, file) in files.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                Self.writeFile(file, origin: origin, to: &body)
            }
            body.writeStaticString("]}")
            return .respond(ok(body))
        case Self.getFile:
            guard let file = store.file(name, provider: .gemini) else {
                return .respond(online.error(Self.fileNotFound(name), context: context))
            }
            var body = ByteWriter(capacity: 512)
            Self.writeFile(file, origin: origin, to: &body)
            return .respond(ok(body))
        case Self.deleteFile:
            guard store.deleteFile(name, provider: .gemini) else {
                return .respond(online.error(Self.fileNotFound(name), context: context))
            }
            return .respond(ok(ByteWriter(bytes: "{}")))
        default:
            let fileName = String(name.dropLast(":download".count))
            guard let file = store.file(fileName, provider: .gemini) else {
                return .respond(online.error(Self.fileNotFound(fileName), context: context))
            }
            guard file.generated else {
                return .respond(
                    online.error(
                        GeminiError(message: "Only generated files can be downloaded; \(fileName) was uploaded."),
                        context: context))
            }
            return .respond(
                MockResponse(
                    status: .ok, headers: [(name: "content-type", value: file.mimeType)], body: .full(file.bytes)))
        }
    }

    /// `batches/x` or `files/x` (with any `:verb`) from the rest of a path.
    private static func resourceName(_ rest: Substring) -> String {
        let parts = rest.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return String(rest) }
        return "\(parts[0])/\(parts[1])"
    }

    static let batchNotFound = GeminiError(code: 404, status: "NOT_FOUND", message: "Requested entity was not found.")

    static func fileNotFound(_ name: String) -> GeminiError {
        GeminiError(
            code: 403, status: "PERMISSION_DENIED",
            message:
                "You do not have permission to access the File \(name.dropFirst("files/".count)) or it may not exist.")
    }

    // MARK: - Creating a batch

    /// One request of a batch, before it is answered.
    private struct Input {
        var key: String?
        var metadata: JSONValue?
        var request: JSONValue?
        /// Why the line is not a request (a file line that is not JSON, say).
        var problem: String?
    }

    private func create(_ request: MockRequest, version: Substring, at now: Double, context: inout MockRequestContext)
        -> MockResponse
    {
        let model = String(GeminiSurface.split(request.path)?.model ?? "")
        if let models = online.configuration.models, !models.contains(model) {
            return online.error(
                GeminiError(
                    code: 404, status: "NOT_FOUND",
                    message:
                        "models/\(model) is not found for API version \(version), or is not supported for "
                        + "batchGenerateContent."),
                context: context)
        }
        guard let object = request.body.jsonObject() else {
            return online.error(
                GeminiError(message: "Invalid JSON payload received. Unexpected token."), context: context)
        }
        guard let batchSpec = object["batch"]?.objectValue else {
            return online.error(
                GeminiError(message: "* BatchGenerateContentRequest.batch: batch is required\n"), context: context)
        }
        // Proto JSON names: lowerCamelCase, or as written in the proto.
        let displayName = (batchSpec["displayName"] ?? batchSpec["display_name"])?.stringValue
        let inputConfig = (batchSpec["inputConfig"] ?? batchSpec["input_config"])?.objectValue ?? JSONObject()
        let inline = inputConfig["requests"]?["requests"]?.arrayValue
        let fileName = (inputConfig["fileName"] ?? inputConfig["file_name"])?.stringValue
        guard (inline != nil) != (fileName != nil) else {
            return online.error(
                GeminiError(
                    message:
                        "* GenerateContentBatch.input_config: exactly one of requests or file_name must be set\n"),
                context: context)
        }
        var inputs: [Input] = []
        if let inline {
            guard request.body.readableBytes <= Self.maximumInlineBytes else {
                return online.error(
                    GeminiError(message: "Request payload size exceeds the limit: \(Self.maximumInlineBytes) bytes."),
                    context: context)
            }
            guard !inline.isEmpty else {
                return online.error(
                    GeminiError(message: "* GenerateContentBatch.input_config.requests: requests must not be empty\n"),
                    context: context)
            }
            for (index, entry) in inline.enumerated() {
                guard let fields = entry.objectValue, let body = fields["request"], body.objectValue != nil else {
                    return online.error(
                        GeminiError(
                            message:
                                "* GenerateContentBatch.input_config.requests.requests[\(index)].request: request is "
                                + "required\n"),
                        context: context)
                }
                let metadata = fields["metadata"].flatMap { $0 == .null ? nil : $0 }
                inputs.append(Input(key: metadata?["key"]?.stringValue, metadata: metadata, request: body))
            }
        } else if let fileName {
            guard let file = store.file(fileName, provider: .gemini) else {
                return online.error(Self.fileNotFound(fileName), context: context)
            }
            inputs = Self.fileInputs(file.bytes)
        }
        var id = "batches/"
        id += BatchFormats.lowercaseID(30, from: &context.generator)
        let target = "/\(version)/models/\(model):generateContent" + (request.query.map { "?\($0)" } ?? "")
        var lines: [BatchLine] = []
        lines.reserveCapacity(inputs.count)
        for (index, input) in inputs.enumerated() {
            var lineContext = BatchLineAnswerer.lineContext(&context)
            var line = BatchLine(
                key: input.key, metadata: input.metadata, status: 400, body: [], requestID: lineContext.requestID,
                lineID: "")
            if let body = input.request {
                switch BatchLineAnswerer.answer(
                    target: target, headers: request.headers, body: body.compactBytes,
                    failing: store.lineFails(key: input.key ?? String(index)), context: &lineContext)
                {
                case .answered(let status, let answer):
                    line.status = status
                    line.body = answer
                case .streamRequested:
                    line.body = Self.errorBody(GeminiError(message: "Streaming is not supported in batch requests."))
                }
            } else {
                line.body = Self.errorBody(GeminiError(message: input.problem ?? "Invalid request."))
            }
            lines.append(line)
        }
        let batch = MockBatch(
            provider: .gemini, id: id, timeline: store.timeline(id: id, created: now), lines: lines,
            runOrder: BatchLineAnswerer.runOrder(count: lines.count, id: id, seed: store.seed),
            shuffleSeed: context.generator.next(),
            gemini: MockBatch.GeminiFields(
                model: "models/" + model, displayName: displayName, inputFileName: fileName,
                responsesFileName: "files/batch-" + id.dropFirst("batches/".count)))
        store.insert(batch)
        context.server.stats.recordBatchCreated(.gemini, id: id, requests: lines.count)
        var body = ByteWriter(capacity: 640)
        Self.writeOperation(batch, at: now, justCreated: true, to: &body)
        return ok(body)
    }

    /// The lines of an input file: `{"key","request"}` each; a line that is not
    /// becomes an error result rather than failing the batch.
    private static func fileInputs(_ bytes: [UInt8]) -> [Input] {
        var inputs: [Input] = []
        for raw in bytes.split(separator: UInt8(ascii: "\n")) {
            let text = raw.last == 13 ? raw.dropLast() : raw
            guard !text.allSatisfy({ $0 == 32 || $0 == 9 }) else { continue }
            guard let object = (try? JSONParser.parse(Array(text)))?.objectValue else {
                inputs.append(Input(problem: "Invalid JSON payload received. The line is not valid JSON."))
                continue
            }
            let key = object["key"]?.stringValue ?? object["key"].map { CanonicalJSON.string($0) }
            guard let request = object["request"], request.objectValue != nil else {
                inputs.append(Input(key: key, problem: "* request: request is required\n"))
                continue
            }
            inputs.append(Input(key: key, request: request))
        }
        return inputs
    }

    private static func errorBody(_ failure: GeminiError) -> [UInt8] {
        var body = ByteWriter(capacity: 160)
        failure.write(to: &body)
        return body.bytes
    }

    // MARK: - Listing

    private func listBatches(_ request: MockRequest, at now: Double, origin: String, context: MockRequestContext)
        -> MockResponse
    {
        var size = 50
        if let text = GeminiSurface.queryValue(request.query, "pageSize") {
            guard let value = Int(text), value >= 1 else {
                return online.error(GeminiError(message: "* pageSize: must be a positive integer\n"), context: context)
            }
            size = min(value, 1000)
        }
        let all = store.batches(provider: .gemini, at: now, writeResults: Self.responsesFile)
        var start = 0
        if let token = GeminiSurface.queryValue(request.query, "pageToken"), !token.isEmpty {
            guard let position = all.firstIndex(where: { $0.id == token }) else {
                return online.error(GeminiError(message: "Invalid page token."), context: context)
            }
            start = position + 1
        }
        let page = all[start..<min(all.count, start + size)]
        var body = ByteWriter(capacity: 64 + page.count * 700)
        body.writeStaticString("{\"operations\":[")
        for (index, batch) in page.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            Self.writeOperation(batch, at: now, justCreated: false, to: &body)
        }
        body.writeStaticString("]")
        if start + size < all.count, let last = page.last {
            body.writeStaticString(",\"nextPageToken\":")
            body.writeJSONString(last.id)
        }
        body.writeStaticString("}")
        return ok(body)
    }

    // MARK: - Rendering batches

    /// The Operation a batch is shown as.
    static func writeOperation(_ batch: MockBatch, at time: Double, justCreated: Bool, to body: inout ByteWriter) {
        guard let fields = batch.gemini else { return }
        let timeline = batch.timeline
        let phase = justCreated ? BatchTimeline.Phase.validating : timeline.phase(at: time)
        let state: StaticString
        var ending: BatchTimeline.Ending?
        switch phase {
        case .validating: state = "BATCH_STATE_PENDING"
        case .inProgress, .finalizing: state = "BATCH_STATE_RUNNING"
        case .cancelling: state = "BATCH_STATE_CANCELLED"
        case .ended(let end):
            ending = end
            switch end {
            case .completed: state = "BATCH_STATE_SUCCEEDED"
            case .expired: state = "BATCH_STATE_EXPIRED"
            case .cancelled: state = "BATCH_STATE_CANCELLED"
            }
        }
        var successful = 0
        var failed = 0
        let ran = justCreated ? [Bool](repeating: false, count: batch.lines.count) : batch.ran(at: time)
        for (index, line) in batch.lines.enumerated() {
            if ran[index] {
                if line.succeeded { successful += 1 } else { failed += 1 }
            } else if ending != nil {
                failed += 1
            }
        }
        var updated = timeline.created
        if !justCreated, time >= timeline.validatedAt { updated = timeline.validatedAt }
        let ended = justCreated ? nil : timeline.endedAt(at: time)
        if let ended { updated = ended }
        body.writeStaticString("{\"name\":")
        body.writeJSONString(batch.id)
        body.writeStaticString(",\"metadata\":{\"@type\":")
        body.writeJSONString(operationType)
        body.writeStaticString(",\"model\":")
        body.writeJSONString(fields.model)
        if let displayName = fields.displayName {
            body.writeStaticString(",\"displayName\":")
            body.writeJSONString(displayName)
        }
        if ending != nil {
            body.writeStaticString(",\"output\":")
            writeOutput(batch, ran: ran, ending: ending!, to: &body)
        }
        body.writeStaticString(",\"createTime\":")
        body.writeJSONString(BatchFormats.rfc3339(timeline.created))
        if let ended {
            body.writeStaticString(",\"endTime\":")
            body.writeJSONString(BatchFormats.rfc3339(ended))
        }
        body.writeStaticString(",\"updateTime\":")
        body.writeJSONString(BatchFormats.rfc3339(updated))
        // int64 fields are strings in JSON, and zero ones are left out (proto3).
        body.writeStaticString(",\"batchStats\":{\"requestCount\":\"")
        body.writeDecimal(batch.lines.count)
        body.writeStaticString("\"")
        for (name, count) in [
            ("pendingRequestCount", ending == nil ? batch.lines.count - successful - failed : 0),
            ("successfulRequestCount", successful), ("failedRequestCount", failed),
        ] where count > 0 {
            body.writeStaticString(",")
            body.writeJSONString(name)
            body.writeStaticString(":\"")
            body.writeDecimal(count)
            body.writeStaticString("\"")
        }
        body.writeStaticString("},\"state\":\"")
        body.writeStaticString(state)
        body.writeStaticString("\",\"name\":")
        body.writeJSONString(batch.id)
        body.writeStaticString("}")
        if ending != nil { body.writeStaticString(",\"done\":true") }
        body.writeStaticString("}")
    }

    /// `metadata.output`: inline responses in request order, or the responses file.
    private static func writeOutput(
        _ batch: MockBatch, ran: [Bool], ending: BatchTimeline.Ending, to body: inout ByteWriter
    ) {
        guard let fields = batch.gemini else { return }
        if fields.inputFileName != nil {
            body.writeStaticString("{\"responsesFile\":")
            body.writeJSONString(fields.responsesFileName)
            body.writeStaticString("}")
            return
        }
        body.writeStaticString("{\"inlinedResponses\":{\"inlinedResponses\":[")
        for (index, line) in batch.lines.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            body.writeStaticString("{")
            writeResult(line, ran: ran[index], ending: ending, to: &body)
            if let metadata = line.metadata {
                body.writeStaticString(",\"metadata\":")
                body.writeBytes(metadata.compactBytes)
            }
            body.writeStaticString("}")
        }
        body.writeStaticString("]}}")
    }

    /// `"response":{…}` or `"error":{"code","message"}` for one request.
    private static func writeResult(
        _ line: BatchLine, ran: Bool, ending: BatchTimeline.Ending, to body: inout ByteWriter
    ) {
        if ran && line.succeeded {
            body.writeStaticString("\"response\":")
            body.writeBytes(line.body)
            return
        }
        var code = 4
        var message = "The request was not run before the batch expired."
        if ran {
            let error = (try? JSONParser.parse(line.body))?["error"]
            code = grpcCode(error?["status"]?.stringValue ?? "INTERNAL")
            message = error?["message"]?.stringValue ?? "Internal error."
        } else if ending == .cancelled {
            code = 1
            message = "The request was not run because the batch was cancelled."
        }
        body.writeStaticString("\"error\":{\"code\":")
        body.writeDecimal(code)
        body.writeStaticString(",\"message\":")
        body.writeJSONString(message)
        body.writeStaticString("}")
    }

    /// The google.rpc.Code of a canonical status name.
    static func grpcCode(_ status: String) -> Int {
        switch status {
        case "CANCELLED": return 1
        case "INVALID_ARGUMENT": return 3
        case "DEADLINE_EXCEEDED": return 4
        case "NOT_FOUND": return 5
        case "PERMISSION_DENIED": return 7
        case "RESOURCE_EXHAUSTED": return 8
        case "FAILED_PRECONDITION": return 9
        case "UNAVAILABLE": return 14
        case "UNAUTHENTICATED": return 16
        default: return 13
        }
    }

    /// The responses file of a file batch that has just ended: one line per request,
    /// shuffled.
    @Sendable static func responsesFile(_ batch: MockBatch, at time: Double) -> [StoredFile] {
        guard let fields = batch.gemini, fields.inputFileName != nil,
            case .ended(let ending) = batch.timeline.phase(at: time)
        else { return [] }
        let ran = batch.ran(at: time)
        var body = ByteWriter(capacity: batch.lines.count * 700)
        for index in batch.shuffledIndices() {
            let line = batch.lines[index]
            body.writeStaticString("{\"key\":")
            body.writeJSONStringOrNull(line.key)
            body.writeStaticString(",")
            writeResult(line, ran: ran[index], ending: ending, to: &body)
            body.writeStaticString("}\n")
        }
        return [
            StoredFile(
                provider: .gemini, id: fields.responsesFileName, filename: fields.responsesFileName, purpose: "",
                mimeType: "application/jsonl", created: time, bytes: body.bytes, generated: true)
        ]
    }

    // MARK: - Files

    private func upload(
        _ request: MockRequest, version: Substring, origin: String, at now: Double, context: inout MockRequestContext
    ) -> MockResponse {
        let command = (request.headers.first(name: "x-goog-upload-command") ?? "").lowercased()
        if let uploadID = GeminiSurface.queryValue(request.query, "upload_id") {
            return uploadChunk(String(uploadID), command: command, request: request, origin: origin, context: context)
        }
        guard request.headers.first(name: "x-goog-upload-protocol")?.lowercased() == "resumable", command == "start"
        else {
            return online.error(
                GeminiError(
                    message:
                        "Uploads need X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start; this server "
                        + "does not take multipart or raw uploads."),
                context: context)
        }
        // Proto JSON takes field names in lowerCamelCase or as written in the proto
        // (google-genai sends `display_name`).
        let spec = request.body.jsonObject()?["file"]?.objectValue ?? JSONObject()
        func field(_ camel: String, _ snake: String) -> String? {
            (spec[camel] ?? spec[snake])?.stringValue
        }
        var name = field("name", "name") ?? ""
        if name.isEmpty { name = "files/" + BatchFormats.lowercaseID(12, from: &context.generator) }
        if !name.hasPrefix("files/") { name = "files/" + name }
        let mimeType =
            request.headers.first(name: "x-goog-upload-header-content-type") ?? field("mimeType", "mime_type")
            ?? "application/octet-stream"
        let expected = request.headers.first(name: "x-goog-upload-header-content-length").flatMap { Int($0) }
        let file = StoredFile(
            provider: .gemini, id: name, filename: name, purpose: "", mimeType: mimeType,
            displayName: field("displayName", "display_name"), created: now, bytes: [])
        let uploadID = BatchFormats.lowercaseID(40, from: &context.generator)
        store.startUpload(MockBatchStore.Upload(file: file, expectedBytes: expected), id: uploadID)
        let url = "\(origin)/upload/\(version)/files?upload_id=\(uploadID)&upload_protocol=resumable"
        return MockResponse(
            status: .ok,
            headers: [
                (name: "content-type", value: "text/plain; charset=utf-8"),
                (name: "x-goog-upload-status", value: "active"),
                (name: "x-goog-upload-url", value: url), (name: "x-goog-upload-control-url", value: url),
                (name: "x-goog-upload-chunk-granularity", value: "8388608"),
            ],
            body: .full([]))
    }

    private func uploadChunk(
        _ uploadID: String, command: String, request: MockRequest, origin: String, context: MockRequestContext
    ) -> MockResponse {
        let offset = request.headers.first(name: "x-goog-upload-offset").flatMap { Int($0) }
        let chunk = Array(request.body.readableBytesView)
        let finalize = command.contains("finalize")
        let uploads = command.contains("upload")
        let server = context.server
        enum Outcome {
            case active(received: Int)
            case wrongOffset(received: Int)
            case wrongSize(received: Int, expected: Int)
            case final(StoredFile)
        }
        let outcome = store.withUpload(uploadID) { upload -> (Outcome, StoredFile?) in
            if uploads {
                guard offset == nil || offset == upload.received.count else {
                    return (.wrongOffset(received: upload.received.count), nil)
                }
                upload.received += chunk
            }
            guard finalize else { return (.active(received: upload.received.count), nil) }
            if let expected = upload.expectedBytes, expected != upload.received.count {
                return (.wrongSize(received: upload.received.count, expected: expected), nil)
            }
            var file = upload.file
            file.bytes = upload.received
            return (.final(file), file)
        }
        let plain = [(name: "content-type", value: "text/plain; charset=utf-8")]
        switch outcome {
        case nil:
            return online.error(
                GeminiError(code: 404, status: "NOT_FOUND", message: "No upload session \(uploadID)."), context: context
            )
        case .active(let received)?:
            return MockResponse(
                status: .ok,
                headers: plain + [
                    (name: "x-goog-upload-status", value: "active"),
                    (name: "x-goog-upload-size-received", value: String(received)),
                ],
                body: .full([]))
        case .wrongOffset(let received)?:
            return online.error(
                GeminiError(
                    message: "X-Goog-Upload-Offset \(offset ?? -1) does not match the \(received) bytes received."),
                context: context)
        case .wrongSize(let received, let expected)?:
            return online.error(
                GeminiError(
                    message:
                        "The upload has \(received) bytes but X-Goog-Upload-Header-Content-Length announced \(expected)."
                ),
                context: context)
        case .final(let file)?:
            server.stats.recordFileUploaded()
            var body = ByteWriter(capacity: 512)
            body.writeStaticString("{\"file\":")
            Self.writeFile(file, origin: origin, to: &body)
            body.writeStaticString("}")
            return MockResponse(
                status: .ok,
                headers: [
                    (name: "content-type", value: "application/json; charset=UTF-8"),
                    (name: "x-goog-upload-status", value: "final"),
                ],
                body: .full(body.bytes))
        }
    }

    /// A File resource.
    static func writeFile(_ file: StoredFile, origin: String, to body: inout ByteWriter) {
        let short = file.id.dropFirst("files/".count)
        body.writeStaticString("{\"name\":")
        body.writeJSONString(file.id)
        if let displayName = file.displayName {
            body.writeStaticString(",\"displayName\":")
            body.writeJSONString(displayName)
        }
        body.writeStaticString(",\"mimeType\":")
        body.writeJSONString(file.mimeType)
        body.writeStaticString(",\"sizeBytes\":\"")
        body.writeDecimal(file.bytes.count)
        body.writeStaticString("\",\"createTime\":")
        body.writeJSONString(BatchFormats.rfc3339(file.created))
        body.writeStaticString(",\"updateTime\":")
        body.writeJSONString(BatchFormats.rfc3339(file.created))
        body.writeStaticString(",\"expirationTime\":")
        body.writeJSONString(BatchFormats.rfc3339(file.created + 48 * 3600))
        body.writeStaticString(",\"sha256Hash\":")
        body.writeJSONString(BatchFormats.base64(SHA256.hash(file.bytes)))
        body.writeStaticString(",\"uri\":")
        body.writeJSONString("\(origin)/v1beta/files/\(short)")
        if file.generated {
            body.writeStaticString(",\"downloadUri\":")
            body.writeJSONString("\(origin)/download/v1beta/files/\(short):download?alt=media")
        }
        body.writeStaticString(",\"state\":\"ACTIVE\",\"source\":\"")
        body.writeStaticString(file.generated ? "GENERATED" : "UPLOADED")
        body.writeStaticString("\"}")
    }

    // MARK: - Helpers

    private func ok(_ body: ByteWriter) -> MockResponse {
        MockResponse(
            status: .ok, headers: [(name: "content-type", value: "application/json; charset=UTF-8")],
            body: .full(body.bytes))
    }

}

extension ByteWriter {
    /// A writer holding `text` already.
    init(bytes text: StaticString) {
        self.init(capacity: text.utf8CodeUnitCount)
        writeStaticString(text)
    }
}
