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
    /// Output, reasoning included.
    public var outputTokens: Int
    /// The part of `outputTokens` spent on reasoning.
    public var reasoningTokens: Int

    public init(
        inputTokens: Int = 0, cachedInputTokens: Int = 0, cacheWriteTokens: Int = 0, outputTokens: Int = 0,
        reasoningTokens: Int = 0
    ) {
        self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.outputTokens = outputTokens
        self.reasoningTokens = reasoningTokens
    }

    /// All input, cached or not.
    public var totalInputTokens: Int { inputTokens + cachedInputTokens + cacheWriteTokens }

    public var totalTokens: Int { totalInputTokens + outputTokens }

    /// From an OpenAI-shaped `usage` object (OpenAI, Together, vLLM, Ollama; also the
    /// OpenAI Batch API's `input_tokens`/`output_tokens` form). `cached_tokens` and
    /// `cache_write_tokens` are parts of `prompt_tokens`, so they are taken out of it.
    public static func openAI(_ usage: JSONValue) -> Usage {
        let prompt = usage["prompt_tokens"]?.intValue ?? usage["input_tokens"]?.intValue ?? 0
        let completion = usage["completion_tokens"]?.intValue ?? usage["output_tokens"]?.intValue ?? 0
        let promptDetails = usage["prompt_tokens_details"] ?? usage["input_tokens_details"]
        let completionDetails = usage["completion_tokens_details"] ?? usage["output_tokens_details"]
        let cached = promptDetails?["cached_tokens"]?.intValue ?? 0
        let written = promptDetails?["cache_write_tokens"]?.intValue ?? 0
        return Usage(
            inputTokens: Int(max(0, prompt - cached - written)), cachedInputTokens: Int(cached),
            cacheWriteTokens: Int(written), outputTokens: Int(completion),
            reasoningTokens: Int(completionDetails?["reasoning_tokens"]?.intValue ?? 0))
    }

    /// From an Anthropic `usage` object, whose three input counts are already disjoint.
    public static func anthropic(_ usage: JSONValue) -> Usage {
        Usage(
            inputTokens: Int(usage["input_tokens"]?.intValue ?? 0),
            cachedInputTokens: Int(usage["cache_read_input_tokens"]?.intValue ?? 0),
            cacheWriteTokens: Int(usage["cache_creation_input_tokens"]?.intValue ?? 0),
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

    /// The usage as llmq writes it in results and the ledger.
    public var json: JSONValue {
        .object([
            "input_tokens": .int(Int64(inputTokens)),
            "cached_input_tokens": .int(Int64(cachedInputTokens)),
            "cache_write_tokens": .int(Int64(cacheWriteTokens)),
            "output_tokens": .int(Int64(outputTokens)),
            "reasoning_tokens": .int(Int64(reasoningTokens)),
        ])
    }

    /// Reads what `json` wrote.
    public init?(json: JSONValue) {
        guard case .object = json else { return nil }
        self.init(
            inputTokens: Int(json["input_tokens"]?.intValue ?? 0),
            cachedInputTokens: Int(json["cached_input_tokens"]?.intValue ?? 0),
            cacheWriteTokens: Int(json["cache_write_tokens"]?.intValue ?? 0),
            outputTokens: Int(json["output_tokens"]?.intValue ?? 0),
            reasoningTokens: Int(json["reasoning_tokens"]?.intValue ?? 0))
    }
}
