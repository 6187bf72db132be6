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
