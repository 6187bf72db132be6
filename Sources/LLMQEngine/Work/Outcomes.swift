import LLMQCore
import LLMQProviders
import LLMQStore

/// What a worker stores for a request's outcome (the result and error JSON that
/// results.jsonl and ledger.jsonl are written from), and the figures it adds to a
/// run's summary. One place for online, cached and batch answers.
enum Outcomes {
    /// An answer: paid for online or in a batch, or served from the cache.
    static func answered(
        _ answer: ProviderAnswer, model: String, costUSD: Double?, cached: Bool, savedUSD: Double?,
        latencyMilliseconds: Double?, attempt: Int, raw: Bool, batchID: String? = nil
    ) -> (RequestOutcome, Worker.Summary) {
        var result: JSONObject = [
            "text": .string(answer.text), "cached": .bool(cached), "attempts": .int(Int64(attempt)),
        ]
        if let latencyMilliseconds { result["latency_ms"] = .int(Int64(latencyMilliseconds)) }
        if let reason = answer.finishReason { result["finish_reason"] = .string(reason) }
        if let savedUSD { result["saved_usd"] = .number(savedUSD) }
        if let batchID {
            result["mode"] = .string("batch")
            result["batch_id"] = .string(batchID)
        }
        if raw { result["raw"] = .string(String(decoding: answer.raw, as: UTF8.self)) }
        var summary = Worker.Summary()
        summary.succeeded = 1
        summary.cached = cached ? 1 : 0
        summary.costUSD = costUSD ?? 0
        summary.tokens = answer.usage.totalTokens
        if costUSD == nil {
            summary.unpriced = 1
            summary.unpricedModels = [model]
        }
        return (
            .succeeded(
                result: CanonicalJSON.string(.object(result)), usage: CanonicalJSON.string(answer.usage.json),
                costUSD: costUSD),
            summary
        )
    }

    /// A failure for good, with the provider's own message.
    static func failed(_ failure: ProviderFailure) -> (RequestOutcome, Worker.Summary) {
        var object: JSONObject = ["message": .string(failure.message)]
        if let type = failure.type { object["type"] = .string(type) }
        if let status = failure.status { object["status"] = .int(Int64(status)) }
        var summary = Worker.Summary()
        summary.failed = 1
        return (.failed(error: CanonicalJSON.string(.object(object))), summary)
    }
}
