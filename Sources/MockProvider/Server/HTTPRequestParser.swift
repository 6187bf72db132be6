import NIOCore
import NIOHTTP1

/// A request's header fields, kept as the bytes they arrived in and decoded only when
/// a surface asks for one: most requests are answered after reading two or three.
struct MockHeaders {
    private struct Field {
        var nameStart: Int32
        var nameLength: Int32
        var valueStart: Int32
        var valueLength: Int32
    }

    private var bytes: ByteBuffer
    private var fields: [Field] = []

    init(bytes: ByteBuffer) {
        self.bytes = bytes
    }

    fileprivate mutating func append(name: Range<Int>, value: Range<Int>) {
        fields.append(
            Field(
                nameStart: Int32(name.lowerBound), nameLength: Int32(name.count), valueStart: Int32(value.lowerBound),
                valueLength: Int32(value.count)))
    }

    /// The value of the first field named `name` (compared without case), or nil.
    func first(name: String) -> String? {
        guard let field = find(name) else { return nil }
        return bytes.getString(at: bytes.readerIndex + Int(field.valueStart), length: Int(field.valueLength))
    }

    private func find(_ name: String) -> Field? {
        for field in fields where matches(name, start: Int(field.nameStart), length: Int(field.nameLength)) {
            return field
        }
        return nil
    }

    private func matches(_ text: String, start: Int, length: Int) -> Bool {
        var text = text
        return text.withUTF8 { expected in
            guard expected.count == length else { return false }
            return bytes.withUnsafeReadableBytes { raw in
                for index in 0..<length where asciiLowercase(raw[start + index]) != asciiLowercase(expected[index]) {
                    return false
                }
                return true
            }
        }
    }
}

@inline(__always)
private func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}

/// Splits the bytes of a connection into HTTP/1.1 requests.
///
/// Written for the fake server's hot path instead of NIO's decoder: it keeps the head
/// as bytes (no string per header), and hands out whole requests, so pipelined
/// requests that arrive in one read are parsed in one pass. It accepts what clients
/// send (Content-Length or chunked bodies, HTTP/1.0 and 1.1, `Expect: 100-continue`)
/// and refuses the rest with 400, as servers do.
struct HTTPRequestParser {
    enum Outcome {
        /// A whole request, now consumed from the buffer.
        case request(MockRequest)
        /// The request is not complete yet. `expectsContinue` is true once its head
        /// is complete if the client waits for `100 Continue` before sending the body.
        case needMoreBytes(expectsContinue: Bool)
        /// The body is larger than allowed; the connection must answer 413 and close.
        case tooLarge(HTTPVersion)
        /// Not HTTP/1.x; the connection must answer 400 and close.
        case invalid(String)
    }

    var maximumBodyBytes: Int
    /// Longest head (request line and fields) accepted.
    var maximumHeadBytes = 64 << 10

    func next(from buffer: inout ByteBuffer) -> Outcome {
        guard buffer.readableBytes > 0 else { return .needMoreBytes(expectsContinue: false) }
        let scan = buffer.withUnsafeReadableBytes { raw in scanHead(raw) }
        let head: Head
        switch scan {
        case .incomplete:
            return buffer.readableBytes > maximumHeadBytes
                ? .invalid("request head too large") : .needMoreBytes(expectsContinue: false)
        case .invalid(let reason):
            return .invalid(reason)
        case .complete(let scanned):
            head = scanned
        }
        let bodyStart = head.length
        var body: ByteBuffer
        var consumed: Int
        if head.chunked {
            let scanResult = buffer.withUnsafeReadableBytes { raw in scanChunks(raw, from: bodyStart) }
            switch scanResult {
            case .incomplete(let soFar):
                if soFar > maximumBodyBytes { return .tooLarge(head.version) }
                return .needMoreBytes(expectsContinue: head.expectsContinue)
            case .invalid(let reason):
                return .invalid(reason)
            case .complete(let pieces, let end):
                let total = pieces.reduce(0) { $0 + $1.count }
                if total > maximumBodyBytes { return .tooLarge(head.version) }
                body = ByteBufferAllocator().buffer(capacity: total)
                for piece in pieces {
                    var slice = buffer.getSlice(at: buffer.readerIndex + piece.lowerBound, length: piece.count)!
                    body.writeBuffer(&slice)
                }
                consumed = end
            }
        } else {
            let length = head.contentLength ?? 0
            if length > maximumBodyBytes { return .tooLarge(head.version) }
            guard buffer.readableBytes - bodyStart >= length else {
                return .needMoreBytes(expectsContinue: head.expectsContinue)
            }
            body = buffer.getSlice(at: buffer.readerIndex + bodyStart, length: length)!
            consumed = bodyStart + length
        }
        let headBytes = buffer.getSlice(at: buffer.readerIndex, length: head.length)!
        var headers = MockHeaders(bytes: headBytes)
        for field in head.fields { headers.append(name: field.name, value: field.value) }
        let target = buffer.getString(at: buffer.readerIndex + head.target.lowerBound, length: head.target.count) ?? "/"
        buffer.moveReaderIndex(forwardBy: consumed)
        return .request(
            MockRequest(
                method: head.method, target: target, version: head.version, keepAlive: head.keepAlive,
                headers: headers, body: body))
    }

    // MARK: - Head

    private struct Head {
        var method: HTTPMethod
        var target: Range<Int>
        var version: HTTPVersion
        var fields: [(name: Range<Int>, value: Range<Int>)] = []
        var contentLength: Int?
        var chunked = false
        var keepAlive: Bool
        var expectsContinue = false
        /// Bytes of the request line, the fields and the blank line.
        var length = 0
    }

    private enum HeadScan {
        case incomplete
        case invalid(String)
        case complete(Head)
    }

    private func scanHead(_ raw: UnsafeRawBufferPointer) -> HeadScan {
        // Find the end of each line; the head ends at the first empty line.
        var lineStart = 0
        var head: Head?
        var connectionClose = false
        var connectionKeepAlive = false
        while true {
            guard let lineEnd = findLineEnd(raw, from: lineStart) else { return .incomplete }
            let contentEnd = lineEnd > lineStart && raw[lineEnd - 1] == 13 ? lineEnd - 1 : lineEnd
            defer { lineStart = lineEnd + 1 }
            guard var current = head else {
                // The request line: METHOD SP target SP HTTP/1.x
                guard let firstSpace = find(raw, UInt8(ascii: " "), in: lineStart..<contentEnd),
                    let secondSpace = find(raw, UInt8(ascii: " "), in: (firstSpace + 1)..<contentEnd),
                    firstSpace > lineStart, secondSpace > firstSpace + 1
                else { return .invalid("bad request line") }
                let version: HTTPVersion
                if equals(raw, secondSpace + 1..<contentEnd, "HTTP/1.1") {
                    version = .http1_1
                } else if equals(raw, secondSpace + 1..<contentEnd, "HTTP/1.0") {
                    version = .http1_0
                } else {
                    return .invalid("unsupported HTTP version")
                }
                head = Head(
                    method: method(raw, lineStart..<firstSpace), target: (firstSpace + 1)..<secondSpace,
                    version: version, keepAlive: version == .http1_1)
                continue
            }
            if contentEnd == lineStart {
                // The blank line: the head is complete.
                if connectionClose {
                    current.keepAlive = false
                } else if connectionKeepAlive {
                    current.keepAlive = true
                }
                if current.chunked && current.contentLength != nil {
                    return .invalid("both Content-Length and Transfer-Encoding")
                }
                current.length = lineEnd + 1
                return .complete(current)
            }
            guard raw[lineStart] != 32, raw[lineStart] != 9 else { return .invalid("folded header line") }
            guard let colon = find(raw, UInt8(ascii: ":"), in: lineStart..<contentEnd), colon > lineStart else {
                return .invalid("bad header line")
            }
            var valueStart = colon + 1
            var valueEnd = contentEnd
            while valueStart < valueEnd, raw[valueStart] == 32 || raw[valueStart] == 9 { valueStart += 1 }
            while valueEnd > valueStart, raw[valueEnd - 1] == 32 || raw[valueEnd - 1] == 9 { valueEnd -= 1 }
            let name = lineStart..<colon
            let value = valueStart..<valueEnd
            current.fields.append((name, value))
            if equalsIgnoringCase(raw, name, "content-length") {
                guard let length = decimal(raw, value) else { return .invalid("bad Content-Length") }
                if let known = current.contentLength, known != length { return .invalid("conflicting Content-Length") }
                current.contentLength = length
            } else if equalsIgnoringCase(raw, name, "transfer-encoding") {
                guard equalsIgnoringCase(raw, value, "chunked") else {
                    return .invalid("unsupported Transfer-Encoding")
                }
                current.chunked = true
            } else if equalsIgnoringCase(raw, name, "connection") {
                if containsIgnoringCase(raw, value, "close") { connectionClose = true }
                if containsIgnoringCase(raw, value, "keep-alive") { connectionKeepAlive = true }
            } else if equalsIgnoringCase(raw, name, "expect") {
                current.expectsContinue = equalsIgnoringCase(raw, value, "100-continue")
            }
            head = current
        }
    }

    // MARK: - Chunked bodies

    private enum ChunkScan {
        case incomplete(bodyBytesSoFar: Int)
        case invalid(String)
        /// The data ranges, and the offset just past the body.
        case complete([Range<Int>], end: Int)
    }

    private func scanChunks(_ raw: UnsafeRawBufferPointer, from start: Int) -> ChunkScan {
        var offset = start
        var pieces: [Range<Int>] = []
        var total = 0
        while true {
            guard let lineEnd = findLineEnd(raw, from: offset) else { return .incomplete(bodyBytesSoFar: total) }
            var sizeEnd = offset
            var size = 0
            while sizeEnd < lineEnd, let digit = hexValue(raw[sizeEnd]) {
                size = size * 16 + digit
                guard size <= Int(Int32.max) else { return .invalid("chunk too large") }
                sizeEnd += 1
            }
            guard sizeEnd > offset else { return .invalid("bad chunk size") }
            offset = lineEnd + 1
            if size == 0 {
                // Trailer fields, then a blank line.
                while true {
                    guard let trailerEnd = findLineEnd(raw, from: offset) else {
                        return .incomplete(bodyBytesSoFar: total)
                    }
                    let empty = trailerEnd == offset || (trailerEnd == offset + 1 && raw[offset] == 13)
                    offset = trailerEnd + 1
                    if empty { return .complete(pieces, end: offset) }
                }
            }
            total += size
            guard raw.count >= offset + size + 2 else { return .incomplete(bodyBytesSoFar: total) }
            pieces.append(offset..<(offset + size))
            offset += size
            if raw[offset] == 13 { offset += 1 }
            guard raw[offset] == 10 else { return .invalid("chunk not followed by CRLF") }
            offset += 1
        }
    }

    // MARK: - Byte helpers

    private func findLineEnd(_ raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        find(raw, 10, in: start..<raw.count)
    }

    private func find(_ raw: UnsafeRawBufferPointer, _ byte: UInt8, in range: Range<Int>) -> Int? {
        guard !range.isEmpty else { return nil }
        for index in range where raw[index] == byte { return index }
        return nil
    }

    private func equals(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            for index in 0..<range.count where raw[range.lowerBound + index] != expected[index] { return false }
            return true
        }
    }

    private func equalsIgnoringCase(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            for index in 0..<range.count where asciiLowercase(raw[range.lowerBound + index]) != expected[index] {
                return false
            }
            return true
        }
    }

    private func containsIgnoringCase(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString)
        -> Bool
    {
        let length = text.utf8CodeUnitCount
        guard range.count >= length else { return false }
        for start in range.lowerBound...(range.upperBound - length)
        where equalsIgnoringCase(raw, start..<(start + length), text) {
            return true
        }
        return false
    }

    private func decimal(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let byte = raw[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    private func method(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPMethod {
        if equals(raw, range, "POST") { return .POST }
        if equals(raw, range, "GET") { return .GET }
        if equals(raw, range, "DELETE") { return .DELETE }
        if equals(raw, range, "PUT") { return .PUT }
        if equals(raw, range, "HEAD") { return .HEAD }
        if equals(raw, range, "PATCH") { return .PATCH }
        if equals(raw, range, "OPTIONS") { return .OPTIONS }
        return HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self))
    }
}
