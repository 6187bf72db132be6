import Foundation
import LLMQCore
import LLMQTransport
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

    @Test func identicalRequestsInFlightTogetherArePaidForOnce() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        // Slow answers, so the copies are all claimed while the first is in flight.
        let mock = try CallCommandTests.startMock(["--latency", "300ms"])
        defer { mock.process.terminate() }
        var lines = ""
        for index in 1...12 {
            let prompt = index % 3 == 0 ? "distinct \(index)" : "the same question"
            lines += #"{"custom_id":"r\#(index)","model":"gpt-4o-mini","prompt":"\#(prompt)"}"# + "\n"
        }
        try llmq.write("p.jsonl", lines)
        #expect(try llmq.run(["submit", "p.jsonl"]).status == 0)
        let environment = ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "sk-test"]
        let work = try llmq.run(["work", "--concurrency", "16"], environment: environment)
        #expect(work.status == 0, "\(work.stderr)")
        // 4 distinct prompts and 1 repeated 8 times: 5 requests reach the provider.
        let stats = try await BatchModeTests.stats(mock.url)
        #expect(stats["total_requests"]?.intValue == 5)
        let results = try llmq.read("jobs/p/results.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(results.count == 12 && results.allSatisfy { $0["status"] == .string("ok") })
        let same = results.filter { ($0["custom_id"]?.stringValue).map { Int($0.dropFirst())! % 3 != 0 } ?? false }
        #expect(Set(same.map { $0["text"] }).count == 1)
        let ledger = try llmq.read("jobs/p/ledger.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(ledger.filter { $0["mode"] == .string("cache") && $0["cost_usd"] == .number(0) }.count == 7)
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

        let work = ChildProcess(executableURL: LLMQBinary.url)
        work.arguments = ["work", "--concurrency", "4"]
        work.currentDirectoryURL = llmq.directory
        work.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        work.standardError = .nullDevice
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

/// What `llmq work` shows while it runs, and what other terminals see of it.
@Suite(.serialized) struct WorkProgressTests {
    @Test func offATerminalItPrintsAPlainProgressLineEveryInterval() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--latency", "300ms"])
        defer { mock.process.terminate() }
        let lines = (1...16).map { #"{"custom_id":"r\#($0)","model":"gpt-4o-mini","prompt":"p\#($0)"}"# }
        try llmq.write("p.jsonl", lines.joined(separator: "\n") + "\n")
        #expect(try llmq.run(["submit", "p.jsonl"]).status == 0)
        let work = try llmq.run(
            ["work", "--concurrency", "2", "--progress-interval", "0.5"],
            environment: ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"])
        #expect(work.status == 0, "\(work.stderr)")
        let progress = work.stderr.split(separator: "\n").filter { $0.hasPrefix("llmq work: ") }
        #expect(progress.count >= 2, "\(work.stderr)")
        #expect(progress.allSatisfy { $0.contains("/16 (") && $0.contains("req/s") && $0.contains("ETA") })
        // Not a terminal: no cursor movements.
        #expect(!work.stderr.contains("\u{1B}["))

        let quiet = try llmq.run(["work", "--quiet"], environment: ["OPENAI_BASE_URL": mock.url + "/v1"])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty, "\(quiet.stderr)")
    }

    @Test func anUnpricedModelIsAWarningAndNeverCountedAsFree() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock()
        defer { mock.process.terminate() }
        try llmq.write("p.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"hi"}"# + "\n")
        try llmq.write(
            "prices.csv",
            "model,provider,input,cached_input,cache_write,output,batch_discount\ngpt-4o,openai,2.5,1.25,0,10,0.5\n")
        #expect(try llmq.run(["submit", "p.jsonl", "--prices", "prices.csv"]).status == 0)
        let work = try llmq.run(
            ["work", "--prices", "prices.csv"],
            environment: ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"])
        #expect(work.status == 0, "\(work.stderr)")
        #expect(work.stderr.contains("warning: no price for gpt-4o-mini"), "\(work.stderr)")
        let line = try JSONParser.parse(
            try llmq.read("jobs/p/results.jsonl").trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(line["cost_usd"] == .null)
    }

    @Test func followKeepsWaitingAndStatusShowsTheWorkerFromAnotherProcess() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock()
        defer { mock.process.terminate() }
        try llmq.write("a.jsonl", #"{"custom_id":"a1","model":"gpt-4o-mini","prompt":"hi"}"# + "\n")
        #expect(try llmq.run(["submit", "a.jsonl"]).status == 0)

        let work = ChildProcess(executableURL: LLMQBinary.url)
        work.arguments = ["work", "--follow", "--quiet"]
        work.currentDirectoryURL = llmq.directory
        work.environment = ProcessInfo.processInfo.environment.merging([
            "OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k",
        ]) { _, new in new }
        work.standardError = .nullDevice
        try work.run()
        defer { if work.isRunning { work.terminate() } }

        /// Polls `llmq status --json` until `check` holds (or about 20 s pass).
        func waitFor(_ check: ([String: Any]) -> Bool) throws -> [String: Any] {
            var status: [String: Any] = [:]
            for _ in 0..<200 {
                status = try llmq.statusJSON()
                if check(status) { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return status
        }
        func done(_ status: [String: Any], _ job: String) -> Int {
            let jobs = status["jobs"] as? [[String: Any]] ?? []
            return jobs.first { $0["name"] as? String == job }?["done"] as? Int ?? 0
        }
        var status = try waitFor {
            let workers = $0["workers"] as? [[String: Any]] ?? []
            let stats = workers.first?["stats"] as? [String: Any]
            return done($0, "a") == 1 && stats?["succeeded"] as? Int == 1
        }
        #expect(done(status, "a") == 1)
        let worker = try #require((status["workers"] as? [[String: Any]])?.first)
        #expect(worker["pid"] as? Int == Int(work.processIdentifier))
        #expect(work.isRunning, "with --follow the worker waits for more")

        // A second submission is picked up by the waiting worker.
        try llmq.write("b.jsonl", #"{"custom_id":"b1","model":"gpt-4o-mini","prompt":"again"}"# + "\n")
        #expect(try llmq.run(["submit", "b.jsonl"]).status == 0)
        status = try waitFor { done($0, "b") == 1 }
        #expect(done(status, "b") == 1)
        let table = try llmq.run(["status"])
        #expect(table.stdout.contains("workers:") && table.stdout.contains("pid \(work.processIdentifier)"))

        kill(work.processIdentifier, SIGINT)
        work.waitUntilExit()
        #expect(work.terminationStatus == 0)
        #expect((try llmq.statusJSON()["workers"] as? [[String: Any]])?.isEmpty == true)
        #expect(try llmq.read("jobs/b/results.jsonl").split(separator: "\n").count == 1)
    }
}

/// Two `llmq work` processes on one queue: no errors, no request sent twice, each
/// custom_id once in results.jsonl.
@Suite(.serialized) struct SideBySideWorkersTests {
    @Test func twoWorkersShareAJobWithoutDoubleWork() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--latency", "20ms"])
        defer { mock.process.terminate() }
        let count = 1_500
        let lines = (1...count).map { #"{"custom_id":"r\#($0)","model":"gpt-4o-mini","prompt":"prompt \#($0)"}"# }
        try llmq.write("shared.jsonl", lines.joined(separator: "\n") + "\n")
        #expect(try llmq.run(["submit", "shared.jsonl"]).status == 0)

        let workers = (0..<2).map { _ in
            let work = ChildProcess(executableURL: LLMQBinary.url)
            work.arguments = ["work", "--concurrency", "16", "--no-cache", "--progress-interval", "0.2"]
            work.currentDirectoryURL = llmq.directory
            work.environment = ProcessInfo.processInfo.environment.merging([
                "OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k",
            ]) { _, new in new }
            work.standardError = .pipe(Pipe())
            return work
        }
        for work in workers { try work.run() }
        var reports: [String] = []
        for work in workers {
            let stderr = work.standardError.pipe?.fileHandleForReading.readDataToEndOfFile() ?? Data()
            work.waitUntilExit()
            reports.append(String(decoding: stderr, as: UTF8.self))
            #expect(work.terminationStatus == 0, "\(reports.last ?? "")")
        }
        // Both took part: each finished some of the requests.
        for report in reports {
            let done = report.split(separator: "\n").last { $0.hasPrefix("done: ") } ?? ""
            #expect(!done.hasPrefix("done: 0 ok"), "\(report)")
        }

        let results = try llmq.read("jobs/shared/results.jsonl").split(separator: "\n")
        let ids = try results.map { try JSONParser.parse(String($0))["custom_id"]?.stringValue ?? "" }
        #expect(ids.count == count)
        #expect(Set(ids).count == count)
        #expect(try llmq.read("jobs/shared/ledger.jsonl").split(separator: "\n").count == count)
        let response = try await CurlTransport().send(HTTPRequest(url: mock.url + "/_mock/stats"))
        #expect(try JSONParser.parse(response.body)["total_requests"]?.intValue == Int64(count))
    }
}
