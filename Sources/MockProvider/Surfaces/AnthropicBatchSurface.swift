import LLMQCore
import NIOHTTP1

/// Anthropic's Message Batches API (`PROVIDERS.md` §4).
///
/// - `POST /v1/messages/batches` takes `{"requests":[{"custom_id","params"}]}`: at most
///   100,000 requests, each `custom_id` matching `^[a-zA-Z0-9_-]{1,64}$` and unique
///   (a 400 otherwise, in the API's pydantic wording). Each `params` is answered
///   exactly as `POST /v1/messages` would answer it (`BatchLineAnswerer`): a body the
///   online endpoint refuses becomes an `errored` result carrying that error.
/// - `processing_status` is `in_progress` until the batch ends (`BatchTimeline`), then
///   `ended` with `ended_at` and `results_url`; `request_counts` has every request as
///   `processing` until then, and the outcome counts after.
/// - Cancel answers `canceling` with `cancel_initiated_at`; the batch has ended when
///   next seen, requests run before the cancel keep their results and the rest are
///   `canceled`. A batch that expires ends with half its requests run and the rest
///   `expired`. Delete works once a batch has ended.
/// - `GET …/{id}/results` is JSONL in shuffled order.
/// - The list is newest first, paginated with `limit` (1–1000, default 20),
///   `after_id` and `before_id`, answering `data`, `has_more`, `first_id`, `last_id`.
///
/// Times are RFC 3339 with microseconds. The messages of the 400s and 404s, the
/// results' content type (`application/binary`) and the list's pagination are
/// **(unverified)**.
final class AnthropicBatchSurface: MockSurfaceBesideOnline {
    static let create = 0
    static let list = 1
    static let get = 2
    static let cancel = 3
    static let delete = 4
    static let results = 5

    let endpointNames = [
        "POST /v1/messages/batches", "GET /v1/messages/batches", "GET /v1/messages/batches/{id}",
        "POST /v1/messages/batches/{id}/cancel", "DELETE /v1/messages/batches/{id}",
        "GET /v1/messages/batches/{id}/results",
    ]

    static let maximumRequests = 100_000

    let online: AnthropicSurface
    let store: MockBatchStore

    init(online: AnthropicSurface, store: MockBatchStore) {
        self.online = online
        self.store = store
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].isEmpty, parts[1] == "v1", parts[2] == "messages", parts[3] == "batches"
        else { return nil }
        switch (method, parts.count) {
        case (.POST, 4): return Self.create
        case (.GET, 4): return Self.list
        case (.GET, 5) where !parts[4].isEmpty: return Self.get
        case (.DELETE, 5) where !parts[4].isEmpty: return Self.delete
        case (.POST, 6) where !parts[4].isEmpty && parts[5] == "cancel": return Self.cancel
        case (.GET, 6) where !parts[4].isEmpty && parts[5] == "results": return Self.results
        default: return nil
        }
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        if let failure = online.authenticate(request) { return .respond(online.error(failure, context: &context)) }
        guard let version = request.headers.first(name: "anthropic-version"), !version.isEmpty else {
            return .respond(
                online.error(AnthropicError(message: "anthropic-version: header is required"), context: &context))
        }
        let id = String(request.path.split(separator: "/").dropFirst(3).first ?? "")
        let origin = BatchFormats.origin(request)
        let now = store.now()
        switch endpoint {
        case Self.create:
            return .respond(create(request, at: now, origin: origin, context: &context))
        case Self.list:
            return .respond(list(request, at: now, origin: origin, context: &context))
        case Self.get:
            guard let batch = store.observe(id, provider: .anthropic, at: now) else {
                return .respond(notFound(id, context: &context))
            }
            return .respond(render(batch, at: now, origin: origin, context: &context))
        case Self.cancel:
            switch store.cancel(id, provider: .anthropic, at: now) {
            case .notFound:
                return .respond(notFound(id, context: &context))
            case .ended:
                return .respond(
                    online.error(
                        AnthropicError(message: "Message Batch \(id) has already ended and cannot be canceled."),
                        context: &context))
            case .alreadyCancelled(let batch), .cancelled(let batch):
                return .respond(render(batch, at: now, origin: origin, context: &context))
            }
        case Self.delete:
            guard let batch = store.observe(id, provider: .anthropic, at: now) else {
                return .respond(notFound(id, context: &context))
            }
            guard batch.timeline.hasEnded(at: now) else {
                return .respond(
                    online.error(
                        AnthropicError(
                            message:
                                "Message Batch \(id) cannot be deleted while it is processing; cancel it first."),
                        context: &context))
            }
            _ = store.deleteBatch(id, provider: .anthropic)
            var body = ByteWriter(capacity: 80)
            body.writeStaticString("{\"id\":")
            body.writeJSONString(id)
            body.writeStaticString(",\"type\":\"message_batch_deleted\"}")
            return .respond(ok(body, context: context))
        default:
            guard let batch = store.observe(id, provider: .anthropic, at: now) else {
                return .respond(notFound(id, context: &context))
            }
            guard batch.timeline.hasEnded(at: now) else {
                return .respond(
                    online.error(
                        AnthropicError(
                            message:
                                "Message Batch \(id) has not ended yet; its results are available once "
                                + "processing_status is ended."),
                        context: &context))
            }
            return .respond(
                MockResponse(
                    status: .ok, headers: online.baseHeaders(context: context, contentType: "application/binary"),
                    body: .full(Self.results(batch, at: now))))
        }
    }

    // MARK: - Create

    private func create(_ request: MockRequest, at now: Double, origin: String, context: inout MockRequestContext)
        -> MockResponse
    {
        let requests: [(customID: String, params: JSONValue)]
        do {
            requests = try Self.check(request.body.jsonObject())
        } catch {
            return online.error(error, context: &context)
        }
        var lines: [BatchLine] = []
        lines.reserveCapacity(requests.count)
        for (customID, params) in requests {
            var lineContext = BatchLineAnswerer.lineContext(&context)
            let requestID = lineContext.requestID
            let status: Int
            let body: [UInt8]
            switch BatchLineAnswerer.answer(
                target: "/v1/messages", headers: request.headers, body: params.compactBytes,
                failing: store.lineFails(key: customID), context: &lineContext)
            {
            case .answered(let answerStatus, let answerBody):
                status = answerStatus
                body = answerBody
            case .streamRequested:
                status = 400
                var writer = ByteWriter(capacity: 160)
                AnthropicError(message: "stream: Streaming is not supported in batch requests.")
                    .write(requestID: requestID, to: &writer)
                body = writer.bytes
            }
            lines.append(BatchLine(key: customID, status: status, body: body, requestID: requestID, lineID: ""))
        }
        let id = context.makeID(prefix: "msgbatch_01", digits: 22)
        let batch = MockBatch(
            provider: .anthropic, id: id, timeline: store.timeline(id: id, created: now), lines: lines,
            runOrder: BatchLineAnswerer.runOrder(count: lines.count, id: id, seed: store.seed),
            shuffleSeed: context.generator.next())
        store.insert(batch)
        context.server.stats.recordBatchCreated(.anthropic, id: id, requests: lines.count)
        return render(batch, at: now, justCreated: true, origin: origin, context: &context)
    }

    /// The requests of a create body, or the 400 the API answers.
    private static func check(_ object: JSONObject?) throws(AnthropicError) -> [(customID: String, params: JSONValue)] {
        guard let object else {
            throw AnthropicError(message: "There was an issue with your request body: invalid JSON.")
        }
        for key in object.keys where key != "requests" {
            throw AnthropicError(message: "\(key): Extra inputs are not permitted")
        }
        guard let value = object["requests"], value != .null else {
            throw AnthropicError(message: "requests: Field required")
        }
        guard let entries = value.arrayValue else {
            throw AnthropicError(message: "requests: Input should be a valid list")
        }
        guard !entries.isEmpty else {
            throw AnthropicError(message: "requests: List should have at least 1 item after validation, not 0")
        }
        guard entries.count <= maximumRequests else {
            throw AnthropicError(
                message:
                    "requests: List should have at most \(maximumRequests) items after validation, not \(entries.count)"
            )
        }
        var requests: [(customID: String, params: JSONValue)] = []
        requests.reserveCapacity(entries.count)
        var seen = Set<String>()
        for (index, entry) in entries.enumerated() {
            let name = "requests.\(index)"
            guard let fields = entry.objectValue else {
                throw AnthropicError(message: "\(name): Input should be a valid dictionary")
            }
            for key in fields.keys where key != "custom_id" && key != "params" {
                throw AnthropicError(message: "\(name).\(key): Extra inputs are not permitted")
            }
            guard let idValue = fields["custom_id"], idValue != .null else {
                throw AnthropicError(message: "\(name).custom_id: Field required")
            }
            guard let customID = idValue.stringValue else {
                throw AnthropicError(message: "\(name).custom_id: Input should be a valid string")
            }
            guard isValidCustomID(customID) else {
                throw AnthropicError(
                    message: "\(name).custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
            }
            guard seen.insert(customID).inserted else {
                throw AnthropicError(
                    message:
                        "\(name).custom_id: Duplicate custom_id '\(customID)'; custom_id must be unique within a batch."
                )
            }
            guard let params = fields["params"], params != .null else {
                throw AnthropicError(message: "\(name).params: Field required")
            }
            guard params.objectValue != nil else {
                throw AnthropicError(message: "\(name).params: Input should be a valid dictionary")
            }
            requests.append((customID, params))
        }
        return requests
    }

    /// `^[a-zA-Z0-9_-]{1,64}$`.
    static func isValidCustomID(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || (byte >= 48 && byte <= 57)
                || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
        }
    }

    // MARK: - List

    private func list(_ request: MockRequest, at now: Double, origin: String, context: inout MockRequestContext)
        -> MockResponse
    {
        var limit = 20
        if let text = GeminiSurface.queryValue(request.query, "limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                return online.error(
                    AnthropicError(message: "limit: Input should be greater than or equal to 1 and at most 1000"),
                    context: &context)
            }
            limit = value
        }
        let all = store.batches(provider: .anthropic, at: now)
        let page: ArraySlice<MockBatch>
        let hasMore: Bool
        if let before = GeminiSurface.queryValue(request.query, "before_id") {
            let end = all.firstIndex { $0.id == before } ?? 0
            let start = max(0, end - limit)
            page = all[start..<end]
            hasMore = start > 0
        } else {
            var start = 0
            if let after = GeminiSurface.queryValue(request.query, "after_id") {
                start = all.firstIndex { $0.id == after }.map { $0 + 1 } ?? all.count
            }
            page = all[start..<min(all.count, start + limit)]
            hasMore = start + limit < all.count
        }
        var body = ByteWriter(capacity: 96 + page.count * 480)
        body.writeStaticString("{\"data\":[")
        for (index, batch) in page.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            Self.write(batch, at: now, justCreated: false, origin: origin, to: &body)
        }
        body.writeStaticString("],\"has_more\":")
        body.writeStaticString(hasMore ? "true" : "false")
        body.writeStaticString(",\"first_id\":")
        body.writeJSONStringOrNull(page.first?.id)
        body.writeStaticString(",\"last_id\":")
        body.writeJSONStringOrNull(page.last?.id)
        body.writeStaticString("}")
        return ok(body, context: context)
    }

    // MARK: - Rendering

    private func render(
        _ batch: MockBatch, at time: Double, justCreated: Bool = false, origin: String,
        context: inout MockRequestContext
    ) -> MockResponse {
        var body = ByteWriter(capacity: 512)
        Self.write(batch, at: time, justCreated: justCreated, origin: origin, to: &body)
        return ok(body, context: context)
    }

    /// The `message_batch` object.
    static func write(_ batch: MockBatch, at time: Double, justCreated: Bool, origin: String, to body: inout ByteWriter)
    {
        let timeline = batch.timeline
        let phase = justCreated ? BatchTimeline.Phase.inProgress : timeline.phase(at: time)
        var counts = (processing: batch.lines.count, succeeded: 0, errored: 0, canceled: 0, expired: 0)
        let status: StaticString
        var ended = false
        switch phase {
        case .cancelling: status = "canceling"
        case .ended(let ending):
            status = "ended"
            ended = true
            counts.processing = 0
            for (index, ran) in batch.ran(at: time).enumerated() {
                if ran {
                    if batch.lines[index].succeeded { counts.succeeded += 1 } else { counts.errored += 1 }
                } else if ending == .cancelled {
                    counts.canceled += 1
                } else {
                    counts.expired += 1
                }
            }
        default: status = "in_progress"
        }
        func stamp(_ value: Double?) {
            if let value { body.writeJSONString(BatchFormats.rfc3339(value)) } else { body.writeStaticString("null") }
        }
        body.writeStaticString("{\"id\":")
        body.writeJSONString(batch.id)
        body.writeStaticString(",\"type\":\"message_batch\",\"processing_status\":\"")
        body.writeStaticString(status)
        body.writeStaticString("\",\"request_counts\":{\"processing\":")
        body.writeDecimal(counts.processing)
        body.writeStaticString(",\"succeeded\":")
        body.writeDecimal(counts.succeeded)
        body.writeStaticString(",\"errored\":")
        body.writeDecimal(counts.errored)
        body.writeStaticString(",\"canceled\":")
        body.writeDecimal(counts.canceled)
        body.writeStaticString(",\"expired\":")
        body.writeDecimal(counts.expired)
        body.writeStaticString("},\"ended_at\":")
        stamp(justCreated ? nil : timeline.endedAt(at: time))
        body.writeStaticString(",\"created_at\":")
        stamp(timeline.created)
        body.writeStaticString(",\"expires_at\":")
        stamp(timeline.created + 86_400)
        body.writeStaticString(",\"archived_at\":null,\"cancel_initiated_at\":")
        stamp(justCreated ? nil : timeline.cancelledAt)
        body.writeStaticString(",\"results_url\":")
        if ended {
            body.writeJSONString(origin + "/v1/messages/batches/" + batch.id + "/results")
        } else {
            body.writeStaticString("null")
        }
        body.writeStaticString("}")
    }

    /// The results file of an ended batch: one line per request, shuffled.
    static func results(_ batch: MockBatch, at time: Double) -> [UInt8] {
        let ran = batch.ran(at: time)
        let cancelled = batch.timeline.phase(at: time) == .ended(.cancelled)
        var body = ByteWriter(capacity: batch.lines.count * 700)
        for index in batch.shuffledIndices() {
            let line = batch.lines[index]
            body.writeStaticString("{\"custom_id\":")
            body.writeJSONStringOrNull(line.key)
            if !ran[index] {
                body.writeStaticString(
                    cancelled ? ",\"result\":{\"type\":\"canceled\"}}\n" : ",\"result\":{\"type\":\"expired\"}}\n")
            } else if line.succeeded {
                body.writeStaticString(",\"result\":{\"type\":\"succeeded\",\"message\":")
                body.writeBytes(line.body)
                body.writeStaticString("}}\n")
            } else {
                body.writeStaticString(",\"result\":{\"type\":\"errored\",\"error\":")
                body.writeBytes(line.body)
                body.writeStaticString("}}\n")
            }
        }
        return body.bytes
    }

    // MARK: - Helpers

    private func ok(_ body: ByteWriter, context: MockRequestContext) -> MockResponse {
        MockResponse(status: .ok, headers: online.baseHeaders(context: context), body: .full(body.bytes))
    }

    private func notFound(_ id: String, context: inout MockRequestContext) -> MockResponse {
        online.error(
            AnthropicError(status: .notFound, type: "not_found_error", message: "Message Batch \(id) not found."),
            context: &context)
    }
}
