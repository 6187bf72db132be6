import Foundation
import LLMQCore
import LLMQStore

/// Reads a file and parses its lines on several threads, handing parsed chunks to
/// one consumer in file order.
///
/// One thread reads lines into raw chunks; `workers` threads parse them (parsing
/// and hashing cost about as much as SQLite's insert, so on two cores they share
/// the second core with the reader and the inserting thread); `next()` returns the
/// chunks in order. Every queue is bounded, so memory holds a few chunks whatever
/// the file's size.
final class ParsePipeline: @unchecked Sendable {
    /// One chunk of parsed lines, in line order.
    struct Chunk: Sendable {
        var requests: [NewRequest] = []
        var problems: [InputProblem] = []
        /// Raw bytes of every line of the chunk, by line number, kept only when
        /// asked, to write rejected lines as they were.
        var rawLines: [Int: [UInt8]] = [:]
    }

    enum Event: Sendable {
        case chunk(Chunk)
        case failed(LineReader.ReadError)
    }

    /// Lines as read: their bytes back to back, and where each one is.
    struct RawChunk: Sendable {
        var sequence: Int
        var bytes: [UInt8] = []
        var lines: [(number: Int, start: Int, count: Int)] = []
    }

    private let reader: LineReader
    private let parser: RequestParser
    private let chunkLines: Int
    private let keepRawLines: Bool
    private let workerCount: Int
    private let raw: BoundedChannel<RawChunk>
    private let finished = DispatchSemaphore(value: 0)

    // Reorder buffer, guarded by `condition`.
    private let condition = NSCondition()
    private var ready: [Int: Event] = [:]
    private var nextSequence = 0
    /// How many sequence numbers the reader issued, once it is done.
    private var totalChunks: Int?
    private var stopped = false
    private let readyLimit: Int

    init(reader: LineReader, parser: RequestParser, chunkLines: Int, keepRawLines: Bool, workers: Int) {
        self.reader = reader
        self.parser = parser
        self.chunkLines = chunkLines
        self.keepRawLines = keepRawLines
        self.workerCount = max(1, workers)
        raw = BoundedChannel(capacity: workerCount + 1)
        readyLimit = workerCount + 2
    }

    /// Starts the reading and parsing threads.
    func start() {
        spawn("llmq-read") { self.read() }
        for index in 0..<workerCount {
            spawn("llmq-parse-\(index)") { self.parse() }
        }
    }

    /// The next chunk in file order, or nil at the end of input (or after `stop()`).
    func next() -> Event? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped { return nil }
            if let event = ready.removeValue(forKey: nextSequence) {
                nextSequence += 1
                condition.broadcast()
                return event
            }
            if let totalChunks, nextSequence >= totalChunks { return nil }
            condition.wait()
        }
    }

    /// Stops every thread and waits for them, so none is still hashing while the
    /// process exits and OpenSSL tears down. A reader blocked on a terminal cannot
    /// be woken; it is not waited for long.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        raw.close()
        let deadline = DispatchTime.now() + 5
        for _ in 0..<(workerCount + 1) { _ = finished.wait(timeout: deadline) }
    }

    private func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            body()
            self.finished.signal()
        }
        thread.name = name
        thread.stackSize = 8 << 20  // deeply nested JSON recurses
        thread.start()
    }

    private func read() {
        var chunk = RawChunk(sequence: 0)
        var sequence = 0
        do {
            try reader.forEachLine { number, bytes in
                if Self.isBlank(bytes) { return }
                chunk.lines.append((number, chunk.bytes.count, bytes.count))
                chunk.bytes.append(contentsOf: bytes)
                if chunk.lines.count == chunkLines {
                    guard raw.send(chunk) else { throw CancellationError() }
                    sequence += 1
                    chunk = RawChunk(sequence: sequence)
                    chunk.bytes.reserveCapacity(chunk.bytes.capacity)
                }
            }
            if !chunk.lines.isEmpty {
                raw.send(chunk)
                sequence += 1
            }
        } catch let error as LineReader.ReadError {
            deliver(.failed(error), sequence: sequence)
            sequence += 1
        } catch {
            // Stopped: nobody is listening any more.
        }
        condition.lock()
        totalChunks = sequence
        condition.broadcast()
        condition.unlock()
        raw.close()
    }

    private func parse() {
        while let rawChunk = raw.receive() {
            var chunk = Chunk()
            chunk.requests.reserveCapacity(rawChunk.lines.count)
            rawChunk.bytes.withUnsafeBytes { buffer in
                for line in rawChunk.lines {
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[line.start..<line.start + line.count])
                    switch parser.parse(line: bytes, number: line.number) {
                    case .success(let request):
                        if let problem = ProviderFit.problem(request, line: line.number) {
                            chunk.problems.append(problem)
                        } else {
                            chunk.requests.append(NewRequest(request, line: line.number))
                        }
                    case .failure(let problem): chunk.problems.append(problem)
                    }
                    if keepRawLines { chunk.rawLines[line.number] = [UInt8](bytes) }
                }
            }
            guard deliver(.chunk(chunk), sequence: rawChunk.sequence) else { return }
        }
    }

    /// Puts a result in the reorder buffer, waiting while it is full unless this is
    /// the result the consumer waits for. False once stopped.
    @discardableResult
    private func deliver(_ event: Event, sequence: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while ready.count >= readyLimit && sequence != nextSequence && !stopped { condition.wait() }
        guard !stopped else { return false }
        ready[sequence] = event
        condition.broadcast()
        return true
    }

    static func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte != 0x20 && byte != 0x09 && byte != 0x0D { return false }
        return true
    }
}
