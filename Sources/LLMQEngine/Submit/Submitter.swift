import Foundation
import LLMQCore
import LLMQStore

/// Validates a JSONL file and enqueues it as one job, all or nothing.
///
/// Two threads share the work: one reads and parses the file in chunks of lines,
/// the caller's thread inserts them inside the store's transaction. Memory holds a
/// few chunks at a time, whatever the file's size.
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
        /// Prices for the estimate; nil when no price table was found.
        public var prices: PriceTable?
        /// Lines parsed per chunk handed from the parsing thread to the inserting one.
        public var chunkLines = 4096

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

    /// One chunk of parsed lines, in line order.
    struct Chunk: Sendable {
        var requests: [NewRequest] = []
        var problems: [InputProblem] = []
        /// Raw bytes of every line of the chunk, by line number, kept only with
        /// `skipInvalid` to write rejected lines as they were.
        var rawLines: [Int: [UInt8]] = [:]
    }

    enum ProducerEvent: Sendable {
        case chunk(Chunk)
        case failed(String)
    }

    /// Runs the submission. Throws `EmptyInput`, `SubmissionRejected` (nothing was
    /// enqueued), a `LineReader.ReadError`, or a store error.
    public func run(store: any QueueStore) throws -> SubmitReport {
        let reader = try LineReader(path: options.path)
        let channel = BoundedChannel<ProducerEvent>(capacity: 4)
        let parser = RequestParser(defaultModel: options.defaultModel)
        let options = self.options
        let producerFinished = DispatchSemaphore(value: 0)
        let producer = Thread {
            Self.produce(reader: reader, parser: parser, options: options, into: channel)
            producerFinished.signal()
        }
        producer.name = "llmq-parse"
        producer.stackSize = 8 << 20  // deep JSON nesting recurses
        producer.start()
        defer {
            // Stop the parsing thread and wait for it, so it is not still hashing
            // while the process exits and OpenSSL tears down. A thread blocked
            // reading a terminal cannot be woken; do not wait on it for long.
            channel.close()
            _ = producerFinished.wait(timeout: .now() + 5)
        }

        let rejectedURL = home.jobFolder(options.job).appendingPathComponent("rejected.jsonl")
        let partialURL = rejectedURL.appendingPathExtension("partial")
        var rejectedWriter: JSONLWriter?
        var report = SubmitReport(job: options.job, source: options.path)
        do {
            report = try store.submit(
                job: options.job, options: SubmitOptions(source: options.path, replace: options.replace)
            ) { session in
                var report = report
                while let event = channel.receive() {
                    guard case .chunk(let chunk) = event else {
                        if case .failed(let message) = event { throw LineReader.ReadError(path: options.path, reason: message) }
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

    /// The parsing thread: reads lines, parses them in chunks, hands chunks over.
    static func produce(
        reader: LineReader, parser: RequestParser, options: Options, into channel: BoundedChannel<ProducerEvent>
    ) {
        var chunk = Chunk()
        var linesInChunk = 0
        do {
            try reader.forEachLine { number, bytes in
                if Self.isBlank(bytes) { return }
                switch parser.parse(line: bytes, number: number) {
                case .success(let request): chunk.requests.append(NewRequest(request, line: number))
                case .failure(let problem): chunk.problems.append(problem)
                }
                if options.skipInvalid { chunk.rawLines[number] = [UInt8](bytes) }
                linesInChunk += 1
                if linesInChunk == options.chunkLines {
                    guard channel.send(.chunk(chunk)) else { throw CancellationError() }
                    chunk = Chunk()
                    linesInChunk = 0
                }
            }
            if linesInChunk > 0 { channel.send(.chunk(chunk)) }
        } catch let error as LineReader.ReadError {
            channel.send(.failed(error.reason))
        } catch {
            // The consumer closed the channel: it has stopped listening.
        }
        channel.close()
    }

    static func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte != 0x20 && byte != 0x09 && byte != 0x0D { return false }
        return true
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
