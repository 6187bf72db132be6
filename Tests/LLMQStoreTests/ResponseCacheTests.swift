import Foundation
import LLMQCore
import LLMQStore
import Testing

@Suite struct ResponseCacheTests {
    func answer(_ text: String, cost: Double?) -> CachedResponse {
        CachedResponse(
            provider: .openai, model: "gpt-4o-mini", response: #"{"text":"\#(text)"}"#, usage: #"{"output_tokens":1}"#,
            costUSD: cost, createdAt: 1_000)
    }

    @Test func storesLooksUpCountsHitsAndClears() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("sub/cache.sqlite")
            let cache = try SQLiteResponseCache(url: url, now: { 5_000 })
            let key = CacheKey(of: Array("a".utf8))
            let other = CacheKey(of: Array("b".utf8))
            #expect(try cache.lookup(key) == nil)
            try cache.store(key, answer("first", cost: 0.5))
            try cache.store(key, answer("second", cost: 9))  // the first answer stays
            try cache.store(other, answer("other", cost: nil))
            #expect(try cache.lookup(key) == answer("first", cost: 0.5))
            #expect(try cache.lookup(other)?.costUSD == nil)
            try cache.recordHits([(key, 0.5), (key, 0.5), (other, nil)])
            var stats = try cache.stats()
            #expect(stats.entries == 2)
            #expect(stats.hits == 3)
            #expect(stats.savedUSD == 1.0)
            #expect(stats.bytes > 0)
            // A second handle on the same file sees the same answers.
            #expect(try SQLiteResponseCache(url: url).lookup(other)?.response == #"{"text":"other"}"#)
            #expect(try cache.clear() == 2)
            stats = try cache.stats()
            #expect(stats.entries == 0)
            #expect(try cache.lookup(key) == nil)
        }
    }

    @Test func locationComesFromTheOptionTheEnvironmentOrTheHome() {
        let home = QueueHome(url: URL(fileURLWithPath: "/tmp/h"))
        #expect(SQLiteResponseCache.url(option: "/x/c.sqlite", home: home, environment: [:]).path == "/x/c.sqlite")
        #expect(
            SQLiteResponseCache.url(option: nil, home: home, environment: ["LLMQ_CACHE": "/y/c.sqlite"]).path
                == "/y/c.sqlite")
        #expect(SQLiteResponseCache.url(option: nil, home: home, environment: [:]).path == "/tmp/h/cache.sqlite")
    }
}
