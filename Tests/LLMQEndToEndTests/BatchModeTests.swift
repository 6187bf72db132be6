import Foundation
import LLMQCore
import LLMQTransport
import Testing

/// Batch mode through the built binary against `llmq mock`'s batch endpoints.
@Suite(.serialized) struct BatchModeTests {
    static func environment(_ url: String) -> [String: String] {
        [
            "OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "k", "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "k",
            "GEMINI_BASE_URL": url, "GEMINI_API_KEY": "k",
        ]
    }

    /// `count` requests spread over OpenAI, Anthropic and Gemini models.
    static func prompts(_ count: Int) -> String {
        (0..<count).map { index in
            let model = ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"][index % 3]
            return #"{"custom_id":"q\#(index)","model":"\#(model)","prompt":"question number \#(index)"}"#
        }.joined(separator: "\n") + "\n"
    }

    static func stats(_ url: String) async throws -> JSONValue {
        try JSONParser.parse(try await CurlTransport().send(HTTPRequest(url: url + "/_mock/stats")).body)
    }

    /// Every custom_id once in results and ledger, each with the answer the fake
    /// provider gives its prompt, and every batch the provider created in the ledger.
    static func checkExactlyOnce(_ llmq: LLMQBinary, count: Int, mockURL: String) async throws {
        let results = try llmq.read("jobs/p/results.jsonl").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(results.last == "")
        var seen: [String: String] = [:]
        for line in results.dropLast() {
            let object = try JSONParser.parse(String(line))
            let id = try #require(object["custom_id"]?.stringValue)
            #expect(seen[id] == nil, "\(id) written twice")
            #expect(object["status"] == .string("ok"), "\(line)")
            seen[id] = object["text"]?.stringValue
        }
        #expect(seen.count == count)
        for index in 0..<count {
            #expect(
                seen["q\(index)"] == CallCommandTests().expectedReply("question number \(index)"),
                "q\(index) has another request's answer")
        }
        let ledger = try llmq.read("jobs/p/ledger.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(ledger.count == count)
        #expect(Set(ledger.compactMap { $0["custom_id"]?.stringValue }) == Set(seen.keys))
        #expect(ledger.allSatisfy { $0["mode"] == .string("batch") })
        let batchIDs = Set(ledger.compactMap { $0["batch_id"]?.stringValue })
        let created = try await stats(mockURL)["batches_created"]?.intValue
        #expect(created == Int64(batchIDs.count), "a batch was created that no result came from")
    }

    @Test func aBatchJobRunsThroughEachProvidersBatchAPI() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "1"])
        defer { mock.process.terminate() }
        try llmq.write("p.jsonl", Self.prompts(30))
        let submitted = try llmq.run(["submit", "p.jsonl", "--batch"])
        #expect(submitted.status == 0 && submitted.stdout.contains("at batch prices"), "\(submitted.stdout)")
        #expect(try llmq.jobStatus("p")?["mode"] as? String == "batch")

        let work = try llmq.run(
            ["work", "--poll-interval", "0.2", "--max-batch-requests", "4"], environment: Self.environment(mock.url))
        #expect(work.status == 0, "\(work.stderr)")
        try await Self.checkExactlyOnce(llmq, count: 30, mockURL: mock.url)
        let stats = try await Self.stats(mock.url)
        #expect(stats["batches_created_by_provider"]?["anthropic"]?.intValue == 3)

        let status = try llmq.statusJSON()
        let batches = status["batches"] as? [[String: Any]] ?? []
        #expect(batches.count == 9)
        #expect(batches.allSatisfy { $0["state"] as? String == "collected" && $0["id"] is String })
        #expect(try llmq.run(["status"]).stdout.contains("batches: 0 in progress, 9 collected"))
        // Each batch's input file and results are kept for audit.
        let kept = try FileManager.default.contentsOfDirectory(
            atPath: llmq.directory.appendingPathComponent("jobs/p/batches").path)
        #expect(kept.filter { $0.hasSuffix(".results.jsonl") }.count == 9)
    }

    @Test func cancelStopsTheProvidersBatchesAndKeepsWhatFinished() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "600"])
        defer { mock.process.terminate() }
        try llmq.write("p.jsonl", Self.prompts(6))
        #expect(try llmq.run(["submit", "p.jsonl", "--batch"]).status == 0)
        let work = ChildProcess(executableURL: LLMQBinary.url)
        work.arguments = ["work", "--poll-interval", "0.2", "--quiet"]
        work.currentDirectoryURL = llmq.directory
        work.environment = ProcessInfo.processInfo.environment.merging(Self.environment(mock.url)) { _, new in new }
        try work.run()
        defer { if work.isRunning { work.terminate() } }
        for _ in 0..<200 {
            let batches = try llmq.statusJSON()["batches"] as? [[String: Any]] ?? []
            if batches.count == 3 && batches.allSatisfy({ $0["id"] != nil }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let cancelled = try llmq.run(["cancel", "p"], environment: Self.environment(mock.url))
        #expect(cancelled.status == 0, "\(cancelled.stderr)")
        #expect(cancelled.stdout.contains("cancelling 3 provider batches"), "\(cancelled.stdout)")
        work.waitUntilExit()
        #expect(work.terminationStatus == 0)
        let status = try #require(try llmq.jobStatus("p"))
        #expect(status["cancelled"] as? Int == 6)
        #expect(status["running"] as? Int == 0)
    }

    @Test func expiredBatchesGoIntoTheNextBatchOrOnlineWithTheFallback() async throws {
        for fallback in ["batch", "online"] {
            let llmq = try LLMQBinary()
            defer { llmq.cleanUp() }
            // Some batches expire with half their requests run (every one, with the
            // online fallback).
            let mock = try CallCommandTests.startMock(["--batch-expire", fallback == "online" ? "1" : "0.5"])
            defer { mock.process.terminate() }
            try llmq.write("p.jsonl", Self.prompts(8))
            #expect(try llmq.run(["submit", "p.jsonl", "--batch"]).status == 0)
            // An expiring batch runs half its requests: none, for a lone leftover, so
            // at the default 6 attempts a request failed once in ~64 runs when its
            // batches expired 6 times in a row. 20 attempts make that one in a million.
            let work = try llmq.run(
                ["work", "--poll-interval", "0.05", "--fallback", fallback, "--max-attempts", "20"],
                environment: Self.environment(mock.url))
            #expect(work.status == 0, "\(work.stderr)")
            let ledger = try llmq.read("jobs/p/ledger.jsonl").split(separator: "\n").map {
                try JSONParser.parse(String($0))
            }
            #expect(Set(ledger.compactMap { $0["custom_id"]?.stringValue }).count == 8)
            #expect(ledger.count == 8, "what an expired batch ran is paid once and kept")
            let online = ledger.filter { $0["mode"] == .string("online") }.count
            if fallback == "online" {
                #expect(online > 0)
                #expect(work.stderr.contains("sent online (--fallback online)"))
            } else {
                #expect(online == 0)
            }
            // Every batch created is one llmq recorded (an expired one may have
            // answered nothing, so the ledger need not name it).
            let recorded = try llmq.statusJSON()["batches"] as? [[String: Any]] ?? []
            #expect(try await Self.stats(mock.url)["batches_created"]?.intValue == Int64(recorded.count))
            #expect(Set(recorded.compactMap { $0["id"] as? String }).count == recorded.count)
        }
    }

    @Test func twoWorkersShareABatchJobWithoutCreatingAnyBatchTwice() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "0.5"])
        defer { mock.process.terminate() }
        let count = 60
        try llmq.write("p.jsonl", Self.prompts(count))
        #expect(try llmq.run(["submit", "p.jsonl", "--batch"]).status == 0)
        let workers = (0..<2).map { _ in
            let work = ChildProcess(executableURL: LLMQBinary.url)
            work.arguments = ["work", "--poll-interval", "0.05", "--max-batch-requests", "4", "--quiet"]
            work.currentDirectoryURL = llmq.directory
            work.environment = ProcessInfo.processInfo.environment.merging(Self.environment(mock.url)) { _, new in
                new
            }
            work.standardError = .pipe(Pipe())
            return work
        }
        for work in workers { try work.run() }
        for work in workers {
            let stderr = work.standardError.pipe?.fileHandleForReading.readDataToEndOfFile() ?? Data()
            work.waitUntilExit()
            #expect(work.terminationStatus == 0, "\(String(decoding: stderr, as: UTF8.self))")
        }
        try await Self.checkExactlyOnce(llmq, count: count, mockURL: mock.url)
        let recorded = try llmq.statusJSON()["batches"] as? [[String: Any]] ?? []
        #expect(Set(recorded.compactMap { $0["id"] as? String }).count == recorded.count)
        #expect(try await Self.stats(mock.url)["batches_created"]?.intValue == Int64(recorded.count))
    }

    /// Runs `llmq work` until it exits by itself, killing it with SIGKILL: at a
    /// random moment `randomKills` times, and at each named point (`LLMQ_CRASH_AT`)
    /// in turn. Returns the kills and the last exit status.
    static func workThroughCrashes(
        in directory: URL, environment: [String: String], randomKills: Int, points: [String]
    ) -> (kills: Int, status: Int32) {
        enum Kill { case at(String), random, none }
        var kills = 0
        var planned = points.map { Kill.at($0) } + Array(repeating: Kill.random, count: randomKills)
        while true {
            let next = planned.isEmpty ? Kill.none : planned.removeFirst()
            let work = ChildProcess(executableURL: LLMQBinary.url)
            // A kill during a create is looked for 0.3 s (the fake provider lists a
            // batch at once) before it is created again.
            work.arguments = [
                "work", "--poll-interval", "0.05", "--max-batch-requests", "3", "--create-settle", "0.3", "--quiet",
            ]
            work.currentDirectoryURL = directory
            var variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            if case .at(let name) = next { variables["LLMQ_CRASH_AT"] = name }
            work.environment = variables
            work.standardError = .nullDevice
            do { try work.run() } catch { return (kills, -1) }
            if case .random = next {
                Thread.sleep(forTimeInterval: Double.random(in: 0.02...0.4))
                if work.isRunning { kill(work.processIdentifier, SIGKILL) }
            }
            work.waitUntilExit()
            if work.terminationReason == .uncaughtSignal {
                kills += 1
                continue
            }
            // Ended by itself: done, unless crash points are still to be tried.
            if !planned.contains(where: { if case .at = $0 { true } else { false } }) {
                return (kills, work.terminationStatus)
            }
        }
    }

    @Test func killedDuringUploadCreatePollAndDownloadNothingIsCreatedOrWrittenTwice() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "1"])
        defer { mock.process.terminate() }
        let count = 120
        try llmq.write("p.jsonl", Self.prompts(count))
        #expect(try llmq.run(["submit", "p.jsonl", "--batch"]).status == 0)
        let directory = llmq.directory
        let environment = Self.environment(mock.url)
        // Each step of a batch's life, several times, then kills at random.
        let points = ["uploaded", "created", "polled", "downloaded", "collecting"].flatMap {
            ["\($0):1", "\($0):2", "\($0):3"]
        }
        let (kills, status) = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: Self.workThroughCrashes(
                        in: directory, environment: environment, randomKills: 10, points: points))
            }.start()
        }
        #expect(status == 0)
        #expect(kills >= 15, "the crash points were not all reached")
        try await Self.checkExactlyOnce(llmq, count: count, mockURL: mock.url)
    }
}
