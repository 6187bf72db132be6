/// One server-sent event, as dispatched by a blank line.
public struct SSEEvent: Hashable, Sendable {
    /// The `event:` field, or "message" when the event had none.
    public var type: String
    /// The `data:` lines joined with "\n".
    public var data: String
    /// The last `id:` seen on the stream so far (it carries over to later events),
    /// or nil if none was set or it was reset to empty.
    public var id: String?

    public init(type: String = "message", data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

/// An incremental parser for the `text/event-stream` format (WHATWG HTML, "Server-sent
/// events"), fed bytes as they arrive.
///
/// Lines may end in CRLF, LF or CR, and may be split anywhere across reads (a CRLF
/// too). `:` lines are comments, unknown fields are ignored, a leading UTF-8 BOM is
/// skipped, and an event still open when the stream ends is never dispatched.
public struct SSEParser: Sendable {
    /// The reconnection delay in milliseconds from the last valid `retry:` field.
    public private(set) var retry: Int?
    /// The last event ID (the `id:` field), which persists across events.
    public private(set) var lastEventID: String?

    private var line: [UInt8] = []
    private var afterCR = false
    private var atStreamStart = true
    private var eventType: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false

    public init() {}

    /// Consumes the next bytes of the stream and returns the events they complete.
    public mutating func parse(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            parse(UnsafeRawBufferPointer(buffer), into: &events)
        }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { parse($0, into: &events) }
        }
        return events
    }

    private mutating func parse(_ buffer: UnsafeRawBufferPointer, into events: inout [SSEEvent]) {
        var index = 0
        let count = buffer.count
        if afterCR && count > 0 {
            afterCR = false
            if buffer[0] == UInt8(ascii: "\n") { index = 1 }
        }
        var runStart = index
        while index < count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[runStart..<index]))
                endLine(into: &events)
                index += 1
                if byte == UInt8(ascii: "\r") {
                    if index < count {
                        if buffer[index] == UInt8(ascii: "\n") { index += 1 }
                    } else {
                        afterCR = true
                    }
                }
                runStart = index
            } else {
                index += 1
            }
        }
        line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[runStart..<count]))
    }

    private mutating func endLine(into events: inout [SSEEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        var start = 0
        if atStreamStart {
            atStreamStart = false
            if line.count >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF { start = 3 }
        }
        if start == line.count {
            dispatch(into: &events)
            return
        }
        if line[start] == UInt8(ascii: ":") { return }
        let colon = line[start...].firstIndex(of: UInt8(ascii: ":")) ?? line.count
        let field = line[start..<colon]
        var valueStart = min(colon + 1, line.count)
        if valueStart < line.count && line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = line[valueStart...]
        if field.elementsEqual("data".utf8) {
            data.append(contentsOf: value)
            data.append(UInt8(ascii: "\n"))
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventType = Array(value)
        } else if field.elementsEqual("id".utf8) {
            if !value.contains(0) { lastEventID = value.isEmpty ? nil : String(decoding: value, as: UTF8.self) }
        } else if field.elementsEqual("retry".utf8) {
            if !value.isEmpty, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let milliseconds = Int(String(decoding: value, as: UTF8.self))
            {
                retry = milliseconds
            }
        }
    }

    private mutating func dispatch(into events: inout [SSEEvent]) {
        defer {
            data.removeAll(keepingCapacity: true)
            eventType.removeAll(keepingCapacity: true)
            hasData = false
        }
        guard hasData else { return }
        data.removeLast()
        events.append(
            SSEEvent(
                type: eventType.isEmpty ? "message" : String(decoding: eventType, as: UTF8.self),
                data: String(decoding: data, as: UTF8.self), id: lastEventID))
    }
}
