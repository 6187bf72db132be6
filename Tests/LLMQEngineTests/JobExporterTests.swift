import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore
import Testing

@Suite struct JobExporterTests {
    func finishSome(_ store: SQLiteQueueStore, count: Int) throws {
        let claimed = try store.claim(limit: count, owner: "w", leaseMilliseconds: 60_000, jobs: nil)
        _ = try store.finish(
            claimed.map {
                Completion(id: $0.id, outcome: .succeeded(result: #"{"text":"ok"}"#, usage: "{}", costUSD: 0.01))
            }, owner: "w")
    }

    func format(_ request: FinishedRequest) -> JobExporter.Lines {
        [
            "results.jsonl": [.object(["custom_id": .string(request.customID), "status": .string("ok")])],
            "ledger.jsonl": [.object(["custom_id": .string(request.customID)])],
        ]
    }

    @Test func aCrashBetweenWritingAndRecordingWritesEachRequestExactlyOnce() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-export-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let home = QueueHome(url: directory)
        let store = try SQLiteQueueStore(home: home)
        try store.submit(job: "j", options: SubmitOptions(source: "t")) { session in
            _ = try session.add(
                (1...10).map {
                    NewRequest(
                        try RequestParser().parse(
                            line: #"{"custom_id":"r\#($0)","model":"gpt-4o","prompt":"p\#($0)"}"#, number: $0
                        ).get(), line: $0)
                })
        }
        let exporter = JobExporter(store: store, home: home, job: "j", files: ["results.jsonl", "ledger.jsonl"])
        try finishSome(store, count: 4)
        #expect(try exporter.exportPending(batch: 3, format: format) == 4)
        #expect(try exporter.exportPending(format: format) == 0)

        // A crash after appending lines (one of them torn) but before recording them.
        let results = exporter.url("results.jsonl")
        let handle = try FileHandle(forWritingTo: results)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"custom_id":"r5","status":"ok"}"#.utf8) + Data("\n{\"custom_".utf8))
        try handle.close()

        try finishSome(store, count: 6)
        #expect(try exporter.exportPending(format: format) == 6)

        let lines = try String(contentsOf: results, encoding: .utf8).split(separator: "\n")
        let ids = try lines.map { try JSONParser.parse(String($0))["custom_id"]?.stringValue ?? "" }
        #expect(ids.count == 10)
        #expect(Set(ids) == Set((1...10).map { "r\($0)" }))
        let ledger = try String(contentsOf: exporter.url("ledger.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(ledger.count == 10)
        #expect(try store.exportOffsets(job: "j")["results.jsonl"] == Int64(try Data(contentsOf: results).count))
    }

    func queue(_ count: Int) throws -> (QueueHome, SQLiteQueueStore, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-export-\(UUID())")
        let home = QueueHome(url: directory)
        let store = try SQLiteQueueStore(home: home)
        try store.submit(job: "j", options: SubmitOptions(source: "t")) { session in
            _ = try session.add(
                (1...count).map {
                    NewRequest(
                        try RequestParser().parse(
                            line: #"{"custom_id":"r\#($0)","model":"gpt-4o","prompt":"p\#($0)"}"#, number: $0
                        ).get(), line: $0)
                })
        }
        return (home, store, directory)
    }

    /// Two exporters (two `llmq work` processes) on one job take turns: no line twice.
    @Test func exportersOfOneJobTakeTurnsAndWriteEachLineOnce() async throws {
        let (home, store, directory) = try queue(400)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = ["results.jsonl", "ledger.jsonl"]
        await withTaskGroup(of: Void.self) { group in
            for worker in ["w1", "w2"] {
                group.addTask {
                    let exporter = JobExporter(store: store, home: home, job: "j", files: files)
                    for _ in 0..<40 {
                        let claimed =
                            (try? store.claim(limit: 5, owner: worker, leaseMilliseconds: 60_000, jobs: nil))
                            ?? []
                        _ = try? store.finish(
                            claimed.map {
                                Completion(id: $0.id, outcome: .succeeded(result: "{}", usage: "{}", costUSD: 0))
                            },
                            owner: worker)
                        _ = try? exporter.exportPending(format: format)
                    }
                }
            }
        }
        let exporter = JobExporter(store: store, home: home, job: "j", files: files)
        try exporter.exportPending(format: format)
        let lines = try String(contentsOf: exporter.url("results.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 400)
        #expect(Set(lines).count == 400)
    }

    @Test func aFileCutShorterOutsideLLMQIsAClearErrorNotALoss() throws {
        let (home, store, directory) = try queue(3)
        defer { try? FileManager.default.removeItem(at: directory) }
        let exporter = JobExporter(store: store, home: home, job: "j", files: ["results.jsonl"])
        try finishSome(store, count: 2)
        try exporter.exportPending(format: format)
        try Data().write(to: exporter.url("results.jsonl"))
        try finishSome(store, count: 1)
        #expect {
            try exporter.exportPending(format: self.format)
        } throws: { error in
            "\(error)".contains("results.jsonl holds 0 bytes but llmq had written")
                && "\(error)".contains("llmq results j --out")
        }
        #expect(try store.finishedUnexported(job: "j", limit: 10).count == 1)
    }
}

@Suite struct WorkProgressFiguresTests {
    @Test func figuresSurviveTheHeartbeatJSON() throws {
        var progress = WorkProgress()
        progress.succeeded = 10
        progress.failed = 2
        progress.costUSD = 0.25
        progress.requestsPerSecond = 12.5
        progress.total = 100
        progress.finished = 12
        progress.remaining = 88
        progress.lanes = [.init(name: "openai#1", window: 8, inFlight: 3, rateLimited: 4, pausedMilliseconds: 1500)]
        let parsed = try #require(WorkProgress(json: try JSONParser.parse(CanonicalJSON.string(progress.json))))
        #expect(parsed == progress)
        #expect(parsed.etaSeconds == 88 / 12.5)
    }
}
