import Foundation
import LLMQCore
import MockProvider
import Testing

/// `llmq call` through the built binary against `llmq mock`, also started as a binary.
@Suite(.serialized) struct CallCommandTests {
    /// Starts `llmq mock --port 0` and returns it with its address.
    static func startMock(_ flags: [String] = []) throws -> (process: ChildProcess, url: String) {
        let process = ChildProcess(executableURL: LLMQBinary.url)
        process.arguments = ["mock", "--port", "0"] + flags
        let output = Pipe()
        process.standardOutput = .pipe(output)
        process.standardError = .nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("listening on http://127.0.0.1:") else {
            process.terminate()
            throw LLMQBinary.Failure("llmq mock said: \(text)")
        }
        return (process, String(text.dropFirst("listening on ".count)))
    }

    func expectedReply(_ prompt: String, system: String? = nil) -> String {
        var messages: [MockReplies.Message] = []
        if let system { messages.append(MockReplies.Message(role: "system", content: system)) }
        messages.append(MockReplies.Message(role: "user", content: prompt))
        return MockReplies.text(for: messages)
    }

    @Test func answersThenServesTheSameRequestFromTheCache() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try Self.startMock()
        defer { mock.process.terminate() }
        let environment = ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "sk-test"]
        try llmq.write(
            "prices.csv",
            "model,provider,input,cached_input,cache_write,output,batch_discount\ngpt-4o-mini,openai,0.15,0.075,0,0.60,0.5\n"
        )

        let first = try llmq.run(
            ["call", "What is 2+2?", "--model", "gpt-4o-mini", "--system", "Be terse."], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout == expectedReply("What is 2+2?", system: "Be terse.") + "\n")
        #expect(first.stderr.contains("gpt-4o-mini via openai:"))
        #expect(first.stderr.contains("16 out tokens"))
        #expect(first.stderr.contains("$"))
        #expect(!first.stderr.contains("sk-test"))

        let again = try llmq.run(
            ["call", "What is 2+2?", "--model", "gpt-4o-mini", "--system", "Be terse.", "--json"],
            environment: environment)
        #expect(again.status == 0, "\(again.stderr)")
        let result = try JSONParser.parse(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result["cached"] == .bool(true))
        #expect(result["cost_usd"] == .int(0))
        #expect(result["text"]?.stringValue == expectedReply("What is 2+2?", system: "Be terse."))
        #expect((result["saved_usd"]?.doubleValue ?? 0) > 0)
    }

    @Test func streamsAndReportsTheFirstToken() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try Self.startMock(["--latency", "5ms"])
        defer { mock.process.terminate() }
        let streamed = try llmq.run(
            ["call", "Tell me a story", "--model", "gpt-4o-mini", "--stream", "--max-tokens", "5", "--no-cache"],
            environment: ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "sk-test"])
        #expect(streamed.status == 0, "\(streamed.stderr)")
        let words = expectedReply("Tell me a story").split(separator: " ").prefix(5).joined(separator: " ")
        #expect(streamed.stdout == words + "\n")
        #expect(streamed.stderr.contains("first token"))
        #expect(streamed.stderr.contains("5 out tokens"))
    }

    @Test func aMissingKeyOrAFailingProviderIsAClearError() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let noKey = try llmq.run(["call", "hi", "--model", "claude-haiku-4-5"], environment: ["ANTHROPIC_API_KEY": ""])
        #expect(noKey.status == 64)
        #expect(noKey.stderr.contains("no API key for anthropic: set ANTHROPIC_API_KEY"))

        let mock = try Self.startMock(["--fault-500", "1"])
        defer { mock.process.terminate() }
        let failing = try llmq.run(
            ["call", "hi", "--model", "gpt-4o-mini", "--no-cache", "--max-attempts", "2"],
            environment: ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "sk-test"])
        #expect(failing.status == 1)
        #expect(failing.stderr.contains("failed after 2 attempt(s)"))
        #expect(failing.stderr.contains("HTTP 500"))
    }
}
