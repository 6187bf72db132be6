import Foundation

/// An exclusive advisory lock on a file (`flock`), held while `body` runs and
/// released by the kernel if the process dies. For what several llmq processes
/// must not do at once: migrate a database they both just opened, append to a
/// job's output files.
public enum FileLock {
    public static func withLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw CocoaError(.fileLocking, userInfo: [NSFilePathErrorKey: path]) }
        }
        return try body()
    }
}
