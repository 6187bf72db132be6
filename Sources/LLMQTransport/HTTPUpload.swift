#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A request body read from its parts as it goes out — bytes held in memory and
/// files read from disk — so a 200 MB batch file is sent without being loaded.
///
/// Files are measured when the request is sent and must not change while it is in
/// flight: one that shrinks fails the request.
public struct HTTPUpload: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case bytes([UInt8])
        /// The whole of a local file, by path.
        case file(String)
    }

    public var parts: [Part]

    public init(_ parts: [Part]) { self.parts = parts }

    /// The size of each part now; throws `TransportError.invalidRequest` naming a
    /// file that cannot be read.
    public func sizes() throws -> [Int64] {
        try parts.map { part in
            switch part {
            case .bytes(let bytes): return Int64(bytes.count)
            case .file(let path):
                var info = stat()
                guard stat(path, &info) == 0 else {
                    throw TransportError.invalidRequest(
                        reason: "cannot read \(path): \(String(cString: strerror(errno)))")
                }
                return Int64(info.st_size)
            }
        }
    }

    /// The whole body in memory (for test doubles of `HTTPTransport` and small bodies).
    public func collect() throws -> [UInt8] {
        let reader = try UploadReader(self)
        var bytes = [UInt8](repeating: 0, count: Int(reader.length))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes {
                reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            guard count > 0 else {
                throw TransportError.invalidRequest(reason: reader.error ?? "the body ended early")
            }
            filled += count
        }
        return bytes
    }
}

/// Reads an `HTTPUpload` front to back for curl's read callback, and seeks within
/// it when curl needs to send the body again (a request retried on a fresh
/// connection). Used on one thread at a time.
final class UploadReader: @unchecked Sendable {
    let parts: [HTTPUpload.Part]
    let sizes: [Int64]
    let length: Int64
    private var index = 0
    private var offset: Int64 = 0
    private var descriptor: Int32 = -1
    /// Why reading stopped, if it failed.
    private(set) var error: String?

    init(_ upload: HTTPUpload) throws {
        parts = upload.parts
        sizes = try upload.sizes()
        length = sizes.reduce(0, +)
    }

    deinit { closeFile() }

    /// Fills `buffer` with the next bytes; 0 at the end, -1 on a read error (see
    /// `error`; bytes read before the error are returned first).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count && index < parts.count {
            let remaining = sizes[index] - offset
            if remaining <= 0 {
                closeFile()
                index += 1
                offset = 0
                continue
            }
            let wanted = min(Int64(buffer.count - written), remaining)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + Int(wanted))])
            switch parts[index] {
            case .bytes(let bytes):
                bytes.withUnsafeBytes { source in
                    target.copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: source[Int(offset)..<(Int(offset) + Int(wanted))]))
                }
                offset += wanted
                written += Int(wanted)
            case .file(let path):
                if descriptor < 0 {
                    descriptor = open(path, O_RDONLY | O_CLOEXEC)
                    guard descriptor >= 0 else {
                        error = "cannot read \(path): \(String(cString: strerror(errno)))"
                        return written > 0 ? written : -1
                    }
                }
                let count = pread(descriptor, target.baseAddress, target.count, off_t(offset))
                if count < 0 {
                    if errno == EINTR { continue }
                    error = "cannot read \(path): \(String(cString: strerror(errno)))"
                    return written > 0 ? written : -1
                }
                guard count > 0 else {
                    error = "\(path) shrank while it was being sent"
                    return written > 0 ? written : -1
                }
                offset += Int64(count)
                written += count
            }
        }
        return written
    }

    /// Moves to `position` bytes from the start of the body.
    func seek(to position: Int64) -> Bool {
        guard position >= 0 && position <= length else { return false }
        closeFile()
        var rest = position
        index = 0
        while index < sizes.count && rest >= sizes[index] {
            rest -= sizes[index]
            index += 1
        }
        offset = rest
        return true
    }

    private func closeFile() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
    }
}
