import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file (or standard input) line by line in fixed-size chunks, so memory
/// does not grow with the file. Lines are split on `\n`; a trailing `\r` is dropped,
/// and so is a UTF-8 byte order mark at the start.
/// Used by one thread at a time: created on one, then handed to the parsing thread.
final class LineReader: @unchecked Sendable {
    /// Why a file could not be read.
    struct ReadError: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "Unable to read \(path): \(reason)" }
    }

    private let fd: Int32
    private let ownsDescriptor: Bool
    private let path: String
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var atEOF = false
    private var lineNumber = 0

    /// Opens `path`, or standard input for "-".
    init(path: String, chunkSize: Int = 1 << 20) throws {
        self.path = path
        if path == "-" {
            fd = 0
            ownsDescriptor = false
        } else {
            let opened = open(path, O_RDONLY | O_CLOEXEC)
            guard opened >= 0 else { throw ReadError(path: path, reason: String(cString: strerror(errno))) }
            var info = stat()
            if fstat(opened, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                close(opened)
                throw ReadError(path: path, reason: "it is a directory")
            }
            fd = opened
            ownsDescriptor = true
        }
        buffer = [UInt8](repeating: 0, count: chunkSize)
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Calls `body` with each line (1-based number, bytes without the newline) until
    /// the end of input. The bytes are valid only during the call.
    func forEachLine(_ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        while true {
            // Find the next newline in what is buffered.
            let found: Int? = buffer.withUnsafeBytes { raw in
                guard end > start else { return nil }
                let base = raw.baseAddress! + start
                guard let hit = memchr(base, 0x0A, end - start) else { return nil }
                return start + (UnsafeRawPointer(hit) - UnsafeRawPointer(base))
            }
            if let newline = found {
                try emit(from: start, to: newline, body)
                start = newline + 1
                continue
            }
            if atEOF {
                if end > start { try emit(from: start, to: end, body) }
                start = end
                return
            }
            try fill()
        }
    }

    private func emit(from lineStart: Int, to lineEnd: Int, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws
    {
        lineNumber += 1
        try buffer.withUnsafeBytes { raw in
            var from = lineStart
            var to = lineEnd
            if to > from, raw[to - 1] == 0x0D { to -= 1 }
            if lineNumber == 1, to - from >= 3, raw[from] == 0xEF, raw[from + 1] == 0xBB, raw[from + 2] == 0xBF {
                from += 3
            }
            try body(lineNumber, UnsafeRawBufferPointer(rebasing: raw[from..<to]))
        }
    }

    /// Moves the partial line to the front and reads more; grows the buffer for
    /// lines longer than it.
    private func fill() throws {
        if start > 0 {
            let remaining = end - start
            if remaining > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, remaining)
                }
            }
            start = 0
            end = remaining
        }
        if end == buffer.count {
            buffer.append(contentsOf: repeatElement(0, count: buffer.count))
        }
        let count = buffer.withUnsafeMutableBytes { raw in
            read(fd, raw.baseAddress! + end, raw.count - end)
        }
        if count < 0 {
            if errno == EINTR { return }
            throw ReadError(path: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 {
            atEOF = true
        } else {
            end += count
        }
    }
}
