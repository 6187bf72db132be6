import Foundation
import Testing

// Testable for the memberwise initialisers of `Route` and `ModelPrice`, which are internal.
@testable import LLMQCore

/// The request a valid line gives; records an issue and throws if the line is rejected.
private func request(
    _ line: String, number: Int = 1, parser: RequestParser = RequestParser(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> SubmittedRequest {
    switch parser.parse(line: line, number: number) {
    case .success(let request): return request
    case .failure(let problem):
        Issue.record("rejected: \(problem.locatedMessage)", sourceLocation: sourceLocation)
        throw problem
    }
}

/// The problem an invalid line gives, or nil if it was accepted.
private func problem(_ line: String, number: Int = 1, parser: RequestParser = RequestParser()) -> InputProblem? {
    if case .failure(let problem) = parser.parse(line: line, number: number) { return problem }
    return nil
}

@Suite struct RequestParserTests {
    // MARK: Both formats, one canonical request

    @Test func simpleAndBatchLinesMeaningTheSameGiveTheSameRequest() throws {
        let simple = try request(
            #"{"custom_id":"a","system":"S","prompt":"P","model":"gpt-4o-mini","max_tokens":5}"#)
        let batch = try request(
            #"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","#
                + #""messages":[{"role":"system","content":"S"},{"role":"user","content":"P"}],"max_completion_tokens":5}}"#
        )
        #expect(simple == batch)
        #expect(simple.canonicalText == batch.canonicalText)
        #expect(simple.cacheKey == batch.cacheKey)
        #expect(batch.maxTokens == 5)
        #expect(batch.route == Route(provider: .openai, model: "gpt-4o-mini", providerModel: "gpt-4o-mini"))
    }

    @Test func simpleMessagesAndPromptGiveTheSameRequest() throws {
        let prompt = try request(#"{"model":"gpt-4o","system":"Be terse.","prompt":"2+2?"}"#)
        let messages = try request(
            #"{"model":"gpt-4o","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"}]}"#
        )
        let systemAndMessages = try request(
            #"{"model":"gpt-4o","system":"Be terse.","messages":[{"role":"user","content":"2+2?"}]}"#)
        #expect(prompt.cacheKey == messages.cacheKey)
        #expect(prompt.cacheKey == systemAndMessages.cacheKey)
    }

    @Test(arguments: [
        #"{"prompt":"P","model":"gpt-4o-mini","temperature":0,"max_tokens":16,"stop":["x"]}"#,
        #"{ "stop" : [ "x" ] , "max_tokens" : 16.0 , "temperature" : 0.0 , "model" : "gpt-4o-mini" , "prompt" : "P" }"#,
        #"{"temperature":0e0,"prompt":"\u0050","max_tokens":1.6e1,"model":"gpt-4o-mini","stop":["\u0078"]}"#,
        "\t{\"model\":\"gpt-4o-mini\",\n\"prompt\":\"P\",\"max_tokens\":16,\"temperature\":-0,\"stop\":[\"x\"]}  ",
        #"{"custom_id":"other","metadata":{"team":"x"},"prompt":"P","model":"gpt-4o-mini","temperature":0,"max_tokens":16,"stop":["x"]}"#,
        #"{"custom_id":"b1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"P"}],"temperature":0,"max_completion_tokens":16,"stop":["x"],"stream":true,"stream_options":{"include_usage":true}}}"#,
    ])
    func spellingsOfOneRequestShareACacheKey(_ line: String) throws {
        let reference = try request(
            #"{"prompt":"P","model":"gpt-4o-mini","temperature":0,"max_tokens":16,"stop":["x"]}"#)
        let other = try request(line)
        #expect(other.canonicalText == reference.canonicalText)
        #expect(other.cacheKeyHex == reference.cacheKeyHex)
    }

    static let baseLine = #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0}"#

    @Test(arguments: [
        #"{"model":"gpt-4o","system":"S","prompt":"P","max_tokens":16,"temperature":0}"#,
        #"{"model":"claude-haiku-4-5","system":"S","prompt":"P","max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"Q","max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P ","max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"T","prompt":"P","max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","prompt":"P","max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","messages":[{"role":"developer","content":"S"},{"role":"user","content":"P"}],"max_tokens":16,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":17,"temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","temperature":0}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0.5}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0,"top_p":0.9}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0,"stop":"x"}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0,"seed":1}"#,
        #"{"model":"gpt-4o-mini","system":"S","prompt":"P","max_tokens":16,"temperature":0,"response_format":{"type":"json_object"}}"#,
        #"{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"S"},{"role":"user","content":"P"}],"max_tokens":16,"temperature":0,"logprobs":true}}"#,
    ])
    func anyChangeToTheRequestChangesTheCacheKey(_ line: String) throws {
        let base = try request(Self.baseLine)
        let changed = try request(line)
        #expect(changed.cacheKey != base.cacheKey)
        #expect(changed.canonicalText != base.canonicalText)
    }

    @Test func customIDAndMetadataDoNotChangeTheCacheKey() throws {
        let plain = try request(#"{"model":"gpt-4o","prompt":"P"}"#, number: 1)
        let tagged = try request(
            #"{"custom_id":"x-1","metadata":{"b":[1,2],"a":"z"},"model":"gpt-4o","prompt":"P"}"#, number: 9)
        #expect(plain.cacheKey == tagged.cacheKey)
        #expect(plain.customID == "line-1")
        #expect(tagged.customID == "x-1")
        #expect(plain.metadata == nil)
        #expect(tagged.metadata == Array(#"{"a":"z","b":[1,2]}"#.utf8))
    }

    // MARK: Models and defaults

    @Test func aliasesResolveBeforeTheKeyIsTaken() throws {
        let alias = try request(#"{"model":"haiku","prompt":"P"}"#)
        let full = try request(#"{"model":"claude-haiku-4-5","prompt":"P"}"#)
        #expect(
            alias.route == Route(provider: .anthropic, model: "claude-haiku-4-5", providerModel: "claude-haiku-4-5"))
        #expect(alias.cacheKey == full.cacheKey)
        #expect(alias.canonicalText.contains(#""model":"claude-haiku-4-5""#))
    }

    @Test func defaultModelAppliesToLinesWithoutOne() throws {
        let parser = RequestParser(defaultModel: "gpt-4o-mini")
        let defaulted = try request(#"{"prompt":"P"}"#, parser: parser)
        let explicit = try request(#"{"prompt":"P","model":"gpt-4o-mini"}"#)
        #expect(defaulted == explicit)

        let named = try request(#"{"prompt":"P","model":"gemini-2.5-pro"}"#, parser: parser)
        #expect(named.route.model == "gemini-2.5-pro")

        let batch = try request(
            #"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"P"}]}}"#,
            parser: parser)
        #expect(batch.cacheKey == explicit.cacheKey)

        let aliased = try request(#"{"prompt":"P"}"#, parser: RequestParser(defaultModel: "sonnet"))
        #expect(aliased.route.model == "claude-sonnet-4-5")
    }

    @Test(arguments: [1, 2, 42, 1_000_000])
    func defaultCustomIDIsTheLineNumber(_ number: Int) throws {
        let parsed = try request(#"{"model":"gpt-4o","prompt":"P"}"#, number: number)
        #expect(parsed.customID == "line-\(number)")
        #expect(RequestParser.defaultCustomID(line: number) == "line-\(number)")
    }

    @Test func keepsTheGivenCustomID() throws {
        #expect(try request(#"{"custom_id":"é 1","model":"gpt-4o","prompt":"P"}"#, number: 3).customID == "é 1")
        #expect(try request(#"{"custom_id":"a","model":"gpt-4o","prompt":"P"}"#, number: 3).customID == "a")
    }

    @Test func recordsMaxTokensAndAnInputEstimate() throws {
        // "S" + "abcd" is 5 bytes of text: (5 + 3) / 4 = 2, plus 4 for each of 2 messages.
        let parsed = try request(#"{"model":"gpt-4o","system":"S","prompt":"abcd","max_tokens":7}"#)
        #expect(parsed.maxTokens == 7)
        #expect(parsed.estimatedInputTokens == 10)
        let uncapped = try request(#"{"model":"gpt-4o","prompt":"abcd"}"#)
        #expect(uncapped.maxTokens == nil)
        #expect(uncapped.estimatedInputTokens == 5)
    }

    @Test func parsesTheExampleFiles() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples")
        for name in ["simple.jsonl", "openai-batch.jsonl"] {
            let text = try String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(!lines.isEmpty)
            for (index, line) in lines.enumerated() {
                #expect(throws: Never.self, "\(name) line \(index + 1)") {
                    try RequestParser(defaultModel: "gpt-4o-mini").parse(line: String(line), number: index + 1).get()
                }
            }
        }
    }

    // MARK: Fixed vectors

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var line: String
        var canonicalText: String
        var cacheKeyHex: String
        var route: Route
        var customID: String
        var estimatedInputTokens: Int
        var maxTokens: Int?
        var testDescription: String { name }
    }

    // Each hex was checked with `printf '%s' '<canonical text>' | sha256sum`.
    @Test(arguments: [
        Vector(
            name: "simple with system",
            line: #"{"system":"S","prompt":"P","model":"gpt-4o-mini","max_tokens":5}"#,
            canonicalText:
                #"{"max_tokens":5,"messages":[{"content":"S","role":"system"},{"content":"P","role":"user"}],"model":"gpt-4o-mini"}"#,
            cacheKeyHex: "d9f7e9c1abff80452ef19004075d7ce5edc8dc075e59ea24e1100cb85602f6da",
            route: Route(provider: .openai, model: "gpt-4o-mini", providerModel: "gpt-4o-mini"),
            customID: "line-3", estimatedInputTokens: 9, maxTokens: 5),
        Vector(
            name: "batch with alias, escapes and stream",
            line: #"{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"sonnet","#
                + #""messages":[{"role":"user","content":"Say \"hi\"/bye\n"}],"temperature":0.7,"stop":["\n\n"],"#
                + #""seed":42,"stream":true}}"#,
            canonicalText:
                #"{"messages":[{"content":"Say \"hi\"/bye\n","role":"user"}],"model":"claude-sonnet-4-5","seed":42,"stop":["\n\n"],"temperature":0.7}"#,
            cacheKeyHex: "6a156f267f697c299245f398c3aeff6935262de8a6cf43e447b6d3ccbcf14484",
            route: Route(provider: .anthropic, model: "claude-sonnet-4-5", providerModel: "claude-sonnet-4-5"),
            customID: "req-1", estimatedInputTokens: 8, maxTokens: nil),
        Vector(
            name: "content parts, non-ASCII and a routing prefix",
            line: #"{"model":"gemini/gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"text","#
                + #""text":"héllo 😀"}]}],"response_format":{"type":"json_object"},"top_p":1.0,"max_tokens":100}"#,
            canonicalText:
                #"{"max_tokens":100,"messages":[{"content":[{"text":"héllo 😀","type":"text"}],"role":"user"}],"model":"gemini/gemini-2.5-flash","response_format":{"type":"json_object"},"top_p":1}"#,
            cacheKeyHex: "f23168862842a52e6c7a0c4502bd55cf801a95bf9708936b98f99d19d4357786",
            route: Route(provider: .gemini, model: "gemini/gemini-2.5-flash", providerModel: "gemini-2.5-flash"),
            customID: "line-3", estimatedInputTokens: 7, maxTokens: 100),
    ])
    func fixedVector(_ vector: Vector) throws {
        let parsed = try request(vector.line, number: 3)
        #expect(parsed.canonicalText == vector.canonicalText)
        #expect(parsed.cacheKeyHex == vector.cacheKeyHex)
        #expect(parsed.cacheKeyHex == SHA256.hex(SHA256.hash(Array(vector.canonicalText.utf8))))
        #expect(parsed.route == vector.route)
        #expect(parsed.customID == vector.customID)
        #expect(parsed.estimatedInputTokens == vector.estimatedInputTokens)
        #expect(parsed.maxTokens == vector.maxTokens)
    }

    // MARK: Invalid lines

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var line: String
        var field: String?
        var column: Int?
        var customID: String?
        var message: String
        var testDescription: String { name }

        init(
            _ name: String, _ line: String, field: String?, column: Int? = nil, customID: String? = nil,
            _ message: String
        ) {
            self.name = name
            self.line = line
            self.field = field
            self.column = column
            self.customID = customID
            self.message = message
        }
    }

    static let batchHead = #"{"custom_id":"b","method":"POST","url":"/v1/chat/completions","#
    static let userMessages = #""messages":[{"role":"user","content":"P"}]"#

    static let invalidLines: [Invalid] = [
        // Not a JSON object
        Invalid(
            "not JSON", #"{"prompt": "x",}"#, field: nil, column: 16,
            "not valid JSON (unexpected '}' where an object key was expected)"),
        Invalid(
            "not JSON, column counted in characters", #"{"prompt":"é" x}"#, field: nil, column: 15,
            "not valid JSON (unexpected 'x' in an object"),
        Invalid(
            "not JSON, truncated", #"{"prompt":"x""#, field: nil, column: 14, "not valid JSON (unexpected end of input"),
        Invalid("duplicate key", #"{"prompt":"a","prompt":"b"}"#, field: nil, column: 15, #"duplicate key "prompt""#),
        Invalid("an array", "[1,2]", field: nil, "expected a JSON object, got an array"),
        Invalid("a string", #""prompt""#, field: nil, "expected a JSON object, got a string"),
        Invalid("null", "null", field: nil, "expected a JSON object, got null"),
        // Prompt and messages
        Invalid("no prompt or messages", #"{"model":"gpt-4o"}"#, field: nil, "no prompt"),
        Invalid(
            "both prompt and messages", #"{"model":"gpt-4o","prompt":"P","#.appending(userMessages + "}"),
            field: "prompt", #"give "prompt" or "messages", not both"#),
        Invalid("empty prompt", #"{"model":"gpt-4o","prompt":""}"#, field: "prompt", "the prompt is empty"),
        Invalid(
            "prompt not a string", #"{"model":"gpt-4o","prompt":5}"#, field: "prompt", "expected a string, got a number"
        ),
        Invalid(
            "system not a string", #"{"model":"gpt-4o","system":["S"],"prompt":"P"}"#, field: "system",
            "expected a string, got an array"),
        Invalid(
            "messages not an array", #"{"model":"gpt-4o","messages":"hi"}"#, field: "messages",
            "expected an array of messages, got a string"),
        Invalid("messages empty", #"{"model":"gpt-4o","messages":[]}"#, field: "messages", "is empty"),
        Invalid(
            "message not an object", #"{"model":"gpt-4o","messages":["hi"]}"#, field: "messages[0]",
            "expected a message object, got a string"),
        Invalid(
            "message role unknown",
            #"{"model":"gpt-4o","messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]}"#,
            field: "messages[1].role", #"unknown role "robot""#),
        Invalid(
            "message role missing", #"{"model":"gpt-4o","messages":[{"content":"a"}]}"#, field: "messages[0].role",
            "expected one of assistant, developer, system, tool, user"),
        Invalid(
            "message content missing", #"{"model":"gpt-4o","messages":[{"role":"user"}]}"#,
            field: "messages[0].content", "missing: a user message needs content"),
        Invalid(
            "message content a number", #"{"model":"gpt-4o","messages":[{"role":"user","content":1}]}"#,
            field: "messages[0].content", "expected a string or an array of parts, got a number"),
        Invalid(
            "message content an empty array", #"{"model":"gpt-4o","messages":[{"role":"user","content":[]}]}"#,
            field: "messages[0].content", "is an empty array"),
        Invalid(
            "content part without a type",
            #"{"model":"gpt-4o","messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
            field: "messages[0].content[0]", "expected a content part"),
        Invalid(
            "only system messages", #"{"model":"gpt-4o","messages":[{"role":"system","content":"S"}]}"#,
            field: "messages", "has only system messages"),
        // Generation parameters
        Invalid(
            "temperature as a string", #"{"model":"gpt-4o","prompt":"P","temperature":"0.5"}"#, field: "temperature",
            #"expected a number from 0 to 2, got "0.5""#),
        Invalid(
            "temperature too high", #"{"model":"gpt-4o","prompt":"P","temperature":2.5}"#, field: "temperature",
            "expected a number from 0 to 2, got 2.5"),
        Invalid(
            "max_tokens 0", #"{"model":"gpt-4o","prompt":"P","max_tokens":0}"#, field: "max_tokens",
            "expected a whole number of at least 1, got 0"),
        Invalid(
            "max_tokens 1.5", #"{"model":"gpt-4o","prompt":"P","max_tokens":1.5}"#, field: "max_tokens",
            "expected a whole number of at least 1, got 1.5"),
        Invalid(
            "max_tokens beyond 32 bits", #"{"model":"gpt-4o","prompt":"P","max_tokens":2147483648}"#,
            field: "max_tokens", "expected a whole number of at least 1, got 2147483648"),
        Invalid(
            "max_tokens as a string", #"{"model":"gpt-4o","prompt":"P","max_tokens":"5"}"#, field: "max_tokens",
            #"got "5""#),
        Invalid(
            "seed 1.5", #"{"model":"gpt-4o","prompt":"P","seed":1.5}"#, field: "seed",
            "expected a whole number, got 1.5"),
        Invalid(
            "stop with 5 items", #"{"model":"gpt-4o","prompt":"P","stop":["a","b","c","d","e"]}"#, field: "stop",
            "expected a string or an array of up to 4 strings"),
        Invalid(
            "stop with a number", #"{"model":"gpt-4o","prompt":"P","stop":["a",1]}"#, field: "stop",
            "an array of up to 4 strings"),
        Invalid(
            "top_p 2", #"{"model":"gpt-4o","prompt":"P","top_p":2}"#, field: "top_p",
            "expected a number from 0 to 1, got 2"),
        Invalid(
            "top_p negative", #"{"model":"gpt-4o","prompt":"P","top_p":-0.1}"#, field: "top_p",
            "expected a number from 0 to 1, got -0.1"),
        Invalid(
            "response_format not an object", #"{"model":"gpt-4o","prompt":"P","response_format":"json"}"#,
            field: "response_format", "expected an object"),
        Invalid(
            "response_format unknown type", #"{"model":"gpt-4o","prompt":"P","response_format":{"type":"xml"}}"#,
            field: "response_format.type", #"expected "text", "json_object" or "json_schema""#),
        Invalid(
            "json_schema without a name",
            #"{"model":"gpt-4o","prompt":"P","response_format":{"type":"json_schema","json_schema":{"schema":{}}}}"#,
            field: "response_format.json_schema", #"expected an object with a "name""#),
        Invalid(
            "json_schema schema not an object",
            #"{"model":"gpt-4o","prompt":"P","response_format":{"type":"json_schema","json_schema":{"name":"n","schema":1}}}"#,
            field: "response_format.json_schema.schema", "expected an object (a JSON Schema)"),
        // Simple-format fields
        Invalid(
            "unknown field with a suggestion", #"{"model":"gpt-4o","prompt":"P","temprature":1}"#, field: "temprature",
            #"unknown field (did you mean "temperature"?); the simple format accepts custom_id, max_tokens"#),
        Invalid(
            "unknown field with a suggestion, other case", #"{"model":"gpt-4o","prompt":"P","Max_Token":1}"#,
            field: "Max_Token", #"(did you mean "max_tokens"?)"#),
        Invalid(
            "custom_id not a string", #"{"custom_id":5,"model":"gpt-4o","prompt":"P"}"#, field: "custom_id",
            "expected a string, got a number"),
        Invalid("custom_id empty", #"{"custom_id":"","model":"gpt-4o","prompt":"P"}"#, field: "custom_id", "is empty"),
        Invalid(
            "custom_id too long",
            #"{"custom_id":""#.appending(String(repeating: "x", count: 513) + #"","prompt":"P"}"#),
            field: "custom_id", "longer than 512 bytes"),
        Invalid(
            "metadata not an object", #"{"model":"gpt-4o","prompt":"P","metadata":[1]}"#, field: "metadata",
            "expected an object, got an array"),
        // Models
        Invalid(
            "model no provider serves", #"{"model":"llama-3-70b","prompt":"P"}"#, field: "model",
            #"no provider serves model "llama-3-70b": use a gpt-*"#),
        Invalid("model not a string", #"{"model":4,"prompt":"P"}"#, field: "model", "expected a string, got a number"),
        Invalid(
            "missing model with no default", #"{"prompt":"P"}"#, field: "model", customID: "line-7",
            #"missing: add "model" to the line or pass --model"#),
        // OpenAI Batch format
        Invalid(
            "batch: unknown top-level field",
            batchHead + #""body":{"model":"gpt-4o","# + userMessages + #"},"metadata":{}}"#, field: "metadata",
            customID: "b", "unknown field; an OpenAI Batch line has custom_id, method, url and body"),
        Invalid(
            "batch: no custom_id",
            #"{"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","# + userMessages + "}}",
            field: "custom_id", customID: nil, "missing: every OpenAI Batch line needs a custom_id"),
        Invalid(
            "batch: wrong method",
            #"{"custom_id":"b","method":"GET","url":"/v1/chat/completions","body":{"model":"gpt-4o","#
                + userMessages + "}}",
            field: "method", customID: "b", #"expected "POST""#),
        Invalid(
            "batch: no method",
            #"{"custom_id":"b","url":"/v1/chat/completions","body":{"model":"gpt-4o","# + userMessages + "}}",
            field: "method", #"expected "POST""#),
        Invalid(
            "batch: wrong url",
            #"{"custom_id":"b","method":"POST","url":"/v1/embeddings","body":{"model":"gpt-4o","# + userMessages
                + "}}",
            field: "url", customID: "b",
            #"llmq runs chat completions only: expected "/v1/chat/completions", got "/v1/embeddings""#),
        Invalid(
            "batch: url not a string",
            #"{"custom_id":"b","method":"POST","url":1,"body":{"model":"gpt-4o","# + userMessages + "}}", field: "url",
            #"expected "/v1/chat/completions""#),
        Invalid(
            "batch: no body", #"{"custom_id":"b","method":"POST","url":"/v1/chat/completions"}"#, field: "body",
            "missing: the request body"),
        Invalid(
            "batch: body not an object", batchHead + #""body":[]}"#, field: "body", "expected an object, got an array"),
        Invalid(
            "batch: both max_tokens and max_completion_tokens",
            batchHead + #""body":{"model":"gpt-4o","# + userMessages + #","max_tokens":5,"max_completion_tokens":5}}"#,
            field: "body.max_completion_tokens", customID: "b", "give max_tokens or max_completion_tokens, not both"),
        Invalid(
            "batch: no messages", batchHead + #""body":{"model":"gpt-4o","prompt":"P"}}"#, field: "body.messages",
            #"missing: a batch line's body needs "messages""#),
        Invalid(
            "batch: model no provider serves", batchHead + #""body":{"model":"mistral-large","# + userMessages + "}}",
            field: "body.model", customID: "b", #"no provider serves model "mistral-large""#),
        Invalid(
            "batch: missing model with no default", batchHead + #""body":{"# + userMessages + "}}",
            field: "body.model", customID: "b", "missing: add \"model\""),
        Invalid(
            "batch: temperature out of range",
            batchHead + #""body":{"model":"gpt-4o","temperature":3,"# + userMessages + "}}",
            field: "body.temperature", "expected a number from 0 to 2, got 3"),
        Invalid(
            "batch: message role unknown",
            batchHead + #""body":{"model":"gpt-4o","messages":[{"role":"bot","content":"x"}]}}"#,
            field: "body.messages[0].role", #"unknown role "bot""#),
    ]

    @Test(arguments: invalidLines)
    func rejectsInvalidLine(_ invalid: Invalid) throws {
        let found = try #require(problem(invalid.line, number: 7))
        #expect(found.line == 7)
        #expect(found.column == invalid.column)
        #expect(found.field == invalid.field)
        #expect(found.message.contains(invalid.message), "message: \(found.message)")
        if let customID = invalid.customID {
            #expect(found.customID == customID)
        }
    }

    @Test func unknownFieldFarFromAnyNameHasNoSuggestion() throws {
        let found = try #require(problem(#"{"model":"gpt-4o","prompt":"P","colour":"red"}"#))
        #expect(found.field == "colour")
        #expect(!found.message.contains("did you mean"))
        #expect(found.message.hasPrefix("unknown field; the simple format accepts "))
    }

    @Test func invalidUTF8IsReportedWithItsColumn() throws {
        var bytes = Array(#"{"model":"gpt-4o","prompt":"é"#.utf8)
        bytes.append(0xFF)
        bytes.append(contentsOf: Array(#""}"#.utf8))
        let result = bytes.withUnsafeBytes { RequestParser().parse(line: $0, number: 4) }
        guard case .failure(let found) = result else {
            Issue.record("accepted a line with invalid UTF-8")
            return
        }
        // The bad byte is at byte offset 30, after 29 characters ("é" is two bytes).
        #expect(found == InputProblem(line: 4, column: 30, message: "invalid UTF-8"))
    }

    @Test func problemsNeverQuoteMoreThanAShortCutOfAString() throws {
        let secret = String(repeating: "secret ", count: 10)
        let found = try #require(problem(#"{"model":"gpt-4o","prompt":"P","temperature":"\#(secret)"}"#))
        #expect(!found.message.contains(secret))
        #expect(found.message.contains("…"))
    }

    @Test func pathsCountTheCallersMessagesWhenASystemPromptIsAdded() throws {
        let line = #"{"system":"S","messages":[{"role":"bogus","content":"x"}],"model":"gpt-4o"}"#
        #expect(problem(line)?.field == "messages[0].role")
    }

    @Test func everyProblemOfALineWithoutCustomIDCarriesItsDefaultID() throws {
        #expect(problem(#"{"model":"gpt-4o"}"#, number: 7)?.customID == "line-7")
        #expect(problem(#"{"prompt":"x","temprature":1}"#, number: 8)?.customID == "line-8")
        #expect(problem(#"{"prompt":"x","model":"llama"}"#, number: 9)?.customID == "line-9")
    }

    @Test func locatedMessageNamesLineColumnAndField() {
        #expect(
            InputProblem(line: 12, column: 40, message: "not valid JSON").locatedMessage
                == "line 12, column 40: not valid JSON")
        #expect(
            InputProblem(line: 3, field: "body.temperature", message: "too hot").locatedMessage
                == #"line 3, field "body.temperature": too hot"#)
        #expect(InputProblem(line: 1, message: "x").locatedMessage == "line 1: x")
    }
}

// MARK: - Model routing

@Suite struct ModelRouterTests {
    struct RouteCase: Sendable, CustomTestStringConvertible {
        var name: String
        var route: Route
        var testDescription: String { name }

        init(_ name: String, _ provider: Provider, model: String? = nil, providerModel: String? = nil) {
            self.name = name
            let model = model ?? name
            route = Route(provider: provider, model: model, providerModel: providerModel ?? model)
        }
    }

    @Test(arguments: [
        RouteCase("gpt-4o-mini", .openai),
        RouteCase("gpt-5", .openai),
        RouteCase("o1", .openai),
        RouteCase("o1-preview", .openai),
        RouteCase("o3-mini", .openai),
        RouteCase("o4-mini", .openai),
        RouteCase("chatgpt-4o-latest", .openai),
        RouteCase("claude-sonnet-4-5", .anthropic),
        RouteCase("claude-3-5-haiku-latest", .anthropic),
        RouteCase("gemini-2.5-pro", .gemini),
        RouteCase("gemini/gemini-2.5-flash", .gemini, providerModel: "gemini-2.5-flash"),
        RouteCase("together_ai/meta-llama/Llama-3-8b", .together, providerModel: "meta-llama/Llama-3-8b"),
        RouteCase("openai/qwen2.5:7b", .openaiCompatible, providerModel: "qwen2.5:7b"),
        RouteCase("openai/gpt-4o", .openaiCompatible, providerModel: "gpt-4o"),
    ])
    func routesByPrefix(_ expected: RouteCase) {
        #expect(ModelRouter.route(expected.name) == expected.route)
    }

    @Test(arguments: [
        RouteCase("haiku", .anthropic, model: "claude-haiku-4-5"),
        RouteCase("sonnet", .anthropic, model: "claude-sonnet-4-5"),
        RouteCase("opus", .anthropic, model: "claude-opus-4-5"),
        RouteCase("flash", .gemini, model: "gemini-2.5-flash"),
        RouteCase("flash-lite", .gemini, model: "gemini-2.5-flash-lite"),
        RouteCase("gemini-pro", .gemini, model: "gemini-2.5-pro"),
        RouteCase("gpt-mini", .openai, model: "gpt-5-mini"),
        RouteCase("gpt-nano", .openai, model: "gpt-5-nano"),
    ])
    func routesAliases(_ expected: RouteCase) {
        #expect(ModelRouter.route(expected.name) == expected.route)
        #expect(ModelRouter.aliases[expected.name] == expected.route.model)
    }

    @Test func everyAliasIsTested() {
        #expect(ModelRouter.aliases.count == 8)
        for (alias, model) in ModelRouter.aliases {
            #expect(ModelRouter.route(alias)?.model == model)
            #expect(ModelRouter.servedModelsHint.contains(alias))
        }
    }

    @Test(arguments: [
        "", "llama-3", "mistral-large", "GPT-4o", "Claude-3", "openai/", "together_ai/", "gemini/", "gpt", "claude",
    ])
    func servesNoOtherModel(_ name: String) {
        #expect(ModelRouter.route(name) == nil)
    }
}

// MARK: - Prices

@Suite struct PriceTableTests {
    static let header = "model,provider,input,cached_input,cache_write,output,batch_discount"

    @Test func parsesTheShippedPriceFile() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("prices.csv")
        let table = try PriceTable(csv: String(contentsOf: url, encoding: .utf8))
        #expect(table.prices.count >= 30)
        #expect(
            table.price(for: "gpt-4o-mini")
                == ModelPrice(
                    model: "gpt-4o-mini", provider: .openai, input: 0.15, cachedInput: 0.075, cacheWrite: 0,
                    output: 0.60, batchDiscount: 0.5))
        #expect(
            table.price(for: "claude-haiku-4-5")
                == ModelPrice(
                    model: "claude-haiku-4-5", provider: .anthropic, input: 1.00, cachedInput: 0.10, cacheWrite: 1.25,
                    output: 5.00, batchDiscount: 0.5))
        #expect(table.price(for: "haiku") == table.price(for: "claude-haiku-4-5"))
        #expect(table.price(for: "gemini-pro")?.model == "gemini-2.5-pro")
        #expect(table.price(for: "llama-3") == nil)
        // Every priced model routes to the provider the file names, so a price is never
        // looked up under the wrong provider.
        for price in table.prices.values {
            #expect(ModelRouter.route(price.model)?.provider == price.provider, "\(price.model)")
        }
    }

    @Test func skipsCommentsAndBlankLinesAndTrimsFields() throws {
        let csv = """
            # a comment

            \(Self.header)
              # an indented comment
             gpt-4o , openai , 2.5 ,1.25, 0 ,10,0.5\t

            claude-opus-4-5,anthropic,5,0.5,6.25,25,0
            """
        let table = try PriceTable(csv: csv)
        #expect(table.prices.count == 2)
        #expect(
            table.price(for: "gpt-4o")
                == ModelPrice(
                    model: "gpt-4o", provider: .openai, input: 2.5, cachedInput: 1.25, cacheWrite: 0, output: 10,
                    batchDiscount: 0.5))
        #expect(table.price(for: "opus")?.batchDiscount == 0)
    }

    @Test func aDatedSnapshotIsPricedAsItsModel() {
        let price = ModelPrice(
            model: "gpt-4o", provider: .openai, input: 2.5, cachedInput: 1.25, cacheWrite: 0, output: 10,
            batchDiscount: 0.5)
        let claude = ModelPrice(
            model: "claude-sonnet-4-5", provider: .anthropic, input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15,
            batchDiscount: 0.5)
        let table = PriceTable(prices: [price, claude])
        #expect(table.price(for: "gpt-4o-2024-08-06") == price)
        #expect(table.price(for: "claude-sonnet-4-5-20250929") == claude)
        #expect(table.price(for: "gpt-4o-mini-2024-07-18") == nil)
        #expect(table.price(for: "gpt-4o-2024-8-6") == nil)
        #expect(table.price(for: "2024-08-06") == nil)
    }

    @Test func readsWindowsLineEndings() throws {
        let table = try PriceTable(csv: Self.header + "\r\ngpt-4o,openai,1,1,0,1,0.5\r\n")
        #expect(table.price(for: "gpt-4o")?.output == 1)
    }

    @Test func headerOnlyGivesAnEmptyTable() throws {
        #expect(try PriceTable(csv: Self.header + "\n").prices.isEmpty)
    }

    @Test func tableFromValues() {
        let price = ModelPrice(
            model: "gpt-5", provider: .openai, input: 1, cachedInput: 0.1, cacheWrite: 0, output: 8, batchDiscount: 0.5)
        let table = PriceTable(prices: [price])
        #expect(table.price(for: "gpt-5") == price)
        #expect(table.price(for: "gpt-4o") == nil)
    }

    struct BadCSV: Sendable, CustomTestStringConvertible {
        var name: String
        var csv: String
        var line: Int
        var message: String
        var testDescription: String { name }
    }

    @Test(arguments: [
        BadCSV(name: "empty file", csv: "", line: 1, message: "empty price file"),
        BadCSV(name: "only comments", csv: "# prices\n# none yet\n", line: 3, message: "empty price file"),
        BadCSV(
            name: "bad header", csv: "model,provider,input,output\ngpt-4o,openai,1,2\n", line: 1,
            message: "expected the header model,provider,input,cached_input,cache_write,output,batch_discount"),
        BadCSV(
            name: "bad header after comments",
            csv: "# prices\n\nname,provider,input,cached_input,cache_write,output,batch_discount\n",
            line: 3, message: "expected the header"),
        BadCSV(
            name: "too few fields", csv: header + "\ngpt-4o,openai,1,2,3\n", line: 2,
            message: "expected 7 fields, found 5"),
        BadCSV(
            name: "too many fields", csv: header + "\n# ok\ngpt-4o,openai,1,1,0,1,0.5,extra\n", line: 3,
            message: "expected 7 fields, found 8"),
        BadCSV(
            name: "negative price", csv: header + "\ngpt-4o,openai,-1,1,0,1,0.5\n", line: 2,
            message: #"input is not a non-negative number: "-1""#),
        BadCSV(
            name: "negative output price", csv: header + "\ngpt-4o,openai,1,1,0,-0.5,0.5\n", line: 2,
            message: #"output is not a non-negative number: "-0.5""#),
        BadCSV(
            name: "price not a number", csv: header + "\ngpt-4o,openai,1,cheap,0,1,0.5\n", line: 2,
            message: #"cached_input is not a non-negative number: "cheap""#),
        BadCSV(
            name: "empty price", csv: header + "\ngpt-4o,openai,1,1,,1,0.5\n", line: 2,
            message: #"cache_write is not a non-negative number: """#),
        BadCSV(
            name: "infinite price", csv: header + "\ngpt-4o,openai,inf,1,0,1,0.5\n", line: 2,
            message: #"input is not a non-negative number: "inf""#),
        BadCSV(
            name: "unknown provider", csv: header + "\ngpt-4o,openai,1,1,0,1,0.5\nmodel-x,azure,1,1,0,1,0.5\n", line: 3,
            message: #"unknown provider "azure""#),
        BadCSV(
            name: "batch discount above 1", csv: header + "\ngpt-4o,openai,1,1,0,1,1.5\n", line: 2,
            message: "batch_discount is a fraction from 0 to 1"),
    ])
    func rejectsBadCSV(_ bad: BadCSV) {
        let error = #expect(throws: PriceTable.ParseError.self) { try PriceTable(csv: bad.csv) }
        #expect(error?.line == bad.line)
        #expect(error?.message.contains(bad.message) == true, "message: \(error?.message ?? "none")")
        #expect(error?.description.hasPrefix("line \(bad.line): ") == true)
    }
}
