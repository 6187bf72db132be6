import LLMQCore
import Testing

@Suite struct UsageTests {
    @Test func openAICachedTokensAreAPartOfPromptTokens() throws {
        let usage = Usage.openAI(
            try JSONParser.parse(
                #"{"prompt_tokens":1117,"completion_tokens":6,"total_tokens":1123,"#
                    + #""prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"#
                    + #""completion_tokens_details":{"reasoning_tokens":2}}"#))
        #expect(usage == Usage(inputTokens: 93, cachedInputTokens: 1024, outputTokens: 6, reasoningTokens: 2))
        #expect(usage.totalInputTokens == 1117)
        #expect(usage.totalTokens == 1123)
    }

    @Test func openAIBatchUsageFormAndBareUsage() throws {
        let batch = Usage.openAI(
            try JSONParser.parse(
                #"{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},"output_tokens":7,"#
                    + #""output_tokens_details":{"reasoning_tokens":3},"total_tokens":57}"#))
        #expect(batch == Usage(inputTokens: 40, cachedInputTokens: 10, outputTokens: 7, reasoningTokens: 3))
        let bare = Usage.openAI(try JSONParser.parse(#"{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}"#))
        #expect(bare == Usage(inputTokens: 9, outputTokens: 1))
    }

    @Test func anthropicInputCountsAreDisjoint() throws {
        let usage = Usage.anthropic(
            try JSONParser.parse(
                #"{"input_tokens":12,"output_tokens":6,"cache_creation_input_tokens":2048,"#
                    + #""cache_read_input_tokens":100}"#))
        #expect(usage == Usage(inputTokens: 12, cachedInputTokens: 100, cacheWriteTokens: 2048, outputTokens: 6))
        #expect(usage.totalInputTokens == 2160)
    }

    @Test func geminiCachedTokensAreIncludedAndThoughtsAreOutput() throws {
        let usage = Usage.gemini(
            try JSONParser.parse(
                #"{"promptTokenCount":3000,"candidatesTokenCount":2,"thoughtsTokenCount":17,"#
                    + #""totalTokenCount":3019,"cachedContentTokenCount":2048}"#))
        #expect(usage == Usage(inputTokens: 952, cachedInputTokens: 2048, outputTokens: 19, reasoningTokens: 17))
        #expect(usage.totalTokens == 3019)
    }

    @Test func jsonRoundTrips() {
        let usage = Usage(
            inputTokens: 1, cachedInputTokens: 2, cacheWriteTokens: 3, outputTokens: 4, reasoningTokens: 1)
        #expect(Usage(json: usage.json) == usage)
        #expect(
            CanonicalJSON.string(usage.json)
                == #"{"cache_write_tokens":3,"cached_input_tokens":2,"input_tokens":1,"output_tokens":4,"reasoning_tokens":1}"#
        )
    }

    @Test func costIsEachClassAtItsPriceAndBatchTakesTheDiscount() {
        let price = ModelPrice(
            model: "claude-sonnet-4-5", provider: .anthropic, input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15,
            batchDiscount: 0.5)
        let usage = Usage(
            inputTokens: 1_000_000, cachedInputTokens: 1_000_000, cacheWriteTokens: 1_000_000, outputTokens: 1_000_000)
        #expect(abs(price.cost(of: usage) - 22.05) < 1e-9)
        #expect(abs(price.cost(of: usage, batch: true) - 11.025) < 1e-9)
        let table = PriceTable(prices: [price])
        #expect(table.cost(of: usage, model: "sonnet") == price.cost(of: usage))
        #expect(table.cost(of: usage, model: "gpt-4o") == nil)
    }
}
