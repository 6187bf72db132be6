import Foundation
import Testing

@testable import LLMQTransport

/// Request bodies streamed from bytes and files (`HTTPRequest.upload`).
@Suite struct UploadTests {
    let transport = CurlTransport()

    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "llmq-upload-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [HTTPMethod.post, .put])
    func sendsBytesAndFilesInOrder(method: HTTPMethod) async throws {
        // Larger than curl's upload buffer, so the file is read in many calls.
        let fileBytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let path = try temporaryFile(fileBytes)
        defer { unlink(path) }
        let empty = try temporaryFile([])
        defer { unlink(empty) }
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        let upload = HTTPUpload([.bytes(Array("head:".utf8)), .file(path), .file(empty), .bytes(Array(":tail".utf8))])
        let response = try await transport.send(
            HTTPRequest(
                method: method, url: server.baseURL + "/upload", headers: ["Content-Type": "application/jsonl"],
                upload: upload))
        #expect(response.status == 200)
        let received = try #require(server.receivedRequests.first)
        let expected = Array("head:".utf8) + fileBytes + Array(":tail".utf8)
        #expect(received.method == method.rawValue)
        #expect(received.headers["content-length"] == "\(expected.count)")
        #expect(received.headers["content-type"] == "application/jsonl")
        #expect(received.body.count == expected.count)
        #expect(received.body == expected)
        #expect(try upload.collect() == expected)
    }

    @Test func unlabelledUploadIsNotAForm() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        _ = try await transport.send(
            HTTPRequest(method: .post, url: server.baseURL, upload: HTTPUpload([.bytes([1, 2, 3])])))
        let received = try #require(server.receivedRequests.first)
        #expect(received.headers["content-type"] == nil)
        #expect(received.body == [1, 2, 3])
    }

    @Test func missingFileIsAClearErrorBeforeSending() async throws {
        let server = try ScriptedServer { _ in [.response(text: "ok")] }
        let path = NSTemporaryDirectory() + "llmq-upload-missing-\(UUID().uuidString)"
        await #expect {
            _ = try await transport.send(
                HTTPRequest(method: .post, url: server.baseURL, upload: HTTPUpload([.file(path)])))
        } throws: { error in
            guard case TransportError.invalidRequest(let reason) = error else { return false }
            return reason.contains(path) && reason.contains("No such file")
        }
        #expect(server.receivedRequests.isEmpty)
    }

    @Test func fileThatShrinksStopsTheReader() throws {
        let path = try temporaryFile([UInt8](repeating: 7, count: 1_000))
        defer { unlink(path) }
        // Measured at 1,000 bytes when the request is sent, then cut to 10.
        let reader = try UploadReader(HTTPUpload([.bytes([1]), .file(path)]))
        #expect(reader.length == 1_001)
        truncate(path, 10)
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = buffer.withUnsafeMutableBytes { reader.read(into: $0) }
        // What could be read comes first; the next read reports the cut.
        #expect(count == 11)
        #expect(buffer.withUnsafeMutableBytes { reader.read(into: $0) } == -1)
        #expect(reader.error?.contains("shrank") == true)
    }

    @Test func readerSeeksBackForARetry() throws {
        let path = try temporaryFile(Array("0123456789".utf8))
        defer { unlink(path) }
        let reader = try UploadReader(HTTPUpload([.bytes(Array("ab".utf8)), .file(path), .bytes(Array("yz".utf8))]))
        var buffer = [UInt8](repeating: 0, count: 5)
        #expect(buffer.withUnsafeMutableBytes { reader.read(into: $0) } == 5)
        #expect(String(decoding: buffer, as: UTF8.self) == "ab012")
        #expect(reader.seek(to: 0))
        var all = [UInt8](repeating: 0, count: 64)
        #expect(all.withUnsafeMutableBytes { reader.read(into: $0) } == 14)
        #expect(String(decoding: all.prefix(14), as: UTF8.self) == "ab0123456789yz")
        #expect(reader.seek(to: 11))
        #expect(all.withUnsafeMutableBytes { reader.read(into: $0) } == 3)
        #expect(String(decoding: all.prefix(3), as: UTF8.self) == "9yz")
        #expect(!reader.seek(to: 15))
    }

    @Test func bodyAndUploadTogetherAreRefused() async throws {
        await #expect {
            _ = try await transport.send(
                HTTPRequest(method: .post, url: "http://127.0.0.1:1/", body: [1], upload: HTTPUpload([.bytes([2])])))
        } throws: { error in
            if case TransportError.invalidRequest = error { return true }
            return false
        }
    }
}
