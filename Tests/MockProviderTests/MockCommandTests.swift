import Foundation
import Testing

/// Runs the built `llmq mock` as a user would.
@Suite struct MockCommandTests {
    /// The `llmq` built beside the test bundle (`swift test` builds both into one folder).
    static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["LLMQ_BIN"] { return URL(fileURLWithPath: path) }
        var folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        if folder.pathExtension == "xctest" { folder = folder.deletingLastPathComponent() }
        return folder.appendingPathComponent("llmq")
    }()

    @Test(arguments: [SIGTERM, SIGINT])
    func llmqMockPrintsItsAddressFirstAndServesUntilStopped(by stopSignal: Int32) async throws {
        let process = ChildProcess(executableURL: Self.binary)
        process.arguments = ["mock", "--port", "0", "--threads", "1", "--reply-tokens", "4", "--api-key", "sk-e2e"]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = .pipe(output)
        process.standardError = .pipe(errors)
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The first line, byte by byte: nothing else is read from stdout.
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != UInt8(ascii: "\n") {
            line.append(byte)
        }
        let first = String(decoding: line, as: UTF8.self)
        let prefix = "listening on http://127.0.0.1:"
        #expect(first.hasPrefix(prefix))
        let port = try #require(Int(first.dropFirst(prefix.count)))
        #expect(port > 0)

        let connection = try RawHTTPConnection(port: port)
        let response = try connection.request(
            body: chatBody("e2e"), headers: [("authorization", "Bearer sk-e2e"), ("content-type", "application/json")])
        #expect(response.status == 200)
        #expect(try response.json()["usage"]?["completion_tokens"] == .int(4))
        #expect(
            try connection.request(body: chatBody("e2e"), headers: [("authorization", "Bearer nope")]).status == 401)

        kill(process.processIdentifier, stopSignal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("stopped after 2 requests"))
        #expect(!log.contains("sk-e2e"))
    }

    @Test func badKnobsAreRefusedBeforeListening() throws {
        let process = ChildProcess(executableURL: Self.binary)
        process.arguments = ["mock", "--fault-500", "1.5"]
        let errors = Pipe()
        process.standardError = .pipe(errors)
        process.standardOutput = .pipe(Pipe())
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 64)
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("server_error fraction must be within 0...1"))
    }
}
