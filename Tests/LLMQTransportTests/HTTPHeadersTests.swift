import LLMQTransport
import Testing

@Suite struct HTTPHeadersTests {
    @Test func lookupIgnoresCaseAndKeepsRepeats() {
        var headers: HTTPHeaders = ["Content-Type": "application/json", "X-Rate": "1"]
        headers.add(name: "x-rate", value: "2")
        #expect(headers["CONTENT-TYPE"] == "application/json")
        #expect(headers.values(for: "X-RATE") == ["1", "2"])
        #expect(headers.count == 3)
        headers.replaceOrAdd(name: "X-Rate", value: "3")
        #expect(headers.values(for: "x-rate") == ["3"])
        headers.remove("content-type")
        #expect(!headers.contains("Content-Type"))
        #expect(headers.map(\.name) == ["X-Rate"])
    }

    @Test func credentialValuesAreRedactedInDescriptions() {
        let headers: HTTPHeaders = [
            "Authorization": "Bearer sk-1", "X-Api-Key": "k-2", "x-goog-api-key": "k-3", "Accept": "text/plain",
        ]
        #expect(
            headers.description
                == "[Authorization: <redacted>, X-Api-Key: <redacted>, x-goog-api-key: <redacted>, Accept: text/plain]")
    }
}
