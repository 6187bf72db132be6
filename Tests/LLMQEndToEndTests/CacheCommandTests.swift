import Foundation
import Testing

/// `llmq cache stats` and `llmq cache clear` through the built binary.
@Suite struct CacheCommandTests {
    @Test func statsAndClearOnTheHomeCacheAndAnExplicitOne() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let stats = try llmq.run(["cache", "stats"])
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect(stats.stdout.contains("0 answers"))
        #expect(llmq.exists("jobs/cache.sqlite"))
        let json = try llmq.run(["cache", "stats", "--json"])
        #expect(json.stdout.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix(#"{"bytes":"#))
        #expect(json.stdout.contains(#""entries":0,"hits":0,"saved_usd":0}"#))
        let clear = try llmq.run(["cache", "clear", "--cache", "shared/c.sqlite"])
        #expect(clear.status == 0, "\(clear.stderr)")
        #expect(clear.stdout.contains("removed 0 cached answers"))
        #expect(llmq.exists("shared/c.sqlite"))
        #expect(try llmq.run(["cache", "stats"], environment: ["LLMQ_CACHE": "env.sqlite"]).status == 0)
        #expect(llmq.exists("env.sqlite"))
    }
}

/// `llmq prices` through the built binary.
@Suite struct PricesCommandTests {
    @Test func showsTheTableOneModelAndRefusesAnUnknownOne() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write(
            "p.csv",
            "model,provider,input,cached_input,cache_write,output,batch_discount\n"
                + "gpt-4o,openai,2.5,1.25,0,10,0.5\nclaude-haiku-4-5,anthropic,1,0.1,1.25,5,0.5\n")
        let table = try llmq.run(["prices", "--prices", "p.csv"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("claude-haiku-4-5"))
        #expect(table.stdout.contains("gpt-4o"))
        let one = try llmq.run(["prices", "haiku", "--json"], environment: ["LLMQ_PRICES": "p.csv"])
        #expect(
            one.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"{"prices":[{"batch_discount":0.5,"cache_write":1.25,"cached_input":0.1,"input":1,"model":"claude-haiku-4-5","output":5,"provider":"anthropic"}]}"#
        )
        let unknown = try llmq.run(["prices", "llama-3", "--prices", "p.csv"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no price for llama-3"))
        let missing = try llmq.run(["prices"])
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("no price table"))
    }
}
