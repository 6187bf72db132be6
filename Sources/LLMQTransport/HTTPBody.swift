/// A response body arriving as byte chunks, read once with `for try await`.
///
/// At most `HTTPRequestOptions.streamBufferLimit` bytes wait ahead of the reader:
/// past that the transfer pauses until the reader catches up. Cancelling the
/// reading task, or dropping the body unread, aborts the transfer.
public struct HTTPBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    let owner: Owner

    init(channel: BodyChannel) { owner = Owner(channel: channel) }

    /// A body that yields the given chunks and ends, for test doubles of
    /// `HTTPTransport`.
    public init(chunks: [[UInt8]]) {
        let channel = BodyChannel(limit: .max, control: nil)
        for chunk in chunks { channel.append(chunk) }
        channel.finish(throwing: nil)
        self.init(channel: channel)
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: owner) }

    /// Reads the rest of the body into one array.
    ///
    /// Throws `TransportError.protocolError` if the body grows past `maxBytes`.
    public func collect(upTo maxBytes: Int = .max) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in self {
            guard bytes.count + chunk.count <= maxBytes else {
                owner.channel.cancel()
                throw TransportError.protocolError(reason: "body longer than \(maxBytes) bytes")
            }
            bytes += chunk
        }
        return bytes
    }

    /// Iterates the chunks of an `HTTPBody`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let owner: Owner

        public mutating func next() async throws -> [UInt8]? {
            try await owner.channel.next()
        }
    }

    /// Aborts the transfer when the last copy of the body and its iterators is gone,
    /// so an abandoned stream cannot hold a connection forever.
    final class Owner: Sendable {
        let channel: BodyChannel

        init(channel: BodyChannel) { self.channel = channel }

        deinit { channel.cancel() }
    }
}

/// Lets a body reader resume a paused transfer or abort it.
protocol BodyProducerControl: AnyObject, Sendable {
    func resumeProducer()
    func cancelProducer()
}

/// The bounded buffer between the curl thread (producer) and a body reader.
final class BodyChannel: @unchecked Sendable {
    enum Offer { case accepted, pause, abort }

    private let lock = Lock()
    private let limit: Int
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var buffered = 0
    private var producerPaused = false
    private var finished = false
    private var failure: (any Error)?
    private var consumerGone = false
    private var waiter: CheckedContinuation<[UInt8]?, any Error>?
    private var control: (any BodyProducerControl)?

    init(limit: Int, control: (any BodyProducerControl)?) {
        self.limit = max(1, limit)
        self.control = control
    }

    // MARK: Producer side (the curl thread)

    /// Hands a chunk to the reader, or asks the producer to pause (the chunk is not
    /// taken and will be offered again) or to abort (nobody is reading any more).
    func offer(_ bytes: UnsafeRawBufferPointer) -> Offer {
        lock.lock()
        if consumerGone {
            lock.unlock()
            return .abort
        }
        if buffered >= limit {
            producerPaused = true
            lock.unlock()
            return .pause
        }
        let chunk = [UInt8](bytes)
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: chunk)
        } else {
            chunks.append(chunk)
            buffered += chunk.count
            lock.unlock()
        }
        return .accepted
    }

    func append(_ chunk: [UInt8]) {
        lock.withLock {
            chunks.append(chunk)
            buffered += chunk.count
        }
    }

    /// Ends the body: the reader gets what is buffered, then nil or `error`.
    func finish(throwing error: (any Error)?) {
        lock.lock()
        guard !finished else {
            lock.unlock()
            return
        }
        finished = true
        control = nil
        let waiter = self.waiter
        self.waiter = nil
        if waiter == nil { failure = error }
        lock.unlock()
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    // MARK: Consumer side

    func next() async throws -> [UInt8]? {
        lock.lock()
        if let result = takeLocked() { return try deliver(result) }
        lock.unlock()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                lock.lock()
                if let result = takeLocked() {
                    do {
                        continuation.resume(returning: try deliver(result))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                    return
                }
                waiter = continuation
                lock.unlock()
            }
        } onCancel: {
            cancel()
        }
    }

    /// The reader is gone: drop the buffer, fail a waiting read, abort the transfer.
    func cancel() {
        lock.lock()
        let wasFinished = finished
        consumerGone = true
        chunks.removeAll()
        head = 0
        buffered = 0
        let waiter = self.waiter
        self.waiter = nil
        let control = self.control
        self.control = nil
        lock.unlock()
        waiter?.resume(throwing: CancellationError())
        if !wasFinished { control?.cancelProducer() }
    }

    private enum Take {
        case chunk([UInt8], resumeProducer: (any BodyProducerControl)?)
        case end((any Error)?)
    }

    /// With the lock held: what a read gets now, or nil if it must wait.
    private func takeLocked() -> Take? {
        if head < chunks.count {
            let chunk = chunks[head]
            chunks[head] = []
            head += 1
            buffered -= chunk.count
            if head == chunks.count {
                chunks.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= chunks.count {
                chunks.removeFirst(head)
                head = 0
            }
            var resume: (any BodyProducerControl)?
            if producerPaused && buffered <= limit / 2 {
                producerPaused = false
                resume = control
            }
            return .chunk(chunk, resumeProducer: resume)
        }
        if consumerGone { return .end(CancellationError()) }
        if finished {
            let error = failure
            failure = nil
            return .end(error)
        }
        return nil
    }

    /// Unlocks, then acts on a `Take`.
    private func deliver(_ take: Take) throws -> [UInt8]? {
        lock.unlock()
        switch take {
        case .chunk(let chunk, let resume):
            resume?.resumeProducer()
            return chunk
        case .end(let error):
            if let error { throw error }
            return nil
        }
    }
}
