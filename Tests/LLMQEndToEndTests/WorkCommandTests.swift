import Foundation
import LLMQCore
import Testing

/// `llmq submit` then `llmq work` against `llmq mock`, all as binaries.
@Suite(.serialized) struct WorkCommandTests {
    @Test func drainsTheBundledExampleIntoResultsAndLedgerOnce() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock()
        defer { mock.process.terminate() }
        let environment = [
            "OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": mock.url,
            "ANTHROPIC_API_KEY": "sk-ant", "GEMINI_BASE_URL": mock.url, "GEMINI_API_KEY": "g",
        ]
        try llmq.write("simple.jsonl", try SubmitStatusTests().example("simple.jsonl"))
        #expect(try llmq.run(["submit", "simple.jsonl", "--model", "gpt-4o-mini"]).status == 0)
        let work = try llmq.run(["work", "--concurrency", "4"], environment: environment)
        #expect(work.status == 0, "\(work.stderr)")
        #expect(work.stderr.contains("done: 6 ok"))

        let results = try llmq.read("jobs/simple/results.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(results.count == 6)
        #expect(Set(results.compactMap { $0["custom_id"]?.stringValue }).count == 6)
        #expect(results.allSatisfy { $0["status"] == .string("ok") && ($0["text"]?.stringValue?.isEmpty == false) })
        let ledger = try llmq.read("jobs/simple/ledger.jsonl").split(separator: "\n")
        #expect(ledger.count == 6)
        let status = try #require(try llmq.jobStatus("simple"))
        #expect(status["done"] as? Int == 6)
        #expect(status["queued"] as? Int == 0)

        // Nothing left: a second run does nothing and writes nothing twice.
        let again = try llmq.run(["work"], environment: environment)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try llmq.read("jobs/simple/results.jsonl").split(separator: "\n").count == 6)
    }

    @Test func requestsThatFailForGoodAreReportedAndExitThree() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--fault-500", "1"])
        defer { mock.process.terminate() }
        try llmq.write("p.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"hi"}"# + "\n")
        #expect(try llmq.run(["submit", "p.jsonl"]).status == 0)
        let work = try llmq.run(
            ["work", "--max-attempts", "1"], environment: ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"])
        #expect(work.status == 3)
        let line = try JSONParser.parse(
            try llmq.read("jobs/p/results.jsonl").trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(line["status"] == .string("failed"))
        #expect(line["error"]?["status"] == .int(500))
        let ledger = llmq.exists("jobs/p/ledger.jsonl") ? try llmq.read("jobs/p/ledger.jsonl") : ""
        #expect(ledger.isEmpty)
    }
}

/// Ctrl-C during `llmq work`: requests in flight finish, the rest stay queued, and a
/// second run finishes the job with every custom_id exactly once.
@Suite(.serialized) struct WorkShutdownTests {
    @Test func aFirstSignalLetsRequestsInFlightFinishAndLosesNothing() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--latency", "1s"])
        defer { mock.process.terminate() }
        let environment = ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"]
        let lines = (1...12).map { #"{"custom_id":"r\#($0)","model":"gpt-4o-mini","prompt":"p\#($0)"}"# }
        try llmq.write("ten.jsonl", lines.joined(separator: "\n") + "\n")
        #expect(try llmq.run(["submit", "ten.jsonl"]).status == 0)

        let work = Process()
        work.executableURL = LLMQBinary.url
        work.arguments = ["work", "--concurrency", "4"]
        work.currentDirectoryURL = llmq.directory
        work.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        work.standardError = FileHandle.nullDevice
        try work.run()
        // Signal once the first requests are in flight (the fake answers after 1 s).
        Thread.sleep(forTimeInterval: 0.4)
        kill(work.processIdentifier, SIGINT)
        work.waitUntilExit()
        #expect(work.terminationReason == .exit)
        #expect(work.terminationStatus == 0)
        let status = try #require(try llmq.jobStatus("ten"))
        #expect(status["running"] as? Int == 0)
        #expect((status["done"] as? Int ?? 0) + (status["queued"] as? Int ?? 0) == 12)
        #expect((status["queued"] as? Int ?? 0) > 0)

        let rest = try llmq.run(["work", "--concurrency", "12"], environment: environment)
        #expect(rest.status == 0, "\(rest.stderr)")
        let ids = try llmq.read("jobs/ten/results.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))["custom_id"]?.stringValue ?? ""
        }
        #expect(ids.count == 12)
        #expect(Set(ids).count == 12)
    }
}
