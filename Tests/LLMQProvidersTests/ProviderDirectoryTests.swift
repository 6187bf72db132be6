import LLMQCore
import LLMQProviders
import LLMQTransport
import Testing

@Suite struct ProviderDirectoryTests {
    @Test func defaultsAndOverridesFromTheEnvironment() throws {
        let openai = try ProviderDirectory.endpoint(for: .openai, environment: ["OPENAI_API_KEY": "sk-a"])
        #expect(openai.baseURL == "https://api.openai.com/v1")
        #expect(openai.keys == ["sk-a"])
        #expect(openai.httpVersion == .http2)
        let local = try ProviderDirectory.endpoint(
            for: .anthropic, environment: ["ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080"])
        #expect(local.baseURL == "http://127.0.0.1:8080")
        #expect(local.httpVersion == .http1_1)
        #expect(local.adapter.provider == .anthropic)
    }

    @Test func severalKeysAreSplitAndTrimmed() throws {
        let endpoint = try ProviderDirectory.endpoint(
            for: .together, environment: ["TOGETHER_API_KEY": " k1, k2 ,,k3 "])
        #expect(endpoint.keys == ["k1", "k2", "k3"])
        #expect(endpoint.keyVariable == "TOGETHER_API_KEY")
    }

    @Test func geminiAlsoReadsGoogleAPIKey() throws {
        let endpoint = try ProviderDirectory.endpoint(for: .gemini, environment: ["GOOGLE_API_KEY": "g"])
        #expect(endpoint.keys == ["g"])
        #expect(endpoint.keyVariable == "GOOGLE_API_KEY")
        let both = try ProviderDirectory.endpoint(
            for: .gemini, environment: ["GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"])
        #expect(both.keys == ["m"])
    }

    @Test func aMissingKeyNamesTheVariableAndNeverAKey() {
        let error = #expect(throws: ProviderSetupError.self) {
            try ProviderDirectory.endpoint(for: .gemini, environment: ["OPENAI_API_KEY": "sk-secret"])
        }
        #expect(
            error?.description
                == "no API key for gemini: set GEMINI_API_KEY or GOOGLE_API_KEY (several keys: comma-separated)")
    }

    @Test func anOpenAICompatibleServerNeedsAnAddressButNoKey() throws {
        let error = #expect(throws: ProviderSetupError.self) {
            try ProviderDirectory.endpoint(for: .openaiCompatible, environment: [:])
        }
        #expect(error?.description.contains("set OPENAI_BASE_URL") == true)
        let endpoint = try ProviderDirectory.endpoint(
            for: .openaiCompatible, environment: ["OPENAI_BASE_URL": "http://localhost:11434/v1"])
        #expect(endpoint.keys == [""])
        #expect(
            throws: ProviderSetupError.self,
            performing: {
                try ProviderDirectory.endpoint(
                    for: .openai, environment: ["OPENAI_BASE_URL": "ftp://x", "OPENAI_API_KEY": "k"])
            })
    }
}
