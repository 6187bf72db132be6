import Foundation
import LLMQCore
import LLMQStore

/// A finished request as a line of an OpenAI Batch API output file, so tools made
/// for OpenAI's batch results read llmq's unchanged:
///
///     {"id":"batch_req_…","custom_id":"…","response":{"status_code":200,"request_id":"req_…",
///      "body":{…chat.completion…}},"error":null}
///
/// The body is OpenAI's own response when llmq kept it (`llmq work --raw`), else a
/// chat.completion built from the stored text, finish reason, usage and model. A
/// request that failed with an HTTP status keeps `response`, with that status and an
/// OpenAI error body; one that failed without a response (a timeout, a reset) has
/// `response: null` and `error: {code, message}`. The ids are derived from the job
/// and custom_id, so writing the file again gives the same bytes.
public enum OpenAIBatchLine {
    public static func line(for request: FinishedRequest, job: String) -> JSONValue {
        let ids = Ids(job: job, customID: request.customID)
        var line: JSONObject = [
            "id": .string(ids.batchRequest), "custom_id": .string(request.customID), "response": .null,
            "error": .null,
        ]
        let result = request.result.flatMap { try? JSONParser.parse($0) }
        if request.state == .done, let result {
            line["response"] = .object([
                "status_code": .int(200), "request_id": .string(ids.request),
                "body": providerBody(request, result: result) ?? builtBody(request, result: result, ids: ids),
            ])
            return .object(line)
        }
        let error = request.error.flatMap { try? JSONParser.parse($0) }
        let message = error?["message"]?.stringValue ?? "the request failed"
        let type = error?["type"]?.stringValue
        if let status = error?["status"]?.intValue, status >= 400 {
            line["response"] = .object([
                "status_code": .int(status), "request_id": .string(ids.request),
                "body": .object([
                    "error": .object([
                        "message": .string(message), "type": .string(type ?? "error"), "param": .null,
                        "code": type.map { .string($0) } ?? .null,
                    ])
                ]),
            ])
        } else {
            line["error"] = .object(["code": .string(type ?? "error"), "message": .string(message)])
        }
        return .object(line)
    }

    /// OpenAI's own chat.completion, when `--raw` kept it (a cache hit keeps llmq's
    /// record instead, which is not one).
    static func providerBody(_ request: FinishedRequest, result: JSONValue) -> JSONValue? {
        guard request.provider == .openai, let raw = result["raw"]?.stringValue,
            let body = try? JSONParser.parse(raw), body["object"]?.stringValue == "chat.completion",
            body["choices"]?.arrayValue != nil
        else { return nil }
        return body
    }

    /// A chat.completion with everything llmq kept: one choice, the usage in
    /// OpenAI's terms (prompt_tokens counts cached and cache-write tokens too).
    static func builtBody(_ request: FinishedRequest, result: JSONValue, ids: Ids) -> JSONValue {
        let usage = request.usage.flatMap { try? JSONParser.parse($0) }.flatMap(Usage.init(json:)) ?? Usage()
        var promptDetails: JSONObject = ["cached_tokens": .int(Int64(usage.cachedInputTokens))]
        if usage.cacheWriteTokens > 0 { promptDetails["cache_write_tokens"] = .int(Int64(usage.cacheWriteTokens)) }
        return .object([
            "id": .string(ids.completion), "object": .string("chat.completion"),
            "created": .int(request.finishedAt / 1000), "model": .string(request.model),
            "choices": .array([
                .object([
                    "index": .int(0),
                    "message": .object([
                        "role": .string("assistant"), "content": result["text"] ?? .string(""), "refusal": .null,
                    ]),
                    "logprobs": .null, "finish_reason": result["finish_reason"] ?? .null,
                ])
            ]),
            "usage": .object([
                "prompt_tokens": .int(Int64(usage.totalInputTokens)),
                "completion_tokens": .int(Int64(usage.outputTokens)),
                "total_tokens": .int(Int64(usage.totalTokens)),
                "prompt_tokens_details": .object(promptDetails),
                "completion_tokens_details": .object(["reasoning_tokens": .int(Int64(usage.reasoningTokens))]),
            ]),
        ])
    }

    /// Stable ids in OpenAI's forms, from the SHA-256 of the job and custom_id.
    struct Ids {
        var batchRequest: String
        var request: String
        var completion: String

        init(job: String, customID: String) {
            let name = Array("\u{0}\(job)\u{0}\(customID)".utf8)
            let digest = SHA256.hash(Array("llmq".utf8) + name)
            batchRequest = "batch_req_" + SHA256.hex(Array(digest[0..<16]))
            request = "req_" + SHA256.hex(Array(digest[16..<32]))
            completion = "chatcmpl-" + SHA256.hex(Array(SHA256.hash(Array("llmq-completion".utf8) + name)[0..<16]))
        }
    }
}
