import Foundation
import LLMQCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tiny blocking HTTP/1.1 client on a POSIX socket, so a test sees exactly what the
/// server sent: status, headers, raw body, and how the connection ended (a reset, an
/// early close, or silence).
final class RawHTTPConnection {
    /// How reading a response ended, when it did not end well.
    enum Failure: Error, CustomStringConvertible {
        /// The peer reset the connection (ECONNRESET); `partial` is what came before.
        case reset(partial: [UInt8])
        /// The peer closed before the response was complete.
        case closed(partial: [UInt8])
        /// Nothing arrived for the read timeout.
        case timedOut(partial: [UInt8])
        case malformed(String)
        case system(String)

        var description: String {
            switch self {
            case .reset(let partial): return "connection reset after \(partial.count) bytes"
            case .closed(let partial): return "connection closed after \(partial.count) bytes"
            case .timedOut(let partial): return "timed out after \(partial.count) bytes"
            case .malformed(let reason): return "malformed response: \(reason)"
            case .system(let reason): return reason
            }
        }

        /// The bytes received before the failure.
        var partial: [UInt8] {
            switch self {
            case .reset(let partial), .closed(let partial), .timedOut(let partial): return partial
            default: return []
            }
        }
    }

    private let descriptor: Int32
    private var buffer: [UInt8] = []
    /// Every byte received for the response being read, for `Failure.partial`.
    private var received: [UInt8] = []

    init(port: Int, readTimeout: Duration = .seconds(20)) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure.system("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw Failure.system("connect() failed: errno \(code)")
        }
        setReadTimeout(readTimeout)
    }

    deinit {
        Glibc.close(descriptor)
    }

    func setReadTimeout(_ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends raw bytes.
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw Failure.system("send() failed: errno \(errno)") }
            offset += sent
        }
    }

    /// The bytes of one request.
    static func requestBytes(
        method: String = "POST", path: String, body: String? = nil, headers: [(String, String)] = defaultHeaders
    ) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "content-length: \(body.utf8.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + Array((body ?? "").utf8)
    }

    static let defaultHeaders = [("authorization", "Bearer sk-test"), ("content-type", "application/json")]

    /// Sends one request and reads its response.
    func request(
        method: String = "POST", path: String = "/v1/chat/completions", body: String? = nil,
        headers: [(String, String)] = defaultHeaders
    ) throws -> RawHTTPResponse {
        try send(Self.requestBytes(method: method, path: path, body: body, headers: headers))
        return try readResponse()
    }

    /// Reads one response: the head, then a body framed by `content-length`, chunked
    /// encoding, or the end of the connection.
    func readResponse() throws -> RawHTTPResponse {
        received = []
        let headEnd = try readUntil([13, 10, 13, 10])
        let headText = String(decoding: take(headEnd + 4), as: UTF8.self)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { throw Failure.malformed("empty head") }
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure.malformed("status line \(statusLine)")
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed("header \(line)") }
            headers.append(
                (line[..<colon].lowercased(), String(line[line.index(after: colon)...]).trimmingSpaces()))
        }
        var response = RawHTTPResponse(status: status, headers: headers, body: [])
        if (100..<200).contains(status) || status == 204 || status == 304 {
            return response
        } else if let length = response.header("content-length").flatMap({ Int($0) }) {
            try fill(length)
            response.body = take(length)
        } else if response.header("transfer-encoding") == "chunked" {
            while true {
                let lineEnd = try readUntil([13, 10])
                let sizeText = String(decoding: take(lineEnd), as: UTF8.self)
                _ = take(2)
                guard let size = Int(sizeText.split(separator: ";")[0], radix: 16) else {
                    throw Failure.malformed("chunk size \(sizeText)")
                }
                try fill(size + 2)
                response.body += take(size)
                _ = take(2)
                if size == 0 { break }
            }
        } else {
            while try readMore() {}
            response.body = take(buffer.count)
        }
        return response
    }

    /// Reads until the peer closes; returns nothing, throws how it ended if not by a
    /// clean close.
    func readToEnd() throws -> [UInt8] {
        while try readMore() {}
        return take(buffer.count)
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= marker.count {
                for start in searchFrom...(buffer.count - marker.count)
                where buffer[start..<(start + marker.count)].elementsEqual(marker) {
                    return start
                }
                searchFrom = buffer.count - marker.count + 1
            }
            guard try readMore() else { throw Failure.closed(partial: received) }
        }
    }

    private func fill(_ count: Int) throws {
        while buffer.count < count {
            guard try readMore() else { throw Failure.closed(partial: received) }
        }
    }

    private func take(_ count: Int) -> [UInt8] {
        let taken = Array(buffer.prefix(count))
        buffer.removeFirst(min(count, buffer.count))
        return taken
    }

    /// Reads what is available; false at a clean end of stream.
    private func readMore() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffer += chunk[0..<count]
            received += chunk[0..<count]
            return true
        }
        if count == 0 { return false }
        switch errno {
        case ECONNRESET: throw Failure.reset(partial: received)
        case EAGAIN, EWOULDBLOCK: throw Failure.timedOut(partial: received)
        case let code: throw Failure.system("recv() failed: errno \(code)")
        }
    }
}

/// A response as received.
struct RawHTTPResponse {
    var status: Int
    /// Names in lowercase, in order.
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0 == name }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON.
    func json() throws -> JSONValue {
        try JSONParser.parse(body)
    }

    /// The `data:` payloads of an SSE body, in order.
    var events: [String] {
        text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "<not data: \(event)>"
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
