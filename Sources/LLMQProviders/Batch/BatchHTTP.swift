import Foundation
import LLMQCore
import LLMQTransport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The HTTP calls every batch API makes: JSON control calls whose error statuses
/// become the provider's `ProviderFailure`, and downloads streamed into a file.
///
/// Nothing here retries: upload and create are not idempotent, and the caller
/// decides what may be sent again. Transport failures propagate as
/// `TransportError`, cancellation as `CancellationError`.
struct BatchHTTP: Sendable {
    let transport: any HTTPTransport
    let options: HTTPRequestOptions
    /// The adapter's reading of an error response (the provider's type and message).
    let failure: @Sendable (HTTPResponse) -> ProviderFailure

    /// Sends a request; a non-2xx answer throws the provider's failure.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let response = try await transport.send(request, options: options)
        guard response.isSuccess else { throw failure(response) }
        return response
    }

    /// Sends a request and parses its JSON answer.
    func json(_ request: HTTPRequest) async throws -> JSONValue {
        let response = try await send(request)
        guard let json = try? JSONParser.parse(response.body), case .object = json else {
            throw ProviderFailure(status: response.status, type: "invalid_response", message: "the body is not JSON")
        }
        return json
    }

    /// Streams the bodies of `requests`, one after the other, into `file`, each
    /// ending with a newline. Written to `file.part` first and renamed when
    /// complete, so `file` is either whole or absent.
    func download(_ requests: [HTTPRequest], to file: URL) async throws {
        let partial = file.path + ".part"
        guard FileManager.default.createFile(atPath: partial, contents: nil) else {
            throw BatchFileError(path: partial, reason: String(cString: strerror(errno)))
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        do {
            var last: UInt8 = 0x0A
            for request in requests {
                let response = try await transport.stream(request, options: options)
                guard response.isSuccess else {
                    let body = try await response.body.collect(upTo: 1 << 20)
                    throw failure(
                        HTTPResponse(
                            status: response.status, version: response.version, headers: response.headers, body: body))
                }
                for try await chunk in response.body where !chunk.isEmpty {
                    try handle.write(contentsOf: chunk)
                    last = chunk[chunk.count - 1]
                }
                if last != 0x0A {
                    try handle.write(contentsOf: [0x0A])
                    last = 0x0A
                }
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            unlink(partial)
            throw error
        }
        try Self.install(partial, as: file)
    }

    /// Writes `lines` (each without its newline) to `file` the same way `download`
    /// does: whole or not at all.
    static func write(_ lines: [[UInt8]], to file: URL) throws {
        let partial = file.path + ".part"
        var bytes: [UInt8] = []
        for line in lines {
            bytes += line
            bytes.append(0x0A)
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: partial))
        } catch {
            throw BatchFileError(path: partial, reason: "\(error)")
        }
        try install(partial, as: file)
    }

    /// Renames a finished partial file over `file` (replacing an older download).
    private static func install(_ partial: String, as file: URL) throws {
        guard rename(partial, file.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw BatchFileError(path: file.path, reason: reason)
        }
    }
}

/// A batch input or results file that could not be read or written, or a line in
/// it that is not what llmq wrote or the provider sends.
public struct BatchFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "Unable to use \(path): \(reason)" }
}

/// Reads a JSONL file line by line in fixed-size chunks, so memory does not grow
/// with the file (results files can be hundreds of megabytes). Blank lines are
/// skipped; a trailing `\r` is dropped.
enum JSONLines {
    /// Calls `body` with each non-blank line (1-based number, bytes without the newline).
    static func forEach(in file: URL, chunkSize: Int = 1 << 20, _ body: (Int, ArraySlice<UInt8>) throws -> Void)
        throws
    {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BatchFileError(path: file.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var pending: [UInt8] = []
        var number = 0
        func emit(_ line: ArraySlice<UInt8>) throws {
            number += 1
            var line = line
            if line.last == 0x0D { line = line.dropLast() }
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 }) else { return }
            try body(number, line)
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw BatchFileError(path: file.path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            var start = 0
            while let newline = buffer[start..<count].firstIndex(of: 0x0A) {
                if pending.isEmpty {
                    try emit(buffer[start..<newline])
                } else {
                    pending += buffer[start..<newline]
                    try emit(pending[...])
                    pending.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
            pending += buffer[start..<count]
        }
        if !pending.isEmpty { try emit(pending[...]) }
    }

    /// One line parsed as a JSON object, or the file error naming where it is.
    static func object(_ line: ArraySlice<UInt8>, number: Int, in file: URL) throws -> JSONValue {
        let parsed = try? line.withUnsafeBytes { try JSONParser.parse($0) }
        guard let parsed, case .object = parsed else {
            throw BatchFileError(path: file.path, reason: "line \(number) is not a JSON object")
        }
        return parsed
    }
}

/// Small pieces the batch APIs share.
enum BatchSupport {
    /// `{"a":…}`-style line bytes written in the given member order (the canonical
    /// writer would sort them), so input files read naturally: id first, body last.
    static func line(_ members: [(String, JSONValue)]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        for (index, member) in members.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(member.0, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            CanonicalJSON.write(member.1, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// A count the provider may send as a number or (proto JSON int64) a string.
    static func count(_ value: JSONValue?) -> Int? {
        if let number = value?.intValue { return Int(number) }
        return value?.stringValue.flatMap { Int($0) }
    }

    /// The size of a local file in bytes.
    static func size(of file: URL) throws -> Int {
        var info = stat()
        guard stat(file.path, &info) == 0 else {
            throw BatchFileError(path: file.path, reason: String(cString: strerror(errno)))
        }
        return Int(info.st_size)
    }

    /// Writes `prefix`, the non-blank lines of `file` joined by commas, and `suffix`
    /// to `<file>.body-<random>` (a JSON array's elements from a JSONL file),
    /// streamed, and returns where; the caller removes it once sent. Each call has
    /// its own file: another worker's send of the same batch may still be reading one.
    static func joinedLines(of file: URL, prefix: String, suffix: String) throws -> URL {
        let target = file.appendingPathExtension("body-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        let path = target.path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchFileError(path: path, reason: String(cString: strerror(errno))) }
        var buffer: [UInt8] = Array(prefix.utf8)
        buffer.reserveCapacity(1 << 20)
        func drain() throws {
            var written = 0
            while written < buffer.count {
                let count = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw BatchFileError(path: path, reason: String(cString: strerror(errno)))
                }
                written += count
            }
            buffer.removeAll(keepingCapacity: true)
        }
        do {
            var first = true
            try JSONLines.forEach(in: file) { _, line in
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                buffer += line
                if buffer.count >= 1 << 20 { try drain() }
            }
            buffer += Array(suffix.utf8)
            try drain()
            close(fd)
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        return target
    }

    /// A path segment or query value with everything but unreserved characters
    /// percent-encoded.
    static func escaped(_ text: String) -> String {
        let allowed = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A result line whose body is a provider's response, as the adapter's parser
    /// takes it.
    static func response(status: Int, _ body: JSONValue) -> HTTPResponse {
        HTTPResponse(status: status, body: CanonicalJSON.encode(body))
    }
}
