import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore

/// How `llmq submit` reports.
enum SubmitFormatter {
    static func summary(_ report: SubmitReport, home: QueueHome) -> String {
        var lines: [String] = []
        if report.added == 0 && report.replaced == 0 && report.rejected == 0 {
            lines.append(
                "job \(report.job): nothing new, all \(report.unchanged) requests are already queued (queue: \(home.path))"
            )
        } else {
            lines.append(
                "job \(report.job): \(report.added) added, \(report.unchanged) already present, "
                    + "\(report.replaced) replaced, \(report.rejected) rejected (queue: \(home.path))")
        }
        if report.rejected > 0 {
            for problem in report.problems { lines.append("  rejected \(problem.locatedMessage)") }
            if report.rejected > report.problems.count {
                lines.append("  … and \(report.rejected - report.problems.count) more")
            }
            if let file = report.rejectedFile { lines.append("rejected lines written to \(file.path)") }
        }
        if report.added + report.replaced > 0 { lines.append(estimateLine(report.estimate)) }
        if report.added + report.replaced + report.unchanged > 0 {
            lines.append(
                (report.estimate.batch ? "batch mode: " : "")
                    + "next: llmq work --job \(report.job)   then: llmq status \(report.job)")
        }
        return lines.joined(separator: "\n")
    }

    static func estimateLine(_ estimate: CostEstimate) -> String {
        var text =
            "estimated cost\(estimate.batch ? " at batch prices" : ""): \(money(estimate.inputCostUSD)) input "
            + "(≈\(tokens(estimate.inputTokens)) tokens)"
        if estimate.maxOutputTokens > 0 {
            text +=
                " + at most \(money(estimate.maxOutputCostUSD)) output (≤\(tokens(estimate.maxOutputTokens)) tokens)"
        }
        if estimate.requestsWithoutMaxTokens > 0 {
            text += "; \(estimate.requestsWithoutMaxTokens) requests have no max_tokens, their output is not bounded"
        }
        if !estimate.unpricedModels.isEmpty {
            let models = estimate.unpricedModels.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }
            text += "; no price for " + models.joined(separator: ", ") + " (see prices.csv)"
        }
        return text
    }

    static func rejection(_ report: SubmitReport) -> String {
        let name = report.source == "-" ? "standard input" : report.source
        var lines = [
            "error: \(name) was not submitted: \(report.rejected) of \(report.lines) lines are invalid; "
                + "the queue is unchanged"
        ]
        for problem in report.problems { lines.append("  \(name): \(problem.locatedMessage)") }
        if report.rejected > report.problems.count {
            lines.append("  … and \(report.rejected - report.problems.count) more")
        }
        lines.append(
            "fix the lines, or pass --skip-invalid to enqueue the valid ones and write the rest to <job>/rejected.jsonl"
        )
        return lines.joined(separator: "\n") + "\n"
    }

    static func tokens(_ count: Int) -> String {
        if count >= 10_000_000 { return String(format: "%.0fM", Double(count) / 1e6) }
        if count >= 1_000_000 { return String(format: "%.1fM", Double(count) / 1e6) }
        if count >= 10_000 { return String(format: "%.0fk", Double(count) / 1e3) }
        return String(count)
    }
}

func money(_ amount: Double) -> String {
    if amount > 0 && amount < 0.0001 { return "<$0.0001" }
    return amount < 0.01 && amount > 0 ? String(format: "$%.4f", amount) : String(format: "$%.2f", amount)
}

/// How `llmq status` prints.
enum StatusFormatter {
    static func table(_ jobs: [JobSummary], home: QueueHome) -> String {
        guard !jobs.isEmpty else { return "no jobs in \(home.path) yet: llmq submit FILE" }
        let header = ["JOB", "TOTAL", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED", "COST"]
        let rows = jobs.map { job in
            [
                job.name, "\(job.total)", "\(job.queued)", "\(job.running)", "\(job.done)", "\(job.failed)",
                "\(job.cancelled)", money(job.costUSD),
            ]
        }
        return TextTable.render(header: header, rows: rows)
    }

    /// A worker whose heartbeat is older than this is shown as silent.
    static let silentAfter: Int64 = 15_000

    /// One line per `llmq work` process, with the figures of its last heartbeat.
    static func workers(_ workers: [WorkerRecord], now: Int64) -> String {
        var lines = ["workers:"]
        for worker in workers {
            var line =
                "  \(worker.host) pid \(worker.pid), up "
                + ProgressDisplay.duration(Double(max(0, now - worker.startedAt)) / 1000)
            let age = now - worker.heartbeatAt
            if age > silentAfter {
                line += ", silent for \(ProgressDisplay.duration(Double(age) / 1000)) (stopped or stuck?)"
            }
            if let stats = worker.stats.flatMap({ try? JSONParser.parse($0) }).flatMap(WorkProgress.init(json:)) {
                line +=
                    ": \(stats.succeeded) ok, \(stats.failed) failed, " + ProgressDisplay.rates(stats) + ", "
                    + "\(stats.inFlight) in flight, " + ProgressDisplay.cost(stats)
                if !stats.lanes.isEmpty {
                    line += "\n    " + stats.lanes.map(ProgressDisplay.lane).joined(separator: " · ")
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Each provider batch still going (with its provider, remote id, status,
    /// counts and age), and how many were collected.
    static func batches(_ batches: [BatchRecord], now: Int64) -> String {
        let open = batches.filter { !$0.isFinal }
        let collected = batches.count - open.count
        var lines = ["batches: \(open.count) in progress, \(collected) collected"]
        guard !open.isEmpty else { return lines[0] }
        let rows = open.map { batch in
            [
                batch.job, batch.provider.rawValue, batch.remoteID ?? "(\(batch.state.rawValue))",
                batch.remoteStatus ?? batch.state.rawValue,
                "\(batch.succeeded ?? 0)/\(batch.total ?? batch.requestCount)", "\(batch.failed ?? 0)",
                ProgressDisplay.duration(Double(max(0, now - batch.createdAt)) / 1000)
                    + (batch.cancelRequested ? ", cancelling" : "")
                    + (batch.error.map { ", last error: \($0.prefix(80))" } ?? ""),
            ]
        }
        lines.append(
            TextTable.render(
                header: ["JOB", "PROVIDER", "BATCH", "STATUS", "DONE", "FAILED", "AGE"], rows: rows, leftAligned: 4))
        return lines.joined(separator: "\n")
    }

    static func json(_ jobs: [JobSummary], workers: [WorkerRecord] = [], batches: [BatchRecord] = [], now: Int64 = 0)
        -> String
    {
        let list: [JSONValue] = jobs.map { job in
            .object([
                "name": .string(job.name),
                "mode": .string(job.mode),
                "created_at": .string(iso8601(milliseconds: job.createdAt)),
                "total": .int(Int64(job.total)),
                "queued": .int(Int64(job.queued)),
                "running": .int(Int64(job.running)),
                "done": .int(Int64(job.done)),
                "failed": .int(Int64(job.failed)),
                "cancelled": .int(Int64(job.cancelled)),
                "cost_usd": .number(job.costUSD),
            ])
        }
        let workerList: [JSONValue] = workers.map { worker in
            var object: JSONObject = [
                "host": .string(worker.host), "pid": .int(Int64(worker.pid)),
                "started_at": .string(iso8601(milliseconds: worker.startedAt)),
                "heartbeat_at": .string(iso8601(milliseconds: worker.heartbeatAt)),
                "silent": .bool(now - worker.heartbeatAt > silentAfter),
            ]
            if let stats = worker.stats.flatMap({ try? JSONParser.parse($0) }) { object["stats"] = stats }
            return .object(object)
        }
        let batchList: [JSONValue] = batches.map { batch in
            var object: JSONObject = [
                "job": .string(batch.job), "llmq_id": .string(batch.llmqID),
                "provider": .string(batch.provider.rawValue),
                "model": .string(batch.model), "state": .string(batch.state.rawValue),
                "requests": .int(Int64(batch.requestCount)), "local_file": .string(batch.localFile),
                "created_at": .string(iso8601(milliseconds: batch.createdAt)),
                "age_s": .int(max(0, now - batch.createdAt) / 1000),
                "cancel_requested": .bool(batch.cancelRequested),
            ]
            func put(_ key: String, _ value: String?) { if let value { object[key] = .string(value) } }
            func put(_ key: String, _ value: Int?) { if let value { object[key] = .int(Int64(value)) } }
            put("id", batch.remoteID)
            put("status", batch.remoteStatus)
            put("input_file_id", batch.inputFileID)
            put("total", batch.total)
            put("succeeded", batch.succeeded)
            put("failed", batch.failed)
            put("error", batch.error)
            put("failure", batch.failure)
            if let collected = batch.collectedAt { object["collected_at"] = .string(iso8601(milliseconds: collected)) }
            return .object(object)
        }
        return CanonicalJSON.string(
            .object(["jobs": .array(list), "workers": .array(workerList), "batches": .array(batchList)]))
    }

    static func iso8601(milliseconds: Int64) -> String {
        ISOTime.string(milliseconds: milliseconds)
    }
}

/// Plain-text tables for the terminal: the first `leftAligned` columns are
/// left-aligned (names), the rest right-aligned (numbers).
enum TextTable {
    static func render(header: [String], rows: [[String]], leftAligned: Int = 1) -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max()!
        }
        func render(_ row: [String]) -> String {
            row.enumerated().map { column, cell in
                column < leftAligned
                    ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }
}
