import Foundation
import LLMQCore
import Testing

/// Batch mode for a Together model through the built binary against `llmq mock`'s
/// Together batch API (under its `/together/v1` prefix, where the list of jobs is
/// Together's).
@Suite(.serialized) struct TogetherBatchModeTests {
    static let model = "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"

    static func environment(_ url: String) -> [String: String] {
        ["TOGETHER_BASE_URL": url + "/together/v1", "TOGETHER_API_KEY": "k"]
    }

    static func prompts(_ count: Int) -> String {
        (0..<count).map { index in
            #"{"custom_id":"q\#(index)","model":"\#(model)","prompt":"question number \#(index)"}"#
        }.joined(separator: "\n") + "\n"
    }

    @Test func aTogetherBatchJobRunsThroughTogethersBatchAPI() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "1"])
        defer { mock.process.terminate() }
        try llmq.write("p.jsonl", Self.prompts(10))
        let submitted = try llmq.run(["submit", "p.jsonl", "--batch"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(try llmq.jobStatus("p")?["mode"] as? String == "batch")

        let work = try llmq.run(
            ["work", "--poll-interval", "0.2", "--max-batch-requests", "4"], environment: Self.environment(mock.url))
        #expect(work.status == 0, "\(work.stderr)")
        #expect(!work.stderr.contains("sends it online"), "\(work.stderr)")
        try await BatchModeTests.checkExactlyOnce(llmq, count: 10, mockURL: mock.url)
        let ledger = try llmq.read("jobs/p/ledger.jsonl").split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(ledger.allSatisfy { $0["batch_id"]?.stringValue?.isEmpty == false }, "every line names its job")
        let stats = try await BatchModeTests.stats(mock.url)
        #expect(stats["batches_created_by_provider"]?["together"]?.intValue == 3)
        #expect(stats["files_uploaded"]?.intValue == 3)

        let batches = try llmq.statusJSON()["batches"] as? [[String: Any]] ?? []
        #expect(batches.count == 3)
        #expect(batches.allSatisfy { $0["state"] as? String == "collected" && $0["id"] is String })
        let kept = try FileManager.default.contentsOfDirectory(
            atPath: llmq.directory.appendingPathComponent("jobs/p/batches").path)
        #expect(kept.filter { $0.hasSuffix(".results.jsonl") }.count == 3)
    }

    @Test func killedJustAfterCreateTheJobIsFoundByItsFileNotCreatedAgain() async throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock(["--batch-seconds", "1"])
        defer { mock.process.terminate() }
        let count = 9
        try llmq.write("p.jsonl", Self.prompts(count))
        #expect(try llmq.run(["submit", "p.jsonl", "--batch"]).status == 0)
        let directory = llmq.directory
        let environment = Self.environment(mock.url)
        // Each run is killed after Together created a job and before llmq recorded
        // it (three jobs of three requests: the next run finds the one before).
        let (kills, status) = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: BatchModeTests.workThroughCrashes(
                        in: directory, environment: environment, randomKills: 0,
                        points: ["created:1", "created:1", "created:1"]))
            }.start()
        }
        #expect(status == 0)
        #expect(kills == 3)
        // Every job Together created is one llmq found again and collected.
        try await BatchModeTests.checkExactlyOnce(llmq, count: count, mockURL: mock.url)
        let stats = try await BatchModeTests.stats(mock.url)
        #expect(stats["batches_created_by_provider"]?["together"]?.intValue == 3)
    }
}
