import Foundation

/// Runs the built `llmq` executable, as a user would, in a temporary folder.
struct LLMQBinary {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `llmq` next to the test bundle (`swift test` builds both into one
    /// folder), or `$LLMQ_BIN`.
    static let url: URL = {
        if let path = ProcessInfo.processInfo.environment["LLMQ_BIN"] { return URL(fileURLWithPath: path) }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        // On Linux the test runner is `.build/debug/<package>PackageTests.xctest`.
        if folder.pathExtension == "xctest" { folder = folder.deletingLastPathComponent() }
        return folder.appendingPathComponent("llmq")
    }()

    /// A fresh working folder; the queue home defaults to `jobs/` inside it.
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes a file in the working folder and returns its name.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        try Data(contents.utf8).write(to: directory.appendingPathComponent(name))
        return name
    }

    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        try Data(bytes).write(to: directory.appendingPathComponent(name))
        return name
    }

    func read(_ path: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(path), encoding: .utf8)
    }

    func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(path).path)
    }

    /// Runs `llmq ARGS` in the working folder, with `LLMQ_HOME` unset.
    func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Output {
        let process = ChildProcess(executableURL: Self.url)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LLMQ_HOME")
        env.removeValue(forKey: "LLMQ_PRICES")
        env.merge(environment) { _, new in new }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = .pipe(out)
        process.standardError = .pipe(err)
        process.standardInput = .pipe(input)
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes before waiting, so a full pipe cannot block the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        group.wait()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// `llmq status --json`, decoded.
    func statusJSON(_ extra: [String] = []) throws -> [String: Any] {
        let output = try run(["status", "--json"] + extra)
        guard output.status == 0,
            let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        else {
            throw Failure("status --json failed (\(output.status)): \(output.stdout) \(output.stderr)")
        }
        return object
    }

    /// One job from `llmq status --json`, or nil.
    func jobStatus(_ name: String) throws -> [String: Any]? {
        let jobs = try statusJSON()["jobs"] as? [[String: Any]] ?? []
        return jobs.first { $0["name"] as? String == name }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
