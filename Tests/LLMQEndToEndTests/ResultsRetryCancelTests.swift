import Foundation
import LLMQCore
import Testing

/// `llmq results`, `llmq retry` and `llmq cancel` through the built binary, with
/// `llmq work` against `llmq mock`.
@Suite(.serialized) struct ResultsRetryCancelTests {
    /// Eight requests whose input order differs from their custom_ids' order.
    static let ids = ["h", "c", "a", "f", "b", "g", "e", "d"]

    func submit(_ llmq: LLMQBinary, _ ids: [String] = Self.ids, file: String = "p.jsonl") throws {
        let lines = ids.map { #"{"custom_id":"\#($0)","model":"gpt-4o-mini","prompt":"question \#($0)"}"# }
        try llmq.write(file, lines.joined(separator: "\n") + "\n")
        let submit = try llmq.run(["submit", file, "--job", "p"])
        #expect(submit.status == 0, "\(submit.stderr)")
    }

    func lines(_ text: String) throws -> [JSONValue] {
        try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    @Test func resultsFollowInputOrderInBothFormatsAndRetryFinishesTheFailures() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try submit(llmq)

        // Half the calls fail with a 500; one attempt each, so they fail for good.
        // Calls go out one at a time, so the seed picks the same ones every run.
        let faulty = try CallCommandTests.startMock(["--fault-500", "0.5", "--seed", "3"])
        let work = try llmq.run(
            ["work", "--concurrency", "1", "--max-attempts", "1", "--raw", "--no-cache"],
            environment: ["OPENAI_BASE_URL": faulty.url + "/v1", "OPENAI_API_KEY": "k"])
        faulty.process.terminate()
        #expect(work.status == 3, "\(work.stderr)")
        let status = try #require(try llmq.jobStatus("p"))
        let failed = try #require(status["failed"] as? Int)
        #expect(failed > 0 && failed < 8)

        // llmq format: results.jsonl's own lines, one per request, in input order.
        let results = try llmq.run(["results", "p"])
        #expect(results.status == 0, "\(results.stderr)")
        let current = try lines(results.stdout)
        #expect(current.map { $0["custom_id"]?.stringValue ?? "" } == Self.ids)
        #expect(current.filter { $0["status"] == .string("failed") }.count == failed)
        let logged = Set(try llmq.read("jobs/p/results.jsonl").split(separator: "\n").map(String.init))
        #expect(Set(results.stdout.split(separator: "\n").map(String.init)) == logged)
        #expect(results.stderr.contains("p: wrote 8 results (\(8 - failed) ok, \(failed) failed)"))
        #expect(results.stderr.contains("\(failed) failed: llmq retry p queues them again"))

        // openai-batch format, written atomically to a file.
        let batch = try llmq.run(["results", "p", "--format", "openai-batch", "--out", "batch.jsonl"])
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.stdout.isEmpty)
        #expect(batch.stderr.contains("to batch.jsonl"))
        let batchLines = try lines(try llmq.read("batch.jsonl"))
        #expect(batchLines.map { $0["custom_id"]?.stringValue ?? "" } == Self.ids)
        for (line, own) in zip(batchLines, current) {
            #expect(line["id"]?.stringValue?.hasPrefix("batch_req_") == true)
            let response = try #require(line["response"])
            #expect(response["request_id"]?.stringValue?.hasPrefix("req_") == true)
            #expect(line["error"] == .null)
            if own["status"] == .string("ok") {
                #expect(response["status_code"] == .int(200))
                // --raw kept OpenAI's (the fake's) body: it is the body, unchanged.
                let raw = try JSONParser.parse(try #require(own["raw"]?.stringValue))
                #expect(response["body"] == raw)
                #expect(response["body"]?["object"] == .string("chat.completion"))
                #expect(response["body"]?["choices"]?.arrayValue?.first?["message"]?["content"] == own["text"])
            } else {
                #expect(response["status_code"] == .int(500))
                #expect(response["body"]?["error"]?["message"]?.stringValue?.isEmpty == false)
            }
        }
        let folder = try FileManager.default.contentsOfDirectory(atPath: llmq.directory.path)
        #expect(!folder.contains { $0.hasSuffix(".tmp") })

        // Retry, then work against a healthy fake: every request ends ok.
        let retry = try llmq.run(["retry", "p"])
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(retry.stdout.contains("job p: queued again \(failed) failed request"))
        #expect(try llmq.jobStatus("p")?["queued"] as? Int == failed)
        #expect(try llmq.jobStatus("p")?["failed"] as? Int == 0)
        let healthy = try CallCommandTests.startMock()
        defer { healthy.process.terminate() }
        let again = try llmq.run(
            ["work", "--no-cache"], environment: ["OPENAI_BASE_URL": healthy.url + "/v1", "OPENAI_API_KEY": "k"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("done: \(failed) ok"))

        let final = try llmq.run(["results", "p"])
        let finalLines = try lines(final.stdout)
        #expect(finalLines.map { $0["custom_id"]?.stringValue ?? "" } == Self.ids)
        #expect(finalLines.allSatisfy { $0["status"] == .string("ok") })
        #expect(final.stderr.contains("wrote 8 results (8 ok, 0 failed)"))
        // results.jsonl is an append-only log: a retried request has a second line.
        let log = try lines(try llmq.read("jobs/p/results.jsonl"))
        #expect(log.count == 8 + failed)
        var last: [String: JSONValue] = [:]
        for line in log { last[line["custom_id"]?.stringValue ?? ""] = line["status"] }
        #expect(last.values.allSatisfy { $0 == .string("ok") })

        // Retried answers have no raw body: a chat.completion is built from what llmq kept.
        let rebuilt = try lines(try llmq.run(["results", "p", "--format", "openai-batch"]).stdout)
        #expect(rebuilt.count == 8)
        for (line, own) in zip(rebuilt, finalLines) {
            let body = try #require(line["response"]?["body"])
            #expect(line["response"]?["status_code"] == .int(200))
            #expect(body["object"] == .string("chat.completion"))
            #expect(body["model"]?.stringValue?.hasPrefix("gpt-4o-mini") == true)
            let choice = try #require(body["choices"]?.arrayValue?.first)
            #expect(choice["message"]?["content"] == own["text"])
            #expect(choice["message"]?["role"] == .string("assistant"))
            #expect(choice["finish_reason"] == own["finish_reason"])
            #expect(body["usage"]?["completion_tokens"] == own["usage"]?["output_tokens"])
            #expect(body["usage"]?["total_tokens"]?.intValue ?? 0 > 0)
        }

        let nothing = try llmq.run(["retry", "p"])
        #expect(nothing.status == 0)
        #expect(nothing.stdout.contains("nothing to retry"))
    }

    @Test func cancelledRequestsAreNotSentNorWrittenUntilRetried() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let mock = try CallCommandTests.startMock()
        defer { mock.process.terminate() }
        let environment = ["OPENAI_BASE_URL": mock.url + "/v1", "OPENAI_API_KEY": "k"]
        try submit(llmq, ["a", "b", "c"])
        #expect(try llmq.run(["work"], environment: environment).status == 0)
        try submit(llmq, ["a", "b", "c", "d", "e"])

        let cancel = try llmq.run(["cancel", "p"])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(cancel.stdout.contains("job p: cancelled 2 queued requests"))
        let status = try #require(try llmq.jobStatus("p"))
        #expect(status["cancelled"] as? Int == 2)
        #expect(status["queued"] as? Int == 0)

        // Nothing left to send: work exits at once and sends nothing.
        let started = Date()
        let work = try llmq.run(["work"], environment: environment)
        #expect(work.status == 0, "\(work.stderr)")
        #expect(work.stderr.contains("done: 0 ok"))
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try llmq.jobStatus("p")?["cancelled"] as? Int == 2)

        let results = try llmq.run(["results", "p"])
        #expect(results.status == 0)
        #expect(try lines(results.stdout).map { $0["custom_id"]?.stringValue ?? "" } == ["a", "b", "c"])
        #expect(results.stderr.contains("left out 2 cancelled: llmq retry p --cancelled queues them again"))

        #expect(try llmq.run(["retry", "p"]).stdout.contains("nothing to retry"))
        let retry = try llmq.run(["retry", "p", "--cancelled"])
        #expect(retry.stdout.contains("queued again 0 failed and 2 cancelled requests"))
        #expect(try llmq.run(["work"], environment: environment).status == 0)
        let all = try llmq.run(["results", "p", "--format", "openai-batch"])
        #expect(try lines(all.stdout).map { $0["custom_id"]?.stringValue ?? "" } == ["a", "b", "c", "d", "e"])
        #expect(!all.stderr.contains("left out"))
    }

    @Test func unknownJobsBadFormatsAndUnfinishedRequestsAreExplained() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let noQueue = try llmq.run(["results", "p"])
        #expect(noQueue.status == 64)
        #expect(noQueue.stderr.contains("no job named \"p\": there is no queue in"))

        try submit(llmq, ["a", "b", "c"])
        let home = llmq.directory.appendingPathComponent("jobs").standardizedFileURL.path
        for command in ["results", "retry", "cancel"] {
            let unknown = try llmq.run([command, "nope"])
            #expect(unknown.status == 64)
            #expect(unknown.stderr.contains("no job named \"nope\" in \(home); jobs: p"), "\(unknown.stderr)")
        }
        let badFormat = try llmq.run(["results", "p", "--format", "csv"])
        #expect(badFormat.status == 64)
        #expect(badFormat.stderr.contains("openai-batch"))
        let badFolder = try llmq.run(["results", "p", "--out", "missing/out.jsonl"])
        #expect(badFolder.status == 64)
        #expect(badFolder.stderr.contains("there is no folder"))
        let theLog = try llmq.run(["results", "p", "--out", "jobs/p/results.jsonl"])
        #expect(theLog.status == 64)
        #expect(theLog.stderr.contains("is the file llmq work appends to"))

        // Nothing finished yet: an empty result, and why.
        let queued = try llmq.run(["results", "p", "--out", "out.jsonl"])
        #expect(queued.status == 0)
        #expect(try llmq.read("out.jsonl").isEmpty)
        #expect(queued.stderr.contains("wrote 0 results"))
        #expect(queued.stderr.contains("left out 3 still queued: run llmq work"))
    }
}
