import Foundation
import LLMQCore
import LLMQStore

/// The lines a finished request adds to its job's results.jsonl and ledger.jsonl.
public enum OutputLines {
    public static let results = "results.jsonl"
    public static let ledger = "ledger.jsonl"
    public static let files = [results, ledger]

    /// One results line for every finished request; one ledger line for every answer
    /// (paid for, or served from the cache).
    public static func lines(for request: FinishedRequest, prices: PriceTable?) -> JobExporter.Lines {
        let result = request.result.flatMap { try? JSONParser.parse($0) }
        let usage = request.usage.flatMap { try? JSONParser.parse($0) }.flatMap(Usage.init(json:)) ?? Usage()
        let line = resultLine(for: request, result: result, usage: usage)
        guard request.state == .done, let result else { return [results: [line]] }
        let cached = result["cached"] == .bool(true)
        let time = ISOTime.string(milliseconds: request.finishedAt)
        var entry: JSONObject = [
            "time": .string(time), "custom_id": .string(request.customID),
            "provider": .string(request.provider.rawValue), "model": .string(request.model),
            "mode": .string(cached ? "cache" : result["mode"]?.stringValue ?? "online"),
            "input_tokens": .int(Int64(usage.inputTokens)),
            "cached_input_tokens": .int(Int64(usage.cachedInputTokens)),
            "cache_write_tokens": .int(Int64(usage.cacheWriteTokens)),
            "output_tokens": .int(Int64(usage.outputTokens)),
            "reasoning_tokens": .int(Int64(usage.reasoningTokens)),
            "cost_usd": request.costUSD.map { .number(usd($0)) } ?? .null,
        ]
        if usage.cacheWriteOneHourTokens > 0 {
            entry["cache_write_1h_tokens"] = .int(Int64(usage.cacheWriteOneHourTokens))
        }
        let price = prices?.price(for: request.model)
        if let price {
            entry["price_input"] = .number(price.input)
            entry["price_cached_input"] = .number(price.cachedInput)
            entry["price_cache_write"] = .number(price.cacheWrite)
            entry["price_output"] = .number(price.output)
        }
        if let batchID = result["batch_id"] {
            entry["batch_id"] = batchID
            entry["batch_discount"] = price.map { .number($0.batchDiscount) } ?? .null
        }
        if cached { entry["saved_usd"] = result["saved_usd"]?.doubleValue.map { .number(usd($0)) } ?? .null }
        return [results: [line], ledger: [.object(entry)]]
    }

    /// The results.jsonl line of a finished request (`llmq results` writes the same).
    public static func resultLine(for request: FinishedRequest) -> JSONValue {
        resultLine(
            for: request, result: request.result.flatMap { try? JSONParser.parse($0) },
            usage: request.usage.flatMap { try? JSONParser.parse($0) }.flatMap(Usage.init(json:)) ?? Usage())
    }

    static func resultLine(for request: FinishedRequest, result: JSONValue?, usage: Usage) -> JSONValue {
        var line: JSONObject = [
            "custom_id": .string(request.customID), "status": .string(request.state == .done ? "ok" : "failed"),
            "model": .string(request.model), "provider": .string(request.provider.rawValue),
            "attempts": .int(Int64(request.attempt)),
        ]
        guard request.state == .done, let result else {
            line["error"] = request.error.flatMap { try? JSONParser.parse($0) } ?? .null
            return .object(line)
        }
        line["text"] = result["text"] ?? .string("")
        line["finish_reason"] = result["finish_reason"] ?? .null
        line["usage"] = usage.json
        line["cost_usd"] = request.costUSD.map { .number(usd($0)) } ?? .null
        line["cached"] = .bool(result["cached"] == .bool(true))
        line["latency_ms"] = result["latency_ms"] ?? .null
        if let batchID = result["batch_id"] { line["batch_id"] = batchID }
        if let raw = result["raw"] { line["raw"] = raw }
        return .object(line)
    }

    /// Dollars to 1e-10 (a hundred-millionth of a cent): tokens × price / 1e6 in
    /// binary floating point otherwise prints as 0.000012149999999999999.
    static func usd(_ amount: Double) -> Double {
        (amount * 1e10).rounded() / 1e10
    }
}
