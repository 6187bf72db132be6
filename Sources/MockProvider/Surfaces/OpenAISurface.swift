import LLMQCore
import NIOHTTP1

/// OpenAI's Chat Completions API (`POST /v1/chat/completions`, plus `GET /v1/models`)
/// as `PROVIDERS.md` §1 describes it: validation errors, 401/404, replies, SSE
/// streams, 429s with `x-ratelimit-*` headers, and OpenAI-shaped 500/503 bodies.
///
/// It is also the default surface: unrouted paths and oversized bodies get its
/// `Invalid URL` and 413 answers. Together shares its paths: a chat completion for a
/// model named `org/name` is handed to `TogetherSurface` (see there).
final class OpenAISurface: MockSurface {
    static let chatCompletions = 0
    static let models = 1

    let endpointNames = ["POST /v1/chat/completions", "GET /v1/models"]
    let configuration: MockProviderServer.Configuration
    let promptCache: PromptCache?
    /// Answers the chat completions of Together's models.
    let together: TogetherSurface

    init(configuration: MockProviderServer.Configuration, promptCache: PromptCache?) {
        self.configuration = configuration
        self.promptCache = promptCache
        together = TogetherSurface(configuration: configuration)
    }

    func match(method: HTTPMethod, path: Substring) -> Int? {
        switch (method, path) {
        case (.POST, "/v1/chat/completions"): return Self.chatCompletions
        case (.GET, "/v1/models"): return Self.models
        default: return nil
        }
    }

    func prepare(_ request: MockRequest, endpoint: Int, context: inout MockRequestContext) -> MockPreparation {
        let object = endpoint == Self.chatCompletions ? request.body.jsonObject() : nil
        if let model = object?["model"]?.stringValue, TogetherSurface.serves(model: model) {
            return together.prepare(request, object: object, context: &context)
        }
        if let failure = authenticate(request) { return .respond(error(failure, context: &context)) }
        switch endpoint {
        case Self.models: return .respond(modelList(context: &context))
        default: break
        }
        let parsed: ChatRequest
        switch ChatRequest.parse(object, configuration: configuration) {
        case .success(let request): parsed = request
        case .failure(let failure): return .respond(error(failure, context: &context))
        }
        if let models = configuration.models, !models.contains(parsed.model) {
            return .respond(
                error(
                    OpenAIError(
                        status: .notFound,
                        message: "The model `\(parsed.model)` does not exist or you do not have access to it.",
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
                }))
    }

    // MARK: - Authentication

    func authenticate(_ request: MockRequest) -> OpenAIError? {
        let key = Self.bearerToken(request.headers.first(name: "authorization") ?? "")
        if key.isEmpty {
            return OpenAIError(
                status: .unauthorized,
                message:
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    + "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
                    + "https://platform.openai.com/account/api-keys.",
                code: "invalid_api_key")
        }
        if let expected = configuration.apiKey, !key.utf8.elementsEqual(expected.utf8) {
            // The real API echoes a masked key; this one echoes none of it, so no log
            // or test output ever holds a piece of a key.
            return OpenAIError(
                status: .unauthorized,
                message:
                    "Incorrect API key provided. You can find your API key at "
                    + "https://platform.openai.com/account/api-keys.",
                code: "invalid_api_key")
        }
        return nil
    }

    /// The token of an `Authorization: Bearer TOKEN` value (scheme without case), or "".
    static func bearerToken(_ header: String) -> Substring {
        let utf8 = header.utf8
        var index = utf8.startIndex
        for expected in "bearer ".utf8 {
            guard index < utf8.endIndex, utf8[index] | 0x20 == expected | 0x20 else { return "" }
            index = utf8.index(after: index)
        }
        while index < utf8.endIndex, utf8[index] == UInt8(ascii: " ") { index = utf8.index(after: index) }
        return Substring(utf8[index...])
    }

    // MARK: - Successful answers

    private func render(_ request: ChatRequest, report: RateLimiter.Report?, context: inout MockRequestContext)
        -> MockResponse
    {
        var headers = baseHeaders(
            context: context, contentType: request.stream ? "text/event-stream" : "application/json")
        if let report { Self.addRateLimitHeaders(report, to: &headers) }
        let cached = promptCache?.cachedTokens(for: request.digest) ?? 0
        let fingerprint = Self.fingerprint(model: request.model)
        let usage = Usage(prompt: request.digest.tokens, completion: request.completionTokens, cached: cached)
        if request.stream {
            let choices = Self.pieces(request)
            headers.append((name: "cache-control", value: "no-cache"))
            let frames = streamFrames(
                request, fingerprint: fingerprint, choices: choices, usage: usage, context: &context)
            return MockResponse(status: .ok, headers: headers, body: .stream(frames))
        }
        var body = ByteWriter(capacity: 640 + request.n * request.completionTokensPerChoice * 9)
        body.writeStaticString("{\"id\":\"")
        context.writeID(prefix: "chatcmpl-", digits: 29, to: &body)
        body.writeStaticString("\",\"object\":\"chat.completion\",\"created\":")
        body.writeDecimal(context.unixTime)
        body.writeStaticString(",\"model\":")
        body.writeJSONString(request.model)
        body.writeStaticString(",\"choices\":[")
        for index in 0..<request.n {
            if index > 0 { body.writeStaticString(",") }
            body.writeStaticString("{\"index\":")
            body.writeDecimal(index)
            body.writeStaticString(",\"message\":{\"role\":\"assistant\",\"content\":")
            if let structured = request.structured {
                body.writeJSONString(structured[index].pieces.joined())
            } else {
                // Reply words are plain lowercase ASCII: nothing to escape.
                body.writeStaticString("\"")
                MockReplies.write(
                    digest: request.digest.hash, seed: request.seed, tokens: request.completionTokensPerChoice,
                    choice: index, to: &body)
                body.writeStaticString("\"")
            }
            body.writeStaticString(",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":")
            body.writeJSONString(request.structured?[index].finishReason ?? request.finishReason)
            body.writeStaticString("}")
        }
        body.writeStaticString("],\"usage\":")
        usage.write(to: &body)
        body.writeStaticString(",\"service_tier\":")
        body.writeJSONString(request.serviceTier)
        body.writeStaticString(",\"system_fingerprint\":")
        Self.writeFingerprint(fingerprint, to: &body)
        body.writeStaticString("}")
        return MockResponse(status: .ok, headers: headers, body: .full(body.bytes))
    }

    /// Each choice's reply as stream pieces: its words (each but the first after a
    /// space), or its structured pieces.
    static func pieces(_ request: ChatRequest) -> [[String]] {
        if let structured = request.structured { return structured.map(\.pieces) }
        return (0..<request.n).map { choice in
            MockReplies.words(
                digest: request.digest.hash, seed: request.seed, tokens: request.completionTokensPerChoice,
                choice: choice
            ).enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element }
        }
    }

    /// The SSE frames of a streamed answer: per choice a role delta, then one content
    /// delta per piece (choices interleaved), per choice a final empty delta with
    /// `finish_reason`, the usage chunk if asked for, and `[DONE]`.
    private func streamFrames(
        _ request: ChatRequest, fingerprint: UInt64, choices: [[String]], usage: Usage,
        context: inout MockRequestContext
    ) -> [MockResponse.Frame] {
        // Every chunk starts the same way; write that once and copy it.
        var prefix = ByteWriter(capacity: 320)
        prefix.writeStaticString("data: {\"id\":\"")
        context.writeID(prefix: "chatcmpl-", digits: 29, to: &prefix)
        prefix.writeStaticString("\",\"object\":\"chat.completion.chunk\",\"created\":")
        prefix.writeDecimal(context.unixTime)
        prefix.writeStaticString(",\"model\":")
        prefix.writeJSONString(request.model)
        prefix.writeStaticString(",\"service_tier\":")
        prefix.writeJSONString(request.serviceTier)
        prefix.writeStaticString(",\"system_fingerprint\":")
        Self.writeFingerprint(fingerprint, to: &prefix)
        prefix.writeStaticString(",\"choices\":[")

        var frames: [MockResponse.Frame] = []
        frames.reserveCapacity((request.completionTokensPerChoice + 2) * request.n + 2)
        func chunk(choice: Int, carriesToken: Bool, delta: (inout ByteWriter) -> Void, finish: String?) {
            var frame = prefix
            frame.writeStaticString("{\"index\":")
            frame.writeDecimal(choice)
            frame.writeStaticString(",\"delta\":")
            delta(&frame)
            frame.writeStaticString(",\"logprobs\":null,\"finish_reason\":")
            frame.writeJSONStringOrNull(finish)
            frame.writeStaticString("}]")
            if request.includeUsage { frame.writeStaticString(",\"usage\":null") }
            if request.includeObfuscation {
                frame.writeStaticString(",\"obfuscation\":")
                let length = Int(context.generator.next() % 12) + 1
                frame.writeJSONString(Base62.string(length, from: &context.generator))
            }
            frame.writeStaticString("}\n\n")
            frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: carriesToken))
        }
        for choice in choices.indices {
            chunk(
                choice: choice, carriesToken: false,
                delta: { $0.writeStaticString("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}") },
                finish: nil)
        }
        for position in 0..<request.completionTokensPerChoice {
            for (choice, pieces) in choices.enumerated() where position < pieces.count {
                chunk(
                    choice: choice, carriesToken: true,
                    delta: { frame in
                        frame.writeStaticString("{\"content\":")
                        frame.writeJSONString(pieces[position])
                        frame.writeStaticString("}")
                    }, finish: nil)
            }
        }
        for choice in choices.indices {
            chunk(
                choice: choice, carriesToken: false, delta: { $0.writeStaticString("{}") },
                finish: request.structured?[choice].finishReason ?? request.finishReason)
        }
        if request.includeUsage {
            var frame = prefix
            frame.writeStaticString("],\"usage\":")
            usage.write(to: &frame)
            frame.writeStaticString("}\n\n")
            frames.append(MockResponse.Frame(bytes: frame.bytes, carriesToken: false))
        }
        frames.append(MockResponse.Frame(bytes: Array("data: [DONE]\n\n".utf8), carriesToken: false))
        return frames
    }

    private func modelList(context: inout MockRequestContext) -> MockResponse {
        let names = configuration.models.map { $0.sorted() } ?? Self.listedModels
        var body = ByteWriter(capacity: 64 + names.count * 96)
        body.writeStaticString("{\"object\":\"list\",\"data\":[")
        for (index, name) in names.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            body.writeStaticString("{\"id\":")
            body.writeJSONString(name)
            body.writeStaticString(",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"llmq-mock\"}")
        }
        body.writeStaticString("]}")
        return MockResponse(status: .ok, headers: baseHeaders(context: context), body: .full(body.bytes))
    }

    /// Listed by `GET /v1/models` when every model name is served.
    static let listedModels = ["gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"]

    // MARK: - Errors

    func rateLimited(_ rejection: MockRejection, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let retryNanoseconds: Int64
        let report: RateLimiter.Report?
        let failure: OpenAIError
        let learnMore = "Visit https://platform.openai.com/account/rate-limits to learn more."
        switch rejection {
        case .bucket(let rejection):
            retryNanoseconds = rejection.retryAfterNanoseconds
            report = rejection.report
            let wait = GoDuration.string(nanoseconds: retryNanoseconds)
            switch rejection.limit {
            case .requests:
                let bucket = rejection.report.requests
                let limit = bucket?.limit ?? 0
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "Rate limit reached for \(call.model) in organization org-mock on requests per min (RPM): "
                        + "Limit \(limit), Used \(limit - (bucket?.remaining ?? 0)), Requested 1. "
                        + "Please try again in \(wait). \(learnMore)",
                    type: "requests", code: "rate_limit_exceeded")
            case .tokens:
                let bucket = rejection.report.tokens
                let limit = bucket?.limit ?? 0
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "Rate limit reached for \(call.model) in organization org-mock on tokens per min (TPM): "
                        + "Limit \(limit), Used \(limit - (bucket?.remaining ?? 0)), Requested \(rejection.requested). "
                        + "Please try again in \(wait). \(learnMore)",
                    type: "tokens", code: "rate_limit_exceeded")
            case .requestTooLarge:
                failure = OpenAIError(
                    status: .tooManyRequests,
                    message:
                        "Request too large for \(call.model) in organization org-mock on tokens per min (TPM): "
                        + "Limit \(rejection.report.tokens?.limit ?? 0), Requested \(rejection.requested). "
                        + "The input or output tokens must be reduced in order to run successfully. \(learnMore)",
                    type: "tokens", code: "rate_limit_exceeded")
            }
        case .concurrency(let limit, let retryAfter, let limiterReport):
            retryNanoseconds = retryAfter
            report = limiterReport
            failure = OpenAIError(
                status: .tooManyRequests,
                message:
                    "Too many concurrent requests for \(call.model) in organization org-mock: limit \(limit) in "
                    + "flight. Please try again in \(GoDuration.string(nanoseconds: retryAfter)). \(learnMore)",
                type: "requests", code: "rate_limit_exceeded")
        }
        var response = error(failure, context: &context)
        if let report { Self.addRateLimitHeaders(report, to: &response.headers) }
        if case .bucket(let rejection) = rejection, rejection.limit == .requestTooLarge {
            // Waiting cannot help; the SDK reads this header and gives up at once.
            response.headers.append((name: "x-should-retry", value: "false"))
        } else {
            let milliseconds = max(1, (retryNanoseconds + 999_999) / 1_000_000)
            response.headers.append((name: "retry-after", value: String(max(1, (milliseconds + 999) / 1000))))
            response.headers.append((name: "retry-after-ms", value: String(milliseconds)))
        }
        return response
    }

    func serverFault(_ fault: MockFault, call: MockCall, context: inout MockRequestContext) -> MockResponse {
        let failure =
            fault == .overloaded
            ? OpenAIError(
                status: .serviceUnavailable, message: "The engine is currently overloaded, please try again later.",
                type: "server_error", code: nil)
            : OpenAIError(
                status: .internalServerError,
                message: "The server had an error while processing your request. Sorry about that!",
                type: "server_error", code: nil)
        return error(failure, context: &context)
    }

    func streamErrorFrame(context: inout MockRequestContext) -> [UInt8] {
        var frame = ByteWriter(capacity: 200)
        frame.writeStaticString("data: ")
        OpenAIError(
            status: .internalServerError,
            message: "The server had an error while processing your request. Sorry about that!",
            type: "server_error", code: nil
        ).write(to: &frame)
        frame.writeStaticString("\n\n")
        return frame.bytes
    }

    /// `Invalid URL (POST /v1/nope)`, as the real API answers unknown paths.
    func notFound(_ request: MockRequest, context: inout MockRequestContext) -> MockResponse {
        error(
            OpenAIError(status: .notFound, message: "Invalid URL (\(request.method.rawValue) \(request.path))"),
            context: &context)
    }

    func payloadTooLarge(context: inout MockRequestContext) -> MockResponse {
        error(
            OpenAIError(
                status: .payloadTooLarge,
                message: "Request body too large: the limit is \(configuration.maximumBodyBytes) bytes."),
            context: &context)
    }

    func error(_ failure: OpenAIError, context: inout MockRequestContext) -> MockResponse {
        var body = ByteWriter(capacity: 256)
        failure.write(to: &body)
        return MockResponse(status: failure.status, headers: baseHeaders(context: context), body: .full(body.bytes))
    }

    // MARK: - Headers

    func baseHeaders(context: MockRequestContext, contentType: String = "application/json")
        -> [(name: String, value: String)]
    {
        [
            (name: "content-type", value: contentType), (name: "x-request-id", value: context.requestID),
            (name: "openai-version", value: "2020-10-01"),
        ]
    }

    static func addRateLimitHeaders(_ report: RateLimiter.Report, to headers: inout [(name: String, value: String)]) {
        for (suffix, bucket) in [("requests", report.requests), ("tokens", report.tokens)] {
            guard let bucket else { continue }
            headers.append((name: "x-ratelimit-limit-" + suffix, value: String(bucket.limit)))
            headers.append((name: "x-ratelimit-remaining-" + suffix, value: String(bucket.remaining)))
            headers.append(
                (
                    name: "x-ratelimit-reset-" + suffix,
                    value: GoDuration.string(nanoseconds: bucket.resetNanoseconds)
                ))
        }
    }

    /// A stable `system_fingerprint` per model, shaped like the real ones (`fp_` + 10 hex).
    static func fingerprint(model: String) -> UInt64 {
        var hash = FNV1a()
        hash.combine(model)
        return hash.value >> 24
    }

    static func writeFingerprint(_ fingerprint: UInt64, to buffer: inout ByteWriter) {
        buffer.writeStaticString("\"fp_")
        buffer.writeHexadecimal(fingerprint, minimumDigits: 10)
        buffer.writeStaticString("\"")
    }
}

/// `usage` of a chat completion.
private struct Usage {
    var prompt: Int
    var completion: Int
    var cached: Int

    func write(to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"prompt_tokens\":")
        buffer.writeDecimal(prompt)
        buffer.writeStaticString(",\"completion_tokens\":")
        buffer.writeDecimal(completion)
        buffer.writeStaticString(",\"total_tokens\":")
        buffer.writeDecimal(prompt + completion)
        buffer.writeStaticString(",\"prompt_tokens_details\":{\"cached_tokens\":")
        buffer.writeDecimal(cached)
        buffer.writeStaticString(
            ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
        )
    }
}

/// An OpenAI error answer: `{"error":{"message","type","param","code"}}`, all four
/// keys always present.
struct OpenAIError: Error {
    var status: HTTPResponseStatus
    var message: String
    var type = "invalid_request_error"
    var param: String?
    var code: String?

    init(
        status: HTTPResponseStatus = .badRequest, message: String, type: String = "invalid_request_error",
        param: String? = nil, code: String? = nil
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    func write(to buffer: inout ByteWriter) {
        buffer.writeStaticString("{\"error\":{\"message\":")
        buffer.writeJSONString(message)
        buffer.writeStaticString(",\"type\":")
        buffer.writeJSONString(type)
        buffer.writeStaticString(",\"param\":")
        buffer.writeJSONStringOrNull(param)
        buffer.writeStaticString(",\"code\":")
        buffer.writeJSONStringOrNull(code)
        buffer.writeStaticString("}}")
    }
}
