import Foundation
import LLMQCore
import LLMQTransport
import Testing

/// kill -9 at random moments, restart, and check that nothing was lost or written twice.
@Suite(.serialized) struct CrashTests {
    @Test func killedTenTimesEveryRequestIsWrittenExactlyOnce() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        // 2,000 requests at 32 in flight and ~75 ms each take ~5 s: longer than ten
        // kills at 50-400 ms, so every kill lands mid-job.
        let mock = try CallCommandTests.startMock(["--latency", "50ms", "--jitter", "50ms"])
        defer { mock.process.terminate() }
        let environment = ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"]
        let count = 2_000
        let concurrency = 32
        let lines = (1...count).map { #"{"custom_id":"r\#($0)","model":"gpt-4o-mini","prompt":"prompt \#($0)"}"# }
        try llmq.write("big.jsonl", lines.joined(separator: "\n") + "\n")
        #expect(try llmq.run(["submit", "big.jsonl"]).status == 0)

        var generator = SystemRandomNumberGenerator()
        var kills = 0
        var finished = false
        while !finished {
            let work = Process()
            work.executableURL = LLMQBinary.url
            work.arguments = ["work", "--concurrency", "\(concurrency)", "--quiet"]
            work.currentDirectoryURL = llmq.directory
            work.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            work.standardError = FileHandle.nullDevice
            try work.run()
            if kills < 10 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...400, using: &generator)))
                if work.isRunning {
                    kill(work.processIdentifier, SIGKILL)
                    kills += 1
                }
                work.waitUntilExit()
                finished = !work.isRunning && work.terminationReason == .exit
            } else {
                work.waitUntilExit()
                #expect(work.terminationStatus == 0)
                finished = true
            }
        }
        #expect(kills >= 10)

        let results = try llmq.read("jobs/big/results.jsonl").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(results.last == "")  // every line ends with a newline: none is torn
        var seen = Set<String>()
        var costs = 0.0
        for line in results.dropLast() {
            let object = try JSONParser.parse(String(line))
            let id = try #require(object["custom_id"]?.stringValue)
            #expect(seen.insert(id).inserted, "\(id) written twice")
            #expect(object["status"] == .string("ok"))
            costs += object["cost_usd"]?.doubleValue ?? 0
        }
        #expect(seen.count == count)
        let ledger = try llmq.read("jobs/big/ledger.jsonl").split(separator: "\n")
        #expect(ledger.count == count)
        let ledgerIDs = Set(try ledger.map { try JSONParser.parse(String($0))["custom_id"]?.stringValue ?? "" })
        #expect(ledgerIDs == seen)
        let status = try #require(try llmq.jobStatus("big"))
        #expect(status["done"] as? Int == count)

        // Requests sent more than once: at most what was in flight at the kills.
        let response = try await CurlTransport().send(HTTPRequest(url: mock.url + "/_mock/stats"))
        let stats = try JSONParser.parse(response.body)
        let sent = Int(stats["total_requests"]?.intValue ?? 0)
        #expect(sent >= count)
        #expect(sent - count <= kills * concurrency, "\(sent - count) requests sent twice")
    }
}
