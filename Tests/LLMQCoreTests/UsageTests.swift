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

    @Test func togetherCachedTokensAtTheTopOfUsageAreAPartOfPromptTokens() throws {
        let usage = Usage.openAI(
            try JSONParser.parse(
                #"{"prompt_tokens":120,"completion_tokens":16,"total_tokens":136,"cached_tokens":64}"#))
        #expect(usage == Usage(inputTokens: 56, cachedInputTokens: 64, outputTokens: 16))
        #expect(usage.totalInputTokens == 120)
        // OpenAI's details win when both are there.
        let both = Usage.openAI(
            try JSONParser.parse(
                #"{"prompt_tokens":120,"completion_tokens":1,"cached_tokens":64,"#
                    + #""prompt_tokens_details":{"cached_tokens":32}}"#))
        #expect(both.cachedInputTokens == 32)
    }

    @Test func anthropicOneHourCacheWritesArePartOfTheWrites() throws {
        let usage = Usage.anthropic(
            try JSONParser.parse(
                #"{"input_tokens":12,"output_tokens":6,"cache_creation_input_tokens":3072,"#
                    + #""cache_read_input_tokens":0,"#
                    + #""cache_creation":{"ephemeral_5m_input_tokens":1024,"ephemeral_1h_input_tokens":2048}}"#))
        #expect(
            usage == Usage(inputTokens: 12, cacheWriteTokens: 3072, cacheWriteOneHourTokens: 2048, outputTokens: 6))
        #expect(usage.totalInputTokens == 3084)
        // The breakdown alone gives the writes; a breakdown larger than the total is capped.
        let breakdownOnly = Usage.anthropic(
            try JSONParser.parse(#"{"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":2}}"#))
        #expect(breakdownOnly.cacheWriteTokens == 3)
        #expect(breakdownOnly.cacheWriteOneHourTokens == 2)
        let capped = Usage.anthropic(
            try JSONParser.parse(
                #"{"cache_creation_input_tokens":5,"cache_creation":{"ephemeral_1h_input_tokens":9}}"#))
        #expect(capped.cacheWriteOneHourTokens == 5)
    }

    @Test func oneHourCacheWritesCostTwiceTheInputPrice() {
        let price = ModelPrice(
            model: "claude-sonnet-4-5", provider: .anthropic, input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15,
            batchDiscount: 0.5)
        // 1M written for five minutes at 3.75, 1M for an hour at 2 × 3.
        let usage = Usage(cacheWriteTokens: 2_000_000, cacheWriteOneHourTokens: 1_000_000)
        #expect(abs(price.cost(of: usage) - 9.75) < 1e-9)
        #expect(abs(price.cost(of: usage, batch: true) - 4.875) < 1e-9)
        #expect(abs(price.cost(of: Usage(cacheWriteTokens: 1_000_000)) - 3.75) < 1e-9)
    }

    @Test func oneHourCacheWritesRoundTripAndOldUsageStillReads() throws {
        let usage = Usage(inputTokens: 1, cacheWriteTokens: 3, cacheWriteOneHourTokens: 2, outputTokens: 4)
        #expect(Usage(json: usage.json) == usage)
        #expect(
            CanonicalJSON.string(usage.json)
                == #"{"cache_write_1h_tokens":2,"cache_write_tokens":3,"cached_input_tokens":0,"input_tokens":1,"#
                + #""output_tokens":4,"reasoning_tokens":0}"#)
        // Stored before one-hour writes were counted: none, and priced as before.
        let old = try JSONParser.parse(
            #"{"cache_write_tokens":3,"cached_input_tokens":2,"input_tokens":1,"output_tokens":4,"reasoning_tokens":1}"#
        )
        #expect(
            Usage(json: old)
                == Usage(inputTokens: 1, cachedInputTokens: 2, cacheWriteTokens: 3, outputTokens: 4, reasoningTokens: 1)
        )
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
