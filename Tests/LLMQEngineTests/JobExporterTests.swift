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
        let exporter = JobExporter(store: store, home: home, job: "j")
        try exporter.recover(files: ["results.jsonl", "ledger.jsonl"])
        try finishSome(store, count: 4)
        #expect(try exporter.exportPending(batch: 3, format: format) == 4)
        #expect(try exporter.exportPending(format: format) == 0)

        // A crash after appending lines (one of them torn) but before recording them.
        let results = exporter.url("results.jsonl")
        let handle = try FileHandle(forWritingTo: results)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"custom_id":"r5","status":"ok"}"#.utf8) + Data("\n{\"custom_".utf8))
        try handle.close()

        try exporter.recover(files: ["results.jsonl", "ledger.jsonl"])
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
}
