import Foundation

/// Writes a file so that readers see the old one or the whole new one, never a
/// part: the bytes go to a temporary file in the same folder, which is fsynced and
/// then renamed over the target (and the folder fsynced, so the rename survives a
/// power loss). Without `commit()`, nothing at the target changes.
public final class AtomicFileWriter {
    public let url: URL
    let temporary: URL
    private var handle: FileHandle?

    /// Starts writing `url`, whose folder must exist.
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        let folder = self.url.deletingLastPathComponent()
        temporary = folder.appendingPathComponent(
            ".\(self.url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        handle = try FileHandle(forWritingTo: temporary)
    }

    deinit {
        if handle != nil { discard() }
    }

    public func write(_ bytes: [UInt8]) throws {
        try handle?.write(contentsOf: bytes)
    }

    /// Makes the new contents durable and puts them at `url`.
    public func commit() throws {
        guard let handle else { return }
        do {
            try handle.synchronize()
            try handle.close()
            self.handle = nil
            guard rename(temporary.path, url.path) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } catch {
            discard()
            throw error
        }
        let folder = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    /// Drops what was written; `url` is left as it was.
    public func discard() {
        try? handle?.close()
        handle = nil
        unlink(temporary.path)
    }
}
