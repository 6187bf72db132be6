import Foundation
import LLMQCore
import LLMQStore

/// Validates a JSONL file and enqueues it as one job, all or nothing.
///
/// Threads share the work: one reads the file in chunks of lines, others parse
/// them, and the caller's thread inserts them in order inside the store's
/// transaction (`ParsePipeline`). Memory holds a few chunks at a time, whatever the
/// file's size.
public struct Submitter: Sendable {
    public struct Options: Sendable {
        /// The input file, or "-" for standard input.
        public var path: String
        public var job: String
        /// The model for lines that name none.
        public var defaultModel: String?
        /// Enqueue the valid lines and write the others to `<job>/rejected.jsonl`.
        public var skipInvalid = false
        /// Replace known custom_ids whose request changed.
        public var replace = false
        /// Send the job through the providers' batch APIs (nil: keep the job's mode).
        public var mode: JobMode?
        /// Prices for the estimate; nil when no price table was found.
        public var prices: PriceTable?
        /// Lines parsed per chunk handed from the parsing threads to the inserting one.
        public var chunkLines = 2048
        /// Threads that parse lines; the calling thread inserts. Parsing and hashing
        /// a line costs about what inserting it does, so one per core, up to four.
        public var parseThreads = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))

        public init(path: String, job: String) {
            self.path = path
            self.job = job
        }
    }

    /// How many problems a report lists; the rest are counted.
    public static let problemsShown = 20

    public var options: Options
    public var home: QueueHome

    public init(options: Options, home: QueueHome) {
        self.options = options
        self.home = home
    }

    /// Runs the submission. Throws `EmptyInput`, `SubmissionRejected` (nothing was
    /// enqueued), a `LineReader.ReadError`, or a store error.
    public func run(store: any QueueStore) throws -> SubmitReport {
        let reader = try LineReader(path: options.path)
        let options = self.options
        let pipeline = ParsePipeline(
            reader: reader, parser: RequestParser(defaultModel: options.defaultModel), chunkLines: options.chunkLines,
            keepRawLines: options.skipInvalid, workers: options.parseThreads)
        pipeline.start()
        defer { pipeline.stop() }

        let rejectedURL = home.jobFolder(options.job).appendingPathComponent("rejected.jsonl")
        let partialURL = rejectedURL.appendingPathExtension("partial")
        var rejectedWriter: JSONLWriter?
        var report = SubmitReport(job: options.job, source: options.path)
        report.estimate.batch = options.mode == .batch
        do {
            report = try store.submit(
                job: options.job,
                options: SubmitOptions(source: options.path, replace: options.replace, mode: options.mode)
            ) { session in
                var report = report
                while let event = pipeline.next() {
                    guard case .chunk(let chunk) = event else {
                        if case .failed(let error) = event { throw error }
                        continue
                    }
                    report.lines += chunk.requests.count + chunk.problems.count
                    let outcomes = try session.add(chunk.requests)
                    var problems = chunk.problems
                    for (index, outcome) in outcomes.enumerated() {
                        switch outcome {
                        case .added:
                            report.added += 1
                            report.estimate.add(chunk.requests[index].request, prices: options.prices)
                            continue
                        case .replaced:
                            report.replaced += 1
                            report.estimate.add(chunk.requests[index].request, prices: options.prices)
                            continue
                        default: break
                        }
                        let item = chunk.requests[index]
                        switch outcome {
                        case .added, .replaced: break
                        case .unchanged:
                            report.unchanged += 1
                        case .duplicate(let line):
                            problems.append(
                                InputProblem(
                                    line: item.line, field: "custom_id", customID: item.request.customID,
                                    message: "custom_id \"\(item.request.customID)\" is already used on line \(line)"))
                        case .conflict(let line):
                            problems.append(
                                InputProblem(
                                    line: item.line, field: "custom_id", customID: item.request.customID,
                                    message:
                                        "custom_id \"\(item.request.customID)\" is already in job \"\(options.job)\" "
                                        + "with a different request (submitted from line \(line)); "
                                        + "pass --replace to replace it"))
                        }
                    }
                    guard !problems.isEmpty else { continue }
                    problems.sort { $0.line < $1.line }
                    report.rejected += problems.count
                    let room = Self.problemsShown - report.problems.count
                    if room > 0 { report.problems.append(contentsOf: problems.prefix(room)) }
                    if options.skipInvalid {
                        if rejectedWriter == nil {
                            try FileManager.default.createDirectory(
                                at: home.jobFolder(options.job), withIntermediateDirectories: true)
                            rejectedWriter = try JSONLWriter(url: partialURL)
                        }
                        for problem in problems {
                            try rejectedWriter!.write(Self.rejectedLine(problem, raw: chunk.rawLines[problem.line]))
                        }
                    }
                }
                if report.lines == 0 { throw EmptyInput(source: options.path) }
                if report.rejected > 0 && !options.skipInvalid { throw SubmissionRejected(report: report) }
                try rejectedWriter?.close()
                return report
            }
        } catch {
            try? rejectedWriter?.close()
            try? FileManager.default.removeItem(at: partialURL)
            throw error
        }
        try FileManager.default.createDirectory(at: home.jobFolder(options.job), withIntermediateDirectories: true)
        if options.skipInvalid {
            // The rejected file describes the latest submission only.
            try? FileManager.default.removeItem(at: rejectedURL)
            if rejectedWriter != nil {
                try FileManager.default.moveItem(at: partialURL, to: rejectedURL)
                report.rejectedFile = rejectedURL
            }
        }
        return report
    }

    /// One line of rejected.jsonl: where, why, and the input line as it was.
    static func rejectedLine(_ problem: InputProblem, raw: [UInt8]?) -> JSONValue {
        var object: JSONObject = [
            "line": .int(Int64(problem.line)),
            "error": .string(problem.locatedMessage),
        ]
        if let customID = problem.customID { object["custom_id"] = .string(customID) }
        if let field = problem.field { object["field"] = .string(field) }
        if let column = problem.column { object["column"] = .int(Int64(column)) }
        if let raw {
            if let text = String(validating: raw, as: UTF8.self) {
                object["input"] = .string(text)
            } else {
                object["input_base64"] = .string(Data(raw).base64EncodedString())
            }
        }
        return .object(object)
    }
}
