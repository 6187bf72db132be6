import LLMQCore
import NIOHTTP1

/// Bytes being written, in a plain array: answers are built here, then handed to NIO
/// in one piece.
///
/// Each write to a `ByteBuffer` pays a dynamic exclusivity check (its storage is a
/// class), and an answer is some sixty small writes: profiled, those checks were
/// about 7 % of the server's CPU. Writes to a local array are checked at compile time.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    mutating func writeStaticString(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func writeString(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func writeByte(_ byte: UInt8) {
        bytes.append(byte)
    }

    mutating func writeBytes(_ other: some Collection<UInt8>) {
        bytes.append(contentsOf: other)
    }

    // MARK: - Numbers

    /// Appends an integer in decimal without going through `String`.
    mutating func writeDecimal(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var rest = value.magnitude
        var divisor: UInt = 1
        while rest / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Appends a non-negative integer in lowercase hexadecimal, padded with zeros.
    mutating func writeHexadecimal(_ value: UInt64, minimumDigits: Int = 1) {
        var count = minimumDigits
        while count < 16, value >> (4 * count) != 0 { count += 1 }
        for position in stride(from: count - 1, through: 0, by: -1) {
            bytes.append(Self.hexDigits[Int((value >> (4 * position)) & 0xF)])
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    // MARK: - JSON

    /// Appends a JSON string literal, escaped as llmq's canonical form escapes.
    mutating func writeJSONString(_ text: String) {
        CanonicalJSON.writeString(text, to: &bytes)
    }

    /// Appends a JSON string or `null`.
    mutating func writeJSONStringOrNull(_ text: String?) {
        if let text { writeJSONString(text) } else { writeStaticString("null") }
    }

    // MARK: - HTTP/1.1 framing

    /// Appends a status line, the headers, the framing header and the blank line.
    /// Without a length the body is chunked, or (`chunked` false, for HTTP/1.0) ends
    /// with the connection.
    mutating func writeResponseHead(
        version: HTTPVersion, status: HTTPResponseStatus, headers: [(name: String, value: String)], contentLength: Int?,
        chunked: Bool, connection: String?
    ) {
        writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeDecimal(Int(status.code))
        writeByte(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
        for (name, value) in headers {
            writeString(name)
            writeStaticString(": ")
            writeString(value)
            writeStaticString("\r\n")
        }
        if let contentLength {
            writeStaticString("content-length: ")
            writeDecimal(contentLength)
            writeStaticString("\r\n")
        } else if chunked {
            writeStaticString("transfer-encoding: chunked\r\n")
        }
        if let connection {
            writeStaticString("connection: ")
            writeString(connection)
            writeStaticString("\r\n")
        }
        writeStaticString("\r\n")
    }

    /// Appends a piece of a body: as a chunk (nothing for an empty piece, which would
    /// end the body), or as it is.
    mutating func writeBodyPiece(_ piece: some Collection<UInt8>, chunked: Bool) {
        guard chunked else {
            bytes.append(contentsOf: piece)
            return
        }
        guard !piece.isEmpty else { return }
        writeHexadecimal(UInt64(piece.count))
        writeStaticString("\r\n")
        bytes.append(contentsOf: piece)
        writeStaticString("\r\n")
    }

    /// Appends the last chunk, which ends a chunked body.
    mutating func writeLastChunk() {
        writeStaticString("0\r\n\r\n")
    }
}
