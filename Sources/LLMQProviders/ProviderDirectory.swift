import Foundation
import LLMQCore
import LLMQTransport

/// Where one provider is reached and with which keys.
public struct ProviderEndpoint: Sendable, Equatable {
    public var provider: Provider
    /// The API root the adapter appends its paths to.
    public var baseURL: String
    /// API keys, used round-robin, each its own lane. May hold one empty key for a
    /// local server that needs none.
    public var keys: [String]
    /// The environment variable the keys came from (for messages; never the keys).
    public var keyVariable: String
    /// HTTP/2 for OpenAI and Gemini, HTTP/1.1 keep-alive for Anthropic and Together
    /// (measured: HTTP/2 hurt Together and did not help Anthropic).
    public var httpVersion: HTTPVersion

    /// The adapter that speaks this provider's API.
    public var adapter: any ProviderAdapter {
        switch provider {
        case .openai, .together, .openaiCompatible: OpenAIAdapter(provider: provider, baseURL: baseURL)
        case .anthropic: AnthropicAdapter(baseURL: baseURL)
        case .gemini: GeminiAdapter(baseURL: baseURL)
        }
    }

    /// The provider's batch API over `transport`, or nil where llmq has none: an
    /// OpenAI-compatible server (no batch API; its jobs run online).
    public func batchAPI(transport: any HTTPTransport) -> (any ProviderBatchAPI)? {
        let options = HTTPRequestOptions(version: httpVersion, idleTimeout: .seconds(120))
        return switch provider {
        case .openai:
            OpenAIBatchAPI(
                adapter: OpenAIAdapter(provider: provider, baseURL: baseURL), transport: transport, options: options)
        case .anthropic:
            AnthropicBatchAPI(adapter: AnthropicAdapter(baseURL: baseURL), transport: transport, options: options)
        case .gemini: GeminiBatchAPI(adapter: GeminiAdapter(baseURL: baseURL), transport: transport, options: options)
        case .together:
            TogetherBatchAPI(
                adapter: OpenAIAdapter(provider: provider, baseURL: baseURL), transport: transport, options: options)
        case .openaiCompatible: nil
        }
    }
}

/// Why a provider cannot be used as configured. Never contains a key.
public struct ProviderSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var provider: Provider
    public var description: String
}

/// Reads base URLs and keys from the environment: `OPENAI_BASE_URL`,
/// `ANTHROPIC_BASE_URL`, `GEMINI_BASE_URL`, `TOGETHER_BASE_URL`; `OPENAI_API_KEY`,
/// `ANTHROPIC_API_KEY`, `GEMINI_API_KEY` (or `GOOGLE_API_KEY`), `TOGETHER_API_KEY`,
/// each possibly several keys separated by commas.
public enum ProviderDirectory {
    struct Defaults {
        var baseVariable: String
        var baseURL: String?
        var keyVariables: [String]
        var keyRequired: Bool
        var httpVersion: HTTPVersion
    }

    static func defaults(_ provider: Provider) -> Defaults {
        switch provider {
        case .openai:
            Defaults(
                baseVariable: "OPENAI_BASE_URL", baseURL: "https://api.openai.com/v1", keyVariables: ["OPENAI_API_KEY"],
                keyRequired: true, httpVersion: .http2)
        case .anthropic:
            Defaults(
                baseVariable: "ANTHROPIC_BASE_URL", baseURL: "https://api.anthropic.com",
                keyVariables: ["ANTHROPIC_API_KEY"], keyRequired: true, httpVersion: .http1_1)
        case .gemini:
            Defaults(
                baseVariable: "GEMINI_BASE_URL", baseURL: "https://generativelanguage.googleapis.com",
                keyVariables: ["GEMINI_API_KEY", "GOOGLE_API_KEY"], keyRequired: true, httpVersion: .http2)
        case .together:
            Defaults(
                baseVariable: "TOGETHER_BASE_URL", baseURL: "https://api.together.xyz/v1",
                keyVariables: ["TOGETHER_API_KEY"], keyRequired: true, httpVersion: .http1_1)
        case .openaiCompatible:
            // A local server has no default address, and often needs no key.
            Defaults(
                baseVariable: "OPENAI_BASE_URL", baseURL: nil, keyVariables: ["OPENAI_API_KEY"], keyRequired: false,
                httpVersion: .http1_1)
        }
    }

    /// The endpoint of a provider as the environment configures it.
    public static func endpoint(for provider: Provider, environment: [String: String]) throws(ProviderSetupError)
        -> ProviderEndpoint
    {
        let defaults = defaults(provider)
        func value(_ name: String) -> String? {
            environment[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        guard let baseURL = value(defaults.baseVariable) ?? defaults.baseURL else {
            throw ProviderSetupError(
                provider: provider,
                description: "openai/<model> goes to an OpenAI-compatible server: set \(defaults.baseVariable) "
                    + "to its address (e.g. http://localhost:8000/v1)")
        }
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw ProviderSetupError(
                provider: provider, description: "\(defaults.baseVariable) must start with http:// or https://")
        }
        let variable = defaults.keyVariables.first { value($0) != nil } ?? defaults.keyVariables[0]
        var keys = (value(variable) ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        if keys.isEmpty {
            guard !defaults.keyRequired else {
                let names = defaults.keyVariables.joined(separator: " or ")
                throw ProviderSetupError(
                    provider: provider,
                    description: "no API key for \(provider.rawValue): set \(names) (several keys: comma-separated)")
            }
            keys = [""]
        }
        return ProviderEndpoint(
            provider: provider, baseURL: baseURL, keys: keys, keyVariable: variable,
            httpVersion: defaults.httpVersion)
    }
}
