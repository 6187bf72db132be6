import LLMQCore
import MockProvider

/// Runs `body` against a fresh server on a free port, then shuts it down.
func withMockServer(
    _ configure: (inout MockProviderServer.Configuration) -> Void = { _ in },
    _ body: (MockProviderServer) async throws -> Void
) async throws {
    var configuration = MockProviderServer.Configuration()
    configuration.threads = 1
    configure(&configuration)
    let server = try await MockProviderServer.start(configuration)
    do {
        try await body(server)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

/// A chat completions body with one user message.
func chatBody(_ prompt: String = "Say hi.", model: String = "gpt-4o-mini", extra: String = "") -> String {
    var prompt = prompt
    var escaped: [UInt8] = []
    CanonicalJSON.writeString(prompt, to: &escaped)
    prompt = String(decoding: escaped, as: UTF8.self)
    return "{\"model\":\"\(model)\",\"messages\":[{\"role\":\"user\",\"content\":\(prompt)}]\(extra)}"
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }
}

/// Waits (briefly sleeping) until `condition` holds, for state the server reaches
/// asynchronously, such as a connection's close being noticed.
func eventually(_ condition: () -> Bool) async throws -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
