/// Tokens of one answer, in classes that are each billed at one price.
///
/// The classes are disjoint, whatever the provider reports: `inputTokens` counts only
/// uncached input, so the total input is the sum of the three input classes.
/// Reasoning (thought) tokens are billed as output and are included in
/// `outputTokens`; `reasoningTokens` says how many of them there were.
public struct Usage: Sendable, Equatable, Hashable {
    /// Input billed at the input price (not read from or written to a prompt cache).
    public var inputTokens: Int
    /// Input read from the provider's prompt cache.
    public var cachedInputTokens: Int
    /// Input written to the provider's prompt cache.
    public var cacheWriteTokens: Int
    /// The part of `cacheWriteTokens` cached for an hour (Anthropic's `ttl: "1h"`),
    /// which costs twice the input price rather than the 5-minute write price.
    public var cacheWriteOneHourTokens: Int
    /// Output, reasoning included.
    public var outputTokens: Int
    /// The part of `outputTokens` spent on reasoning.
    public var reasoningTokens: Int

    public init(
        inputTokens: Int = 0, cachedInputTokens: Int = 0, cacheWriteTokens: Int = 0, cacheWriteOneHourTokens: Int = 0,
        outputTokens: Int = 0, reasoningTokens: Int = 0
    ) {
        self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.cacheWriteOneHourTokens = cacheWriteOneHourTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
    }

    /// All input, cached or not.
    public var totalInputTokens: Int { inputTokens + cachedInputTokens + cacheWriteTokens }

    public var totalTokens: Int { totalInputTokens + outputTokens }

    /// From an OpenAI-shaped `usage` object (OpenAI, Together, vLLM, Ollama; also the
    /// OpenAI Batch API's `input_tokens`/`output_tokens` form). `cached_tokens` and
    /// `cache_write_tokens` are parts of `prompt_tokens`, so they are taken out of it;
    /// Together puts `cached_tokens` in `usage` itself rather than in the details.
    public static func openAI(_ usage: JSONValue) -> Usage {
        let prompt = usage["prompt_tokens"]?.intValue ?? usage["input_tokens"]?.intValue ?? 0
        let completion = usage["completion_tokens"]?.intValue ?? usage["output_tokens"]?.intValue ?? 0
        let promptDetails = usage["prompt_tokens_details"] ?? usage["input_tokens_details"]
        let completionDetails = usage["completion_tokens_details"] ?? usage["output_tokens_details"]
        let cached = promptDetails?["cached_tokens"]?.intValue ?? usage["cached_tokens"]?.intValue ?? 0
        let written = promptDetails?["cache_write_tokens"]?.intValue ?? 0
        return Usage(
            inputTokens: Int(max(0, prompt - cached - written)), cachedInputTokens: Int(cached),
            cacheWriteTokens: Int(written), outputTokens: Int(completion),
            reasoningTokens: Int(completionDetails?["reasoning_tokens"]?.intValue ?? 0))
    }

    /// From an Anthropic `usage` object, whose three input counts are already disjoint.
    /// `cache_creation.ephemeral_1h_input_tokens` is the one-hour part of the writes.
    public static func anthropic(_ usage: JSONValue) -> Usage {
        let oneHour = usage["cache_creation"]?["ephemeral_1h_input_tokens"]?.intValue ?? 0
        let fiveMinutes = usage["cache_creation"]?["ephemeral_5m_input_tokens"]?.intValue ?? 0
        let written = usage["cache_creation_input_tokens"]?.intValue ?? (oneHour + fiveMinutes)
        return Usage(
            inputTokens: Int(usage["input_tokens"]?.intValue ?? 0),
            cachedInputTokens: Int(usage["cache_read_input_tokens"]?.intValue ?? 0),
            cacheWriteTokens: Int(written), cacheWriteOneHourTokens: Int(min(oneHour, written)),
            outputTokens: Int(usage["output_tokens"]?.intValue ?? 0))
    }

    /// From a Gemini `usageMetadata` object. `promptTokenCount` includes the cached
    /// tokens; `candidatesTokenCount` excludes thoughts, which are billed as output.
    public static func gemini(_ metadata: JSONValue) -> Usage {
        let prompt = metadata["promptTokenCount"]?.intValue ?? 0
        let cached = metadata["cachedContentTokenCount"]?.intValue ?? 0
        let candidates = metadata["candidatesTokenCount"]?.intValue ?? 0
        let thoughts = metadata["thoughtsTokenCount"]?.intValue ?? 0
        let toolPrompt = metadata["toolUsePromptTokenCount"]?.intValue ?? 0
        return Usage(
            inputTokens: Int(max(0, prompt - cached + toolPrompt)), cachedInputTokens: Int(cached),
            outputTokens: Int(candidates + thoughts), reasoningTokens: Int(thoughts))
    }

    /// The usage as llmq writes it in results and the ledger. `cache_write_1h_tokens`
    /// (a part of `cache_write_tokens`) is written only when there are some.
    public var json: JSONValue {
        var object: JSONObject = [
            "input_tokens": .int(Int64(inputTokens)),
            "cached_input_tokens": .int(Int64(cachedInputTokens)),
            "cache_write_tokens": .int(Int64(cacheWriteTokens)),
            "output_tokens": .int(Int64(outputTokens)),
            "reasoning_tokens": .int(Int64(reasoningTokens)),
        ]
        if cacheWriteOneHourTokens > 0 { object["cache_write_1h_tokens"] = .int(Int64(cacheWriteOneHourTokens)) }
        return .object(object)
    }

    /// Reads what `json` wrote (usage stored before `cache_write_1h_tokens` existed
    /// reads as having none).
    public init?(json: JSONValue) {
        guard case .object = json else { return nil }
        self.init(
            inputTokens: Int(json["input_tokens"]?.intValue ?? 0),
            cachedInputTokens: Int(json["cached_input_tokens"]?.intValue ?? 0),
            cacheWriteTokens: Int(json["cache_write_tokens"]?.intValue ?? 0),
            cacheWriteOneHourTokens: Int(json["cache_write_1h_tokens"]?.intValue ?? 0),
            outputTokens: Int(json["output_tokens"]?.intValue ?? 0),
            reasoningTokens: Int(json["reasoning_tokens"]?.intValue ?? 0))
    }
}
