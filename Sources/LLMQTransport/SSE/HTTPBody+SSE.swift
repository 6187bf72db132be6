extension HTTPBody {
    /// The body parsed as server-sent events.
    public var serverSentEvents: SSEEventSequence { SSEEventSequence(body: self) }
}

extension HTTPStreamingResponse {
    /// The body parsed as server-sent events.
    public var serverSentEvents: SSEEventSequence { body.serverSentEvents }
}

/// The events of a `text/event-stream` body, parsed as its chunks arrive.
public struct SSEEventSequence: AsyncSequence, Sendable {
    public typealias Element = SSEEvent

    let body: HTTPBody

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: body.makeAsyncIterator())
    }

    /// Iterates the events; the parser's `retry` and `lastEventID` stay readable.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: HTTPBody.AsyncIterator
        public private(set) var parser = SSEParser()
        var pending: [SSEEvent] = []
        var nextIndex = 0

        public mutating func next() async throws -> SSEEvent? {
            while nextIndex == pending.count {
                guard let chunk = try await chunks.next() else { return nil }
                pending = parser.parse(chunk)
                nextIndex = 0
            }
            defer { nextIndex += 1 }
            return pending[nextIndex]
        }
    }
}
