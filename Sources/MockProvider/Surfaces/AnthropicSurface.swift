import LLMQCore
import NIOHTTP1

/// Anthropic's Messages API (`POST /v1/messages`) as `PROVIDERS.md` §3 describes it:
/// `x-api-key` or `Authorization: Bearer` keys, the required `anthropic-version`
/// header, validation errors, messages, SSE streams with named events, 429s with
/// `anthropic-ratelimit-*` headers (resets as RFC 3339 times) and `retry-after`,
/// 500 `api_error`, 529 `overloaded_error`, and an in-stream `event: error`.
///
/// Replies come from `MockReplies` with the `system` prompt as a first `system`
/// message (see `AnthropicMessagesRequest`), or from `StructuredReply` when
/// `output_config.format` asks for JSON. Every answer has a `request-id` header.
///
/// Prompt caching is opt-in, as at Anthropic: only a request with `cache_control`
/// caches, and only prefixes of at least 1024 tokens (the smallest model minimum).
/// The first request writes its prefix up to the last breakpoint
/// (`cache_creation_input_tokens`, split by TTL in `cache_creation`); a later one
/// reads the longest prefix written before that ends at one of its breakpoints or
/// up to 20 messages before one (`cache_read_input_tokens`), and writes the rest.
/// `input_tokens` is what follows the last breakpoint. Entries do not expire.
final class AnthropicSurface: MockSurface {
    static let messages = 0

    let endpointNames = ["POST /v1/messages"]
    let configuration: MockProviderServer.Configuration
    let promptCache: PromptCache?

    init(configuration: MockProviderServer.Configuration, promptCache: PromptCache?) {
        self.configuration = configuration
        self.promptCache = promptCache
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        method == .POST && path == "/v1/messages" ? Self.messages : nil
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        if let failure = authenticate(request) { return .respond(error(failure, context: &context)) }
        guard let version = request.headers.first(name: "anthropic-version"), !version.isEmpty else {
            return .respond(
                error(AnthropicError(message: "anthropic-version: header is required"), context: &context))
        }
        let parsed: AnthropicMessagesRequest
        switch AnthropicMessagesRequest.parse(request.body, configuration: configuration) {
        case .success(let request): parsed = request
        case .failure(let failure): return .respond(error(failure, context: &context))
        }
        if let models = configuration.models, !models.contains(parsed.model) {
            return .respond(
                error(
                    AnthropicError(status: .notFound, type: "not_found_error", message: "model: \(parsed.model)"),
                    context: &context))
        }
        return .call(
            MockCall(
                model: parsed.model,
                tokenCost: parsed.digest.tokens + parsed.completionTokens,
                completionTokens: parsed.completionTokens,
                isStream: parsed.stream,
                render: { report, context in
                    self.render(parsed, report: report, context: &context)
                }))
    }

    // MARK: - Authentication

    /// The key from `x-api-key`, else from `Authorization: Bearer` (SDK 2.x sends that).
    func authenticate(_ request: MockRequest) -> AnthropicError? {
        var key = Substring(request.headers.first(name: "x-api-key") ?? "")
        if key.isEmpty { key = OpenAISurface.bearerToken(request.headers.first(name: "authorization") ?? "") }
        if key.isEmpty {
            return AnthropicError(
                status: .unauthorized, type: "authentication_error", message: "x-api-key header is required")
        }
        if let expected = configuration.apiKey, !key.utf8.elementsEqual(expected.utf8) {
            return AnthropicError(status: .unauthorized, type: "authentication_error", message: "invalid x-api-key")
        }
        return nil
    }

    // MARK: - Successful answers

    private func render(
        _ request: AnthropicMessagesRequest, report: RateLimiter.Report?, context: inout MockRequestContext
    ) -> MockResponse {
        var headers = baseHeaders(
            context: context, contentType: request.stream ? "text/event-stream; charset=utf-8" : "application/json")
        if let report { Self.addRateLimitHeaders(report, unixTime: context.unixTime, to: &headers) }
        let usage = cacheUsage(request)
        if request.stream {
            headers.append((name: "cache-control", value: "no-cache"))
            let frames = streamFrames(request, usage: usage, context: &context)
            return MockResponse(status: .ok, headers: headers, body: .stream(frames))
        }
        var body = ByteWriter(capacity: 480 + request.completionTokens * 9)
        body.writeStaticString("{\"id\":\"")
        context.writeID(prefix: "msg_01", digits: 22, to: &body)
        body.writeStaticString("\",\"type\":\"message\",\"role\":\"assistant\",\"model\":")
        body.writeJSONString(request.model)
        body.writeStaticString(",\"content\":[{\"type\":\"text\",\"text\":")
        if let structured = request.structured {
            body.writeJSONString(structured.joined())
        } else {
            // Reply words are plain lowercase ASCII: nothing to escape.
            body.writeStaticString("\"")
            MockReplies.write(
                digest: request.digest.hash, seed: nil, tokens: request.completionTokens, choice: 0, to: &body)
            body.writeStaticString("\"")
        }
        body.writeStaticString("}],\"stop_reason\":")
        body.writeJSONString(request.stopReason)
        body.writeStaticString(",\"stop_sequence\":null,\"usage\":")
        usage.write(outputTokens: usage.output, to: &body)
        body.writeStaticString("}")
        return MockResponse(status: .ok, headers: headers, body: .full(body.bytes))
    }

    /// `message_start`, `content_block_start`, `ping`, one `content_block_delta` per
    /// word, `content_block_stop`, `message_delta` (stop reason, cumulative output
    /// tokens), `message_stop`: every event with its `event:` line.
    private func streamFrames(
        _ request: AnthropicMessagesRequest, usage: Usage, context: inout MockRequestContext
    ) -> [MockResponse.Frame] {
        var frames: [MockResponse.Frame] = []
        frames.reserveCapacity(request.completionTokens + 6)
        func event(_ name: StaticString, carriesToken: Bool = false, _ data: (inout ByteWriter) -> Void) {
            var frame = ByteWriter(capacity: 160)
            frame.writeStaticString("event: ")
            frame.writeStaticString(name)
            frame.writeStaticString("\ndata: ")
            data(&frame)
            frame.writeStaticString("\n\n")
            frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: carriesToken))
        }
        var id = ByteWriter(capacity: 32)
        context.writeID(prefix: "msg_01", digits: 22, to: &id)
        event("message_start") { frame in
            frame.writeStaticString("{\"type\":\"message_start\",\"message\":{\"id\":\"")
            frame.writeBytes(id.bytes)
            frame.writeStaticString("\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":")
            frame.writeJSONString(request.model)
            frame.writeStaticString(",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":")
            usage.write(outputTokens: min(1, usage.output), to: &frame)
            frame.writeStaticString("}}")
        }
        event("content_block_start") {
            $0.writeStaticString(
                "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
        }
        event("ping") { $0.writeStaticString("{\"type\":\"ping\"}") }
        let pieces =
            request.structured
            ?? MockReplies.words(digest: request.digest.hash, seed: nil, tokens: request.completionTokens, choice: 0)
            .enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element }
        for piece in pieces {
            event("content_block_delta", carriesToken: true) { frame in
                frame.writeStaticString(
                    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":")
                frame.writeJSONString(piece)
                frame.writeStaticString("}}")
            }
        }
        event("content_block_stop") { $0.writeStaticString("{\"type\":\"content_block_stop\",\"index\":0}") }
        event("message_delta") { frame in
            frame.writeStaticString("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":")
            frame.writeJSONString(request.stopReason)
            frame.writeStaticString(",\"stop_sequence\":null},\"usage\":{\"output_tokens\":")
            frame.writeDecimal(usage.output)
            frame.writeStaticString("}}")
        }
        event("message_stop") { $0.writeStaticString("{\"type\":\"message_stop\"}") }
        return frames
    }

    /// Usage with the cache reads and writes of the request's breakpoints.
    ///
    /// As at Anthropic, a breakpoint also finds entries written at earlier block
    /// boundaries, up to 20 blocks back (here, a message is a block), so a growing
    /// conversation with one breakpoint at its end reads what the last turn wrote.
    private func cacheUsage(_ request: AnthropicMessagesRequest) -> Usage {
        var usage = Usage(input: request.digest.tokens, output: request.completionTokens)
        let minimum = PromptCache.minimumTokens
        guard let cache = promptCache,
            let last = request.cacheBreakpoints.last(where: { request.prefixes[$0.prefix].tokens >= minimum })
        else { return usage }
        var read = 0
        for breakpoint in request.cacheBreakpoints {
            for index in stride(from: breakpoint.prefix, through: max(0, breakpoint.prefix - 19), by: -1) {
                let prefix = request.prefixes[index]
                guard prefix.tokens >= minimum, prefix.tokens > read else { break }
                if cache.contains(prefix.hash ^ Self.cacheSalt) {
                    read = prefix.tokens
                    break
                }
            }
        }
        for breakpoint in request.cacheBreakpoints where request.prefixes[breakpoint.prefix].tokens >= minimum {
            cache.remember(request.prefixes[breakpoint.prefix].hash ^ Self.cacheSalt)
        }
        let written = max(0, request.prefixes[last.prefix].tokens - read)
        usage.cacheRead = read
        if request.cacheBreakpoints.contains(where: \.oneHour) {
            usage.cacheWriteOneHour = written
        } else {
            usage.cacheWriteFiveMinutes = written
        }
        usage.input = request.digest.tokens - read - written
        return usage
    }

    /// Mixed into prefix digests so explicit entries never meet OpenAI's automatic ones.
    private static let cacheSalt: UInt64 = 0x616E_7468_726F_7069

    // MARK: - Errors

    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let retryNanoseconds: Int64
        let report: RateLimiter.Report?
        let message: String
        switch rejection {
        case .bucket(let rejection):
            retryNanoseconds = rejection.retryAfterNanoseconds
            report = rejection.report
            switch rejection.limit {
            case .requests:
                message =
                    "This request would exceed the rate limit for your organization of "
                    + "\(rejection.report.requests?.limit ?? 0) requests per minute. For details, refer to: "
                    + "https://docs.claude.com/en/api/rate-limits."
            case .tokens:
                message =
                    "This request would exceed the rate limit for your organization of "
                    + "\(rejection.report.tokens?.limit ?? 0) input tokens per minute. For details, refer to: "
                    + "https://docs.claude.com/en/api/rate-limits."
            case .requestTooLarge:
                message =
                    "This request asks for \(rejection.requested) tokens, more than your organization's limit of "
                    + "\(rejection.report.tokens?.limit ?? 0) tokens per minute; it can never be served."
            }
        case .concurrency(let limit, let retryAfter, let limiterReport):
            retryNanoseconds = retryAfter
            report = limiterReport
            message = "Too many concurrent requests for your organization: limit \(limit) in flight."
        }
        var response = error(
            AnthropicError(status: .tooManyRequests, type: "rate_limit_error", message: message), context: &context)
        if let report { Self.addRateLimitHeaders(report, unixTime: context.unixTime, to: &response.headers) }
        if case .bucket(let rejection) = rejection, rejection.limit == .requestTooLarge {
            response.headers.append((name: "x-should-retry", value: "false"))
        } else {
            let seconds = max(1, (retryNanoseconds + 999_999_999) / 1_000_000_000)
            response.headers.append((name: "retry-after", value: String(seconds)))
        }
        return response
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let failure =
            fault == .overloaded
            ? AnthropicError.overloaded
            : AnthropicError(status: .internalServerError, type: "api_error", message: "Internal server error")
        return error(failure, context: &context)
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        var frame = ByteWriter(capacity: 128)
        frame.writeStaticString("event: error\ndata: ")
        AnthropicError.overloaded.write(requestID: nil, to: &frame)
        frame.writeStaticString("\n\n")
        return frame.bytes
    }

    func error(_ failure: AnthropicError, context: inout MockRequestContext) -> MockResponse {
        var body = ByteWriter(capacity: 256)
        failure.write(requestID: context.requestID, to: &body)
        return MockResponse(status: failure.status, headers: baseHeaders(context: context), body: .full(body.bytes))
    }

    // MARK: - Headers

    func baseHeaders(context: MockRequestContext, contentType: String = "application/json")
        -> [(name: String, value: String)]
    {
        [(name: "content-type", value: contentType), (name: "request-id", value: context.requestID)]
    }

    /// `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`, resets as RFC
    /// 3339 times (rounded up to the second).
    static func addRateLimitHeaders(
        _ report: RateLimiter.Report, unixTime: Int, to headers: inout [(name: String, value: String)]
    ) {
        for (kind, bucket) in [("requests", report.requests), ("tokens", report.tokens)] {
            guard let bucket else { continue }
            let prefix = "anthropic-ratelimit-" + kind
            headers.append((name: prefix + "-limit", value: String(bucket.limit)))
            headers.append((name: prefix + "-remaining", value: String(bucket.remaining)))
            let seconds = Int((bucket.resetNanoseconds + 999_999_999) / 1_000_000_000)
            headers.append((name: prefix + "-reset", value: rfc3339(unixTime: unixTime + seconds)))
        }
    }

    /// `2025-08-21T12:40:59Z` for a unix time.
    static func rfc3339(unixTime: Int) -> String {
        let days = unixTime >= 0 ? unixTime / 86_400 : (unixTime - 86_399) / 86_400
        let secondOfDay = unixTime - days * 86_400
        // Howard Hinnant's civil_from_days.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):"
            + "\(two(secondOfDay % 60))Z"
    }
}

/// `usage` of a message.
private struct Usage {
    var input: Int
    var output: Int
    var cacheRead = 0
    var cacheWriteFiveMinutes = 0
    var cacheWriteOneHour = 0

    func write(outputTokens: Int, to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"input_tokens\":")
        buffer.writeDecimal(input)
        buffer.writeStaticString(",\"output_tokens\":")
        buffer.writeDecimal(outputTokens)
        buffer.writeStaticString(",\"cache_creation_input_tokens\":")
        buffer.writeDecimal(cacheWriteFiveMinutes + cacheWriteOneHour)
        buffer.writeStaticString(",\"cache_read_input_tokens\":")
        buffer.writeDecimal(cacheRead)
        buffer.writeStaticString(",\"cache_creation\":{\"ephemeral_5m_input_tokens\":")
        buffer.writeDecimal(cacheWriteFiveMinutes)
        buffer.writeStaticString(",\"ephemeral_1h_input_tokens\":")
        buffer.writeDecimal(cacheWriteOneHour)
        buffer.writeStaticString("},\"service_tier\":\"standard\"}")
    }
}
