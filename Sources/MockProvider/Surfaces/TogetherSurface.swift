import LLMQCore
import NIOHTTP1

/// Together AI's chat completions (`PROVIDERS.md` §6): OpenAI's body and paths with
/// Together's answers.
///
/// Together shares OpenAI's `POST /v1/chat/completions`, so this surface is never
/// routed to: `OpenAISurface` hands it every chat completion whose model is named
/// `org/name` (`meta-llama/Llama-3.3-70B-Instruct-Turbo`; Together's ids have the
/// slash, OpenAI's never do). Point `TOGETHER_BASE_URL` at the mock's `/v1`.
///
/// What differs from OpenAI, after the wire capture in opencode's
/// `togetherai-streams-text.json` and together-python's types:
/// - ids like `ogzjdpL-6Ng1vN-9f391a08f8af75e1`, also sent as `x-request-id`;
/// - answers add `prompt: []`, and `seed` (the request's, else a drawn one) and an
///   empty `tool_calls` to each choice; no `system_fingerprint`, `service_tier` or
///   `refusal`;
/// - `usage` is `{prompt_tokens, completion_tokens, total_tokens, cached_tokens}`,
///   `cached_tokens` flat and always 0 here (no prompt caching is modelled);
/// - stream chunks each carry `text`, `seed` and a `delta` with `token_id`, `role`
///   and `content` (no role-only first chunk, no `obfuscation`); each choice ends
///   with an empty delta, its `finish_reason` and `seed`, and the last of those
///   chunks carries `usage`, whether or not `stream_options` asked for it;
/// - errors are `{"id","error":{"message","type","param","code"}}`; a wrong key is
///   401 `invalid_api_key`, an unserved model 404 `model_not_found`;
/// - rate limits: `x-ratelimit-limit`/`-remaining` (the request bucket),
///   `x-tokenlimit-limit`/`-remaining` (the token bucket) and `x-ratelimit-reset`
///   (whole seconds: until the request bucket is full, on a 429 until the request
///   passes). A 429 is `dynamic_request_limited` or `dynamic_token_limited` and has
///   no `retry-after`, as Together documents only `x-ratelimit-reset`.
///
/// Request validation is OpenAI's (`ChatRequest`, `ChatDialect.together`), so its
/// messages are OpenAI's wording in Together's envelope. Error messages, the 5xx
/// types and the `x-request-id` header are **(unverified)**.
final class TogetherSurface: MockSurface {
    let endpointNames: [String] = []
    let configuration: MockProviderServer.Configuration

    init(configuration: MockProviderServer.Configuration) {
        self.configuration = configuration
    }

    /// Whether a model name is Together's: `org/name`.
    static func serves(model: String) -> Bool {
        model.utf8.contains(UInt8(ascii: "/"))
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        nil
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        prepare(request, object: request.body.jsonObject(), context: &context)
    }

    /// Answers a chat completion whose body `OpenAISurface` already parsed.
    func prepare(_ request: MockRequest, object: JSONObject?, context: inout MockRequestContext) -> MockPreparation {
        if let failure = authenticate(request) { return .respond(error(failure, context: &context)) }
        let parsed: ChatRequest
        switch ChatRequest.parse(object, dialect: .together, configuration: configuration) {
        case .success(let request): parsed = request
        case .failure(let failure): return .respond(error(failure, context: &context))
        }
        if let models = configuration.models, !models.contains(parsed.model) {
            return .respond(
                error(
                    OpenAIError(
                        status: .notFound,
                        message:
                            "Unable to access model \(parsed.model). Please visit https://api.together.ai/models to "
                            + "view the list of supported models.",
                        code: "model_not_found"),
                    context: &context))
        }
        return .call(
            MockCall(
                model: parsed.model,
                tokenCost: parsed.digest.tokens + parsed.completionTokens,
                completionTokens: parsed.completionTokensPerChoice,
                isStream: parsed.stream,
                render: { report, context in
                    self.render(parsed, report: report, context: &context)
                },
                surface: self))
    }

    private func authenticate(_ request: MockRequest) -> OpenAIError? {
        let key = OpenAISurface.bearerToken(request.headers.first(name: "authorization") ?? "")
        if !key.isEmpty, configuration.apiKey.map({ key.utf8.elementsEqual($0.utf8) }) ?? true { return nil }
        // A missing key and a wrong one get the same answer; neither echoes the key.
        return OpenAIError(
            status: .unauthorized,
            message:
                "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.",
            code: "invalid_api_key")
    }

    // MARK: - Successful answers

    private func render(_ request: ChatRequest, report: RateLimiter.Report?, context: inout MockRequestContext)
        -> MockResponse
    {
        let id = Self.makeID(context: &context)
        var headers = baseHeaders(
            id: id, contentType: request.stream ? "text/event-stream;charset=utf-8" : "application/json; charset=utf-8")
        if let report { Self.addRateLimitHeaders(report, to: &headers) }
        let seeds = (0..<request.n).map { _ in
            request.seed.map { String($0) } ?? String(context.generator.next())
        }
        let choices = OpenAISurface.pieces(request)
        if request.stream {
            headers.append((name: "cache-control", value: "no-cache"))
            let frames = streamFrames(request, id: id, choices: choices, seeds: seeds, context: context)
            return MockResponse(status: .ok, headers: headers, body: .stream(frames))
        }
        var body = ByteWriter(capacity: 512 + request.n * request.completionTokensPerChoice * 9)
        body.writeStaticString("{\"id\":")
        body.writeJSONString(id)
        body.writeStaticString(",\"object\":\"chat.completion\",\"created\":")
        body.writeDecimal(context.unixTime)
        body.writeStaticString(",\"model\":")
        body.writeJSONString(request.model)
        body.writeStaticString(",\"prompt\":[],\"choices\":[")
        for (index, pieces) in choices.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            body.writeStaticString("{\"finish_reason\":")
            body.writeJSONString(request.structured?[index].finishReason ?? request.finishReason)
            body.writeStaticString(",\"seed\":")
            body.writeString(seeds[index])
            body.writeStaticString(",\"logprobs\":null,\"index\":")
            body.writeDecimal(index)
            body.writeStaticString(",\"message\":{\"role\":\"assistant\",\"content\":")
            body.writeJSONString(pieces.joined())
            body.writeStaticString(",\"tool_calls\":[]}}")
        }
        body.writeStaticString("],\"usage\":")
        writeUsage(request, to: &body)
        body.writeStaticString("}")
        return MockResponse(status: .ok, headers: headers, body: .full(body.bytes))
    }

    /// One chunk per piece (choices interleaved), each with `text`, `seed: null` and a
    /// `delta` carrying the role; per choice a last empty delta with `finish_reason`
    /// and `seed`, the last of them with `usage`; then `[DONE]`.
    private func streamFrames(
        _ request: ChatRequest, id: String, choices: [[String]], seeds: [String], context: MockRequestContext
    ) -> [MockResponse.Frame] {
        var prefix = ByteWriter(capacity: 160)
        prefix.writeStaticString("data: {\"id\":")
        prefix.writeJSONString(id)
        prefix.writeStaticString(",\"object\":\"chat.completion.chunk\",\"created\":")
        prefix.writeDecimal(context.unixTime)
        prefix.writeStaticString(",\"choices\":[{\"index\":")
        var model = ByteWriter(capacity: 64)
        model.writeStaticString(",\"model\":")
        model.writeJSONString(request.model)
        model.writeStaticString(",\"usage\":")

        var frames: [MockResponse.Frame] = []
        frames.reserveCapacity((request.completionTokensPerChoice + 1) * request.n + 1)
        func chunk(choice: Int, text: String, finish: String?, seed: String?, usage: Bool) {
            var frame = prefix
            frame.writeDecimal(choice)
            frame.writeStaticString(",\"text\":")
            frame.writeJSONString(text)
            frame.writeStaticString(",\"logprobs\":null,\"finish_reason\":")
            frame.writeJSONStringOrNull(finish)
            frame.writeStaticString(",\"seed\":")
            frame.writeString(seed ?? "null")
            frame.writeStaticString(",\"delta\":{\"token_id\":")
            frame.writeDecimal(finish == nil ? Self.tokenID(text) : Self.endOfTurnTokenID)
            frame.writeStaticString(",\"role\":\"assistant\",\"content\":")
            frame.writeJSONString(text)
            frame.writeStaticString("}}]")
            frame.writeBytes(model.bytes)
            if usage {
                writeUsage(request, to: &frame)
            } else {
                frame.writeStaticString("null")
            }
            frame.writeStaticString("}\n\n")
            frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: finish == nil))
        }
        for position in 0..<request.completionTokensPerChoice {
            for (choice, pieces) in choices.enumerated() where position < pieces.count {
                chunk(choice: choice, text: pieces[position], finish: nil, seed: nil, usage: false)
            }
        }
        for choice in choices.indices {
            chunk(
                choice: choice, text: "", finish: request.structured?[choice].finishReason ?? request.finishReason,
                seed: seeds[choice], usage: choice == choices.count - 1)
        }
        frames.append(MockResponse.Frame(bytes: Array("data: [DONE]\n\n".utf8), carriesToken: false))
        return frames
    }

    private func writeUsage(_ request: ChatRequest, to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"prompt_tokens\":")
        buffer.writeDecimal(request.digest.tokens)
        buffer.writeStaticString(",\"completion_tokens\":")
        buffer.writeDecimal(request.completionTokens)
        buffer.writeStaticString(",\"total_tokens\":")
        buffer.writeDecimal(request.digest.tokens + request.completionTokens)
        buffer.writeStaticString(",\"cached_tokens\":0}")
    }

    /// A made-up but stable token id for a piece of text.
    static func tokenID(_ text: String) -> Int {
        var hash = FNV1a()
        hash.combine(text)
        return Int(hash.value % 128_000)
    }

    /// The `token_id` of a choice's last, empty delta (Llama 3's end of turn).
    static let endOfTurnTokenID = 128_009

    // MARK: - Errors

    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let retryNanoseconds: Int64
        let report: RateLimiter.Report?
        let failure: OpenAIError
        let seconds = { (nanoseconds: Int64) in max(1, (nanoseconds + 999_999_999) / 1_000_000_000) }
        switch rejection {
        case .bucket(let rejection):
            retryNanoseconds = rejection.retryAfterNanoseconds
            report = rejection.report
            switch rejection.limit {
            case .requests:
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "You have exceeded your request rate limit for \(call.model) "
                        + "(\(rejection.report.requests?.limit ?? 0) requests). Please retry after "
                        + "\(seconds(retryNanoseconds)) seconds. See https://docs.together.ai/docs/rate-limits.",
                    type: "dynamic_request_limited")
            case .tokens:
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "You have exceeded your token rate limit for \(call.model) "
                        + "(\(rejection.report.tokens?.limit ?? 0) tokens; this request needs "
                        + "\(rejection.requested)). Please retry after \(seconds(retryNanoseconds)) seconds. See "
                        + "https://docs.together.ai/docs/rate-limits.",
                    type: "dynamic_token_limited")
            case .requestTooLarge:
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "This request needs \(rejection.requested) tokens, more than your token rate limit for "
                        + "\(call.model) (\(rejection.report.tokens?.limit ?? 0) tokens); it can never be served.",
                    type: "dynamic_token_limited")
            }
        case .concurrency(let limit, let retryAfter, let limiterReport):
            retryNanoseconds = retryAfter
            report = limiterReport
            failure = OpenAIError(
                status: .tooManyRequests,
                message:
                    "Too many concurrent requests for \(call.model): limit \(limit) in flight. Please retry after "
                    + "\(seconds(retryAfter)) seconds.",
                type: "dynamic_request_limited")
        }
        var response = error(failure, context: &context)
        if let report { Self.addRateLimitHeaders(report, to: &response.headers, reset: false) }
        if case .bucket(let rejection) = rejection, rejection.limit == .requestTooLarge {
            response.headers.append((name: "x-should-retry", value: "false"))
        } else {
            response.headers.append((name: "x-ratelimit-reset", value: String(seconds(retryNanoseconds))))
        }
        return response
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        error(Self.fault(fault), context: &context)
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        var frame = ByteWriter(capacity: 200)
        frame.writeStaticString("data: ")
        Self.write(Self.fault(.serverError), id: Self.makeID(context: &context), to: &frame)
        frame.writeStaticString("\n\n")
        return frame.bytes
    }

    private static func fault(_ fault: MockFault) -> OpenAIError {
        fault == .overloaded
            ? OpenAIError(
                status: .serviceUnavailable, message: "The model is overloaded. Please try again later.",
                type: "server_error")
            : OpenAIError(
                status: .internalServerError, message: "Internal server error. Please try again later.",
                type: "server_error")
    }

    private func error(_ failure: OpenAIError, context: inout MockRequestContext) -> MockResponse {
        let id = Self.makeID(context: &context)
        var body = ByteWriter(capacity: 320)
        Self.write(failure, id: id, to: &body)
        return MockResponse(
            status: failure.status, headers: baseHeaders(id: id, contentType: "application/json; charset=utf-8"),
            body: .full(body.bytes))
    }

    /// `{"id":…,"error":{…}}`: OpenAI's error object with Together's id beside it.
    private static func write(_ failure: OpenAIError, id: String, to buffer: inout ByteWriter) {
        var inner = ByteWriter(capacity: 256)
        failure.write(to: &inner)
        buffer.writeStaticString("{\"id\":")
        buffer.writeJSONString(id)
        buffer.writeStaticString(",")
        // `failure.write` gives `{"error":{…}}`; keep what follows its opening brace.
        buffer.writeBytes(inner.bytes.dropFirst())
    }

    // MARK: - Headers and ids

    private func baseHeaders(id: String, contentType: String) -> [(name: String, value: String)] {
        [(name: "content-type", value: contentType), (name: "x-request-id", value: id)]
    }

    /// `x-ratelimit-limit`/`-remaining`/`-reset` for requests and
    /// `x-tokenlimit-limit`/`-remaining` for tokens; `reset` false leaves the reset
    /// to the caller (a 429 sends the wait instead).
    static func addRateLimitHeaders(
        _ report: RateLimiter.Report, to headers: inout [(name: String, value: String)], reset: Bool = true
    ) {
        if let bucket = report.requests {
            headers.append((name: "x-ratelimit-limit", value: String(bucket.limit)))
            headers.append((name: "x-ratelimit-remaining", value: String(bucket.remaining)))
        }
        if let bucket = report.tokens {
            headers.append((name: "x-tokenlimit-limit", value: String(bucket.limit)))
            headers.append((name: "x-tokenlimit-remaining", value: String(bucket.remaining)))
        }
        if reset, let bucket = report.requests ?? report.tokens {
            let seconds = (bucket.resetNanoseconds + 999_999_999) / 1_000_000_000
            headers.append((name: "x-ratelimit-reset", value: String(seconds)))
        }
    }

    /// `ogzjdpL-6Ng1vN-9f391a08f8af75e1`: 7 and 6 base-62 digits, 16 hex digits.
    static func makeID(context: inout MockRequestContext) -> String {
        var id = ByteWriter(capacity: 32)
        Base62.write(7, from: &context.generator, to: &id)
        id.writeStaticString("-")
        Base62.write(6, from: &context.generator, to: &id)
        id.writeStaticString("-")
        id.writeHexadecimal(context.generator.next(), minimumDigits: 16)
        return String(decoding: id.bytes, as: UTF8.self)
    }
}
