import Foundation
import LLMQCore

/// The folder that holds the queue's state: `queue.sqlite`, `cache.sqlite`, and one
/// folder per job for its output files.
///
/// Resolved from `--home DIR`, else `LLMQ_HOME`, else `jobs/` in the current directory.
public struct QueueHome: Sendable, Equatable {
    public var url: URL

    public init(url: URL) {
        self.url = url.standardizedFileURL
    }

    /// The home a command should use, given its `--home` option and the environment.
    public static func resolve(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> QueueHome
    {
        let path = option ?? environment["LLMQ_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "jobs"
        return QueueHome(url: URL(fileURLWithPath: path))
    }

    public var path: String { url.path }
    public var queueDatabase: URL { url.appendingPathComponent("queue.sqlite") }
    public var cacheDatabase: URL { url.appendingPathComponent("cache.sqlite") }

    /// The folder of a job's output files.
    public func jobFolder(_ job: String) -> URL { url.appendingPathComponent(job, isDirectory: true) }

    /// Creates the home folder if needed.
    public func create() throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Whether a queue exists here yet.
    public var hasQueue: Bool { FileManager.default.fileExists(atPath: queueDatabase.path) }
}

/// Rules for job names: they name folders, so they are kept to a safe alphabet.
public enum JobName {
    /// Nil if the name is acceptable, else why not.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "a job name cannot be empty" }
        if name.utf8.count > 100 { return "a job name is at most 100 characters" }
        if name.hasPrefix(".") || name.hasPrefix("-") { return "a job name cannot start with '.' or '-'" }
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
                || $0 == "."
        }
        return allowed ? nil : "a job name may use letters, digits, '-', '_' and '.' only"
    }

    /// The job name derived from an input file: its base name without extensions,
    /// with other characters replaced by '-'.
    public static func derived(fromFile path: String) -> String {
        if path == "-" { return "stdin" }
        var base = (path as NSString).lastPathComponent
        while let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
        let cleaned = String(
            base.unicodeScalars.map { scalar -> Character in
                let ok =
                    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                    || scalar == "-" || scalar == "_"
                return ok ? Character(scalar) : "-"
            })
        let trimmed = cleaned.drop { $0 == "-" || $0 == "." }
        return trimmed.isEmpty ? "default" : String(trimmed.prefix(100))
    }
}
