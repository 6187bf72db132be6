import Foundation
import Testing

/// `llmq submit` and `llmq status` through the built binary, as a user runs them.
@Suite(.serialized)
struct SubmitStatusTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func example(_ name: String) throws -> String {
        try String(contentsOf: Self.repository.appendingPathComponent("examples/\(name)"), encoding: .utf8)
    }

    @Test func submitsBothExampleFormatsAndStatusCountsThem() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("simple.jsonl", try example("simple.jsonl"))
        try llmq.write("openai-batch.jsonl", try example("openai-batch.jsonl"))

        let first = try llmq.run(["submit", "simple.jsonl", "--model", "gpt-4o-mini"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("job simple: 6 added, 0 already present"))
        let second = try llmq.run(["submit", "openai-batch.jsonl", "--job", "batch"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("job batch: 3 added"))
        #expect(llmq.exists("jobs/queue.sqlite"))
        #expect(llmq.exists("jobs/simple"))

        let status = try llmq.statusJSON()
        let jobs = try #require(status["jobs"] as? [[String: Any]])
        #expect(jobs.map { $0["name"] as? String } == ["simple", "batch"])
        for (job, total) in zip(jobs, [6, 3]) {
            #expect(job["total"] as? Int == total)
            #expect(job["queued"] as? Int == total)
            for key in ["running", "done", "failed", "cancelled"] { #expect(job[key] as? Int == 0) }
            #expect(job["cost_usd"] as? Double == 0)
        }
        let one = try llmq.run(["status", "batch"])
        #expect(one.status == 0)
        #expect(one.stdout.contains("batch"))
        #expect(!one.stdout.contains("simple"))
    }

    @Test func resubmittingIsIdempotentAndNewIDsAreAdded() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("p.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"one"}"# + "\n")
        #expect(try llmq.run(["submit", "p.jsonl"]).status == 0)
        let again = try llmq.run(["submit", "p.jsonl"])
        #expect(again.status == 0)
        #expect(again.stdout.contains("nothing new"))
        // The same request in another key order and spacing is the same request.
        try llmq.write(
            "p.jsonl",
            #"{ "prompt": "one", "model": "gpt-4o-mini", "custom_id": "a" }"# + "\n"
                + #"{"custom_id":"b","model":"gpt-4o-mini","prompt":"two"}"# + "\n")
        let more = try llmq.run(["submit", "p.jsonl"])
        #expect(more.status == 0)
        #expect(more.stdout.contains("1 added, 1 already present"))
        #expect(try llmq.jobStatus("p")?["total"] as? Int == 2)
    }

    @Test func aChangedRequestIsAConflictUnlessReplaced() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("p.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"one"}"# + "\n")
        #expect(try llmq.run(["submit", "p.jsonl"]).status == 0)
        try llmq.write("p.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"one!"}"# + "\n")
        let conflict = try llmq.run(["submit", "p.jsonl"])
        #expect(conflict.status == 65)
        #expect(conflict.stderr.contains(#"p.jsonl: line 1, field "custom_id": custom_id "a" is already in job "p""#))
        #expect(conflict.stderr.contains("--replace"))
        let replaced = try llmq.run(["submit", "p.jsonl", "--replace"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(replaced.stdout.contains("1 replaced"))
        #expect(try llmq.jobStatus("p")?["queued"] as? Int == 1)
    }

    @Test func anInvalidFileIsRejectedWholeAndTheQueueIsUnchanged() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("good.jsonl", #"{"custom_id":"a","model":"gpt-4o-mini","prompt":"one"}"# + "\n")
        #expect(try llmq.run(["submit", "good.jsonl", "--job", "j"]).status == 0)
        let before = try llmq.run(["status", "--json"]).stdout

        var lines = [#"{"custom_id":"b","model":"gpt-4o-mini","prompt":"fine"}"#]
        lines.append(#"{"custom_id":"c","model":"gpt-4o-mini","prompt":"x","temprature":0.5}"#)
        lines.append(#"{"custom_id":"d","model":"gpt-4o-mini","prompt":"x"},"#)
        lines.append(#"{"custom_id":"b","model":"gpt-4o-mini","prompt":"again"}"#)
        try llmq.write("bad.jsonl", lines.joined(separator: "\n") + "\n")
        let result = try llmq.run(["submit", "bad.jsonl", "--job", "j"])
        #expect(result.status == 65)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("bad.jsonl was not submitted: 3 of 4 lines are invalid; the queue is unchanged"))
        #expect(
            result.stderr.contains(
                #"bad.jsonl: line 2, field "temprature": unknown field (did you mean "temperature"?)"#))
        #expect(
            result.stderr.contains(
                "bad.jsonl: line 3, column 53: not valid JSON (unexpected ',' after the end of the JSON value)"))
        #expect(
            result.stderr.contains(#"bad.jsonl: line 4, field "custom_id": custom_id "b" is already used on line 1"#))
        #expect(try llmq.run(["status", "--json"]).stdout == before)

        // A new job that is rejected leaves no trace at all.
        let fresh = try llmq.run(["submit", "bad.jsonl", "--job", "fresh"])
        #expect(fresh.status == 65)
        #expect(try llmq.jobStatus("fresh") == nil)
        #expect(!llmq.exists("jobs/fresh"))
    }

    @Test func manyProblemsAreListedUpToTwentyThenCounted() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let text = (1...25).map { _ in "not json" }.joined(separator: "\n")
        try llmq.write("bad.jsonl", text)
        let result = try llmq.run(["submit", "bad.jsonl"])
        #expect(result.status == 65)
        #expect(result.stderr.contains("bad.jsonl: line 20, column 1: not valid JSON"))
        #expect(!result.stderr.contains("line 21,"))
        #expect(result.stderr.contains("… and 5 more"))
    }

    @Test func skipInvalidEnqueuesTheRestAndWritesRejectedLines() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        var bytes = Array((#"{"custom_id":"ok","model":"haiku","prompt":"fine"}"# + "\n").utf8)
        bytes += Array(#"{"prompt":"caf"#.utf8) + [0xE9] + Array("\"}\n".utf8)  // Latin-1, not UTF-8
        bytes += Array((#"{"prompt":"no model here"}"# + "\n").utf8)
        try llmq.write("mixed.jsonl", bytes: bytes)
        let result = try llmq.run(["submit", "mixed.jsonl", "--skip-invalid"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("job mixed: 1 added, 0 already present, 0 replaced, 2 rejected"))
        #expect(result.stdout.contains("jobs/mixed/rejected.jsonl"))
        let rejected = try llmq.read("jobs/mixed/rejected.jsonl").split(separator: "\n")
        #expect(rejected.count == 2)
        let first = try #require(
            try JSONSerialization.jsonObject(with: Data(rejected[0].utf8)) as? [String: Any])
        #expect(first["line"] as? Int == 2)
        #expect((first["error"] as? String)?.contains("invalid UTF-8") == true)
        #expect(first["input_base64"] as? String != nil)
        let second = try #require(
            try JSONSerialization.jsonObject(with: Data(rejected[1].utf8)) as? [String: Any])
        #expect(second["line"] as? Int == 3)
        #expect(second["field"] as? String == "model")
        #expect(second["input"] as? String == #"{"prompt":"no model here"}"#)
        #expect(try llmq.jobStatus("mixed")?["total"] as? Int == 1)
    }

    @Test func readsStandardInputAndRejectsAnEmptyFile() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let piped = try llmq.run(
            ["submit", "-", "--job", "piped", "--model", "flash"], stdin: #"{"prompt":"hello"}"# + "\n\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.contains("job piped: 1 added"))

        try llmq.write("empty.jsonl", "\n  \n")
        let empty = try llmq.run(["submit", "empty.jsonl"])
        #expect(empty.status == 65)
        #expect(empty.stderr.contains("empty.jsonl is empty: there is nothing to submit"))

        let missing = try llmq.run(["submit", "nope.jsonl"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("Unable to read nope.jsonl: No such file or directory"))
    }

    @Test func homeComesFromTheOptionOrTheEnvironment() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("p.jsonl", #"{"model":"gpt-4o","prompt":"hi"}"# + "\n")
        #expect(try llmq.run(["submit", "p.jsonl", "--home", "elsewhere"]).status == 0)
        #expect(llmq.exists("elsewhere/queue.sqlite"))
        #expect(try llmq.run(["submit", "p.jsonl"], environment: ["LLMQ_HOME": "viaenv"]).status == 0)
        #expect(llmq.exists("viaenv/queue.sqlite"))
        #expect(!llmq.exists("jobs/queue.sqlite"))
        let status = try llmq.run(["status", "--json"], environment: ["LLMQ_HOME": "viaenv"])
        #expect(status.stdout.contains(#""name":"p""#))
    }

    @Test func statusNamesAnUnknownJob() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        let noQueue = try llmq.run(["status", "ghost"])
        #expect(noQueue.status == 64)
        #expect(noQueue.stderr.contains("no job named \"ghost\""))
        #expect(try llmq.run(["status"]).stdout.contains("no jobs in"))
        #expect(try llmq.statusJSON()["jobs"] as? [Any] != nil)
    }

    @Test func badOptionsAreUsageErrors() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write("p.jsonl", #"{"prompt":"hi"}"# + "\n")
        let badModel = try llmq.run(["submit", "p.jsonl", "--model", "llama-3"])
        #expect(badModel.status == 64)
        #expect(badModel.stderr.contains("--model llama-3: no provider serves this model"))
        let badJob = try llmq.run(["submit", "p.jsonl", "--job", "a/b"])
        #expect(badJob.status == 64)
        #expect(badJob.stderr.contains("a job name may use letters"))
    }
}

/// A parameter the model's provider cannot take is an input error at submit time,
/// not a failure hours later in `llmq work`.
@Suite struct SubmitProviderFitTests {
    @Test func parametersTheProviderCannotExpressAreRejectedAtSubmit() throws {
        let llmq = try LLMQBinary()
        defer { llmq.cleanUp() }
        try llmq.write(
            "p.jsonl",
            [
                #"{"custom_id":"a","model":"haiku","prompt":"hi","seed":3}"#,
                #"{"custom_id":"b","model":"gpt-4o-mini","prompt":"hi","seed":3}"#,
                #"{"custom_id":"c","model":"claude-sonnet-4-5","prompt":"hi","temperature":1.5}"#,
                #"{"custom_id":"d","model":"flash","prompt":"hi","temperature":1.5,"seed":1}"#,
                #"{"custom_id":"e","method":"POST","url":"/v1/chat/completions","body":{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"logprobs":true}}"#,
            ].joined(separator: "\n") + "\n")
        let rejected = try llmq.run(["submit", "p.jsonl"])
        #expect(rejected.status == 65)
        #expect(
            rejected.stderr.contains(
                #"line 1, field "seed": claude-haiku-4-5 is served by Anthropic: Anthropic has no equivalent of "seed""#
            ),
            "\(rejected.stderr)")
        #expect(rejected.stderr.contains(#"line 3, field "temperature": claude-sonnet-4-5 is served by Anthropic"#))
        #expect(rejected.stderr.contains(#"line 5, field "logprobs": gemini-2.5-flash is served by Gemini"#))
        #expect(!rejected.stderr.contains("line 2") && !rejected.stderr.contains("line 4"))
        #expect((try llmq.statusJSON()["jobs"] as? [[String: Any]])?.isEmpty == true)

        let skipped = try llmq.run(["submit", "p.jsonl", "--skip-invalid"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(try llmq.jobStatus("p")?["queued"] as? Int == 2)
        #expect(try llmq.read("jobs/p/rejected.jsonl").split(separator: "\n").count == 3)
    }
}
