import Foundation
import LLMQTransport

#if canImport(Glibc)
    import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 whose every reply is a script of raw steps,
/// so tests can send exact bytes, pause, stall, close or reset a connection.
///
/// One thread per connection with blocking sockets: simple and exact, and plenty
/// for the few hundred connections a test opens. Connections are kept alive and
/// counted.
final class ScriptedServer: @unchecked Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        var headers: HTTPHeaders
        var body: [UInt8]
        /// 1 for the first connection accepted, 2 for the next...
        var connection: Int
    }

    enum Step: Sendable {
        case send([UInt8])
        case pause(Duration)
        /// Blocks until the gate opens (the test decides when the reply goes on).
        case wait(Gate)
        /// Closes with an RST (SO_LINGER 0): the client sees "connection reset".
        case reset
        /// Closes normally (FIN).
        case close
        /// Sends nothing more; waits until the client closes the connection.
        case stall
    }

    typealias Handler = @Sendable (Request) -> [Step]

    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }

    private let listener: Int32
    private let handler: Handler
    private let onConnect: [Step]
    private let lock = NSLock()
    private var accepted = 0
    private var closedByClient = 0
    private var requests: [Request] = []
    private var openSockets: Set<Int32> = []
    private var stopped = false

    /// `onConnect` runs as soon as a connection is accepted, before any request is
    /// read (for servers that talk first or hang up at once).
    init(onConnect: [Step] = [], handler: @escaping Handler) throws {
        self.handler = handler
        self.onConnect = onConnect
        let (socket, port) = try Self.listen(backlog: 1024)
        listener = socket
        self.port = port
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// Connections accepted so far.
    var acceptedConnections: Int { lock.withLock { accepted } }
    /// Connections the client closed (seen as end-of-file while reading).
    var connectionsClosedByClient: Int { lock.withLock { closedByClient } }
    /// Requests fully received so far.
    var receivedRequests: [Request] { lock.withLock { requests } }

    func stop() {
        lock.lock()
        guard !stopped else {
            lock.unlock()
            return
        }
        stopped = true
        let sockets = openSockets
        lock.unlock()
        // shutdown, not close: it wakes threads blocked in accept or read.
        Glibc.shutdown(listener, Int32(SHUT_RDWR))
        for socket in sockets { Glibc.shutdown(socket, Int32(SHUT_RDWR)) }
    }

    static func listen(backlog: Int32) throws -> (Int32, Int) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
            }
        }
        guard bound, Glibc.listen(socket, backlog) == 0 else {
            close(socket)
            throw POSIXError(.EADDRINUSE)
        }
        return (socket, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                break
            }
            lock.lock()
            if stopped {
                lock.unlock()
                close(connection)
                break
            }
            accepted += 1
            let index = accepted
            openSockets.insert(connection)
            lock.unlock()
            Thread.detachNewThread { [self] in serve(connection, index: index) }
        }
        close(listener)
    }

    private func serve(_ socket: Int32, index: Int) {
        var reader = SocketReader(socket: socket)
        var script = onConnect
        connection: while true {
            if script.isEmpty {
                guard let request = reader.readRequest(connection: index) else {
                    if reader.sawEndOfFile { lock.withLock { closedByClient += 1 } }
                    break
                }
                lock.withLock { requests.append(request) }
                script = handler(request)
            }
            defer { script = [] }
            for step in script {
                switch step {
                case .send(let bytes):
                    guard Self.writeAll(socket, bytes) else { break connection }
                case .pause(let duration):
                    Thread.sleep(
                        forTimeInterval: Double(duration.components.seconds)
                            + Double(duration.components.attoseconds) / 1e18)
                case .wait(let gate):
                    gate.wait()
                case .reset:
                    var linger = linger(l_onoff: 1, l_linger: 0)
                    setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
                    break connection
                case .close:
                    break connection
                case .stall:
                    if reader.waitForEndOfFile() { lock.withLock { closedByClient += 1 } }
                    break connection
                }
            }
        }
        lock.withLock { _ = openSockets.remove(socket) }
        close(socket)
    }

    static func writeAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                send(socket, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}

/// Reads requests (head + Content-Length body) from a blocking socket.
struct SocketReader {
    let socket: Int32
    var buffer: [UInt8] = []
    var sawEndOfFile = false

    init(socket: Int32) { self.socket = socket }

    /// Reads more bytes; false at end of file or error.
    mutating func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                sawEndOfFile = count == 0
                return false
            }
            buffer += chunk[0..<count]
            return true
        }
    }

    mutating func readRequest(connection: Int) -> ScriptedServer.Request? {
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            if let found = buffer.firstRange(of: terminator) {
                headEnd = found.upperBound
            } else if !fill() {
                return nil
            }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let requestLine = lines.removeFirst().split(separator: " ")
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(
                name: String(line[..<colon]),
                value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = Int(headers["Content-Length"] ?? "0") ?? 0
        while buffer.count < headEnd! + length {
            guard fill() else { return nil }
        }
        let body = Array(buffer[headEnd!..<(headEnd! + length)])
        buffer.removeFirst(headEnd! + length)
        return ScriptedServer.Request(
            method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body,
            connection: connection)
    }

    /// Discards input until the peer closes; true if it closed (not an error).
    mutating func waitForEndOfFile() -> Bool {
        while fill() { buffer.removeAll() }
        return sawEndOfFile
    }
}

/// A one-shot latch a script step can wait on.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }
}

extension ScriptedServer.Step {
    /// A complete response with Content-Length.
    static func response(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = []) -> Self {
        .send(responseHead(status: status, headers: headers + [("Content-Length", "\(body.count)")]) + body)
    }

    static func response(status: Int = 200, headers: [(String, String)] = [], text: String) -> Self {
        response(status: status, headers: headers, body: Array(text.utf8))
    }

    /// A status line and headers, with no framing header added.
    static func head(status: Int = 200, headers: [(String, String)]) -> Self {
        .send(responseHead(status: status, headers: headers))
    }

    /// One chunk of a `Transfer-Encoding: chunked` body.
    static func chunk(_ text: String) -> Self { chunk(Array(text.utf8)) }

    static func chunk(_ bytes: [UInt8]) -> Self {
        .send(Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10])
    }

    static var lastChunk: Self { .send(Array("0\r\n\r\n".utf8)) }

    static func responseHead(status: Int, headers: [(String, String)]) -> [UInt8] {
        var text = "HTTP/1.1 \(status) Status\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8)
    }
}

/// Polls `condition` until it holds; false if it still does not after `limit`
/// (a guard against hanging, not a performance bound).
func eventually(_ limit: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
