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

        // The kills are timed on a thread of their own: a Task.sleep could oversleep
        // while other tests block the few threads of the cooperative pool, and the
        // job would finish before the kills land.
        let directory = llmq.directory
        let (kills, lastStatus) = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: Self.killRepeatedly(
                        in: directory, environment: environment, concurrency: concurrency, times: 10))
            }.start()
        }
        #expect(lastStatus == 0)
        #expect(kills >= 10, "a run ended by itself before it was killed")

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

    /// Starts `llmq work`, kills it with SIGKILL after a random 50-400 ms, `times`
    /// times, then lets a last run finish. Returns the kills and the last exit status.
    static func killRepeatedly(in directory: URL, environment: [String: String], concurrency: Int, times: Int)
        -> (Int, Int32)
    {
        var kills = 0
        while true {
            let work = ChildProcess(executableURL: LLMQBinary.url)
            work.arguments = ["work", "--concurrency", "\(concurrency)", "--quiet"]
            work.currentDirectoryURL = directory
            work.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            work.standardError = .nullDevice
            do { try work.run() } catch { return (kills, -1) }
            if kills < times {
                Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.4))
                if work.isRunning {
                    kill(work.processIdentifier, SIGKILL)
                    kills += 1
                }
                work.waitUntilExit()
                if work.terminationReason == .exit { return (kills, work.terminationStatus) }
            } else {
                work.waitUntilExit()
                return (kills, work.terminationStatus)
            }
        }
    }
}
