import Foundation
import LLMQCore
import LLMQProviders
import LLMQStore

extension ProviderRunner {
    /// Whether identical requests share one answer: with the cache in use (and there
    /// is one), a copy waits for the first and takes its answer from the cache
    /// instead of being sent.
    func sharesAnswers(useCache: Bool) -> Bool { useCache && cache != nil }

    /// The answer the response cache holds for `request`, counted as a hit, or nil.
    func cachedResult(_ request: SubmittedRequest, started: Double) throws -> RunResult? {
        guard let cache, let hit = try cache.lookup(request.cacheKey), let answer = try Self.answer(fromCached: hit)
        else { return nil }
        try cache.recordHits([(request.cacheKey, hit.costUSD)])
        return RunResult(
            answer: answer, provider: hit.provider, model: hit.model, costUSD: 0, cached: true, savedUSD: hit.costUSD,
            attempts: 0, latencyMilliseconds: Self.milliseconds() - started, firstTokenMilliseconds: nil)
    }

    /// Keeps a paid-for answer in the response cache (if there is one).
    func storeInCache(_ request: SubmittedRequest, answer: ProviderAnswer, costUSD: Double?) throws {
        guard let cache else { return }
        try cache.store(
            request.cacheKey,
            CachedResponse(
                provider: request.route.provider, model: request.route.model,
                response: CanonicalJSON.string(Self.cachedAnswer(answer)),
                usage: CanonicalJSON.string(answer.usage.json), costUSD: costUSD,
                createdAt: Int64(Date().timeIntervalSince1970 * 1000)))
    }
}
