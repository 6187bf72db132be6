/// The providers llmq can send requests to.
public enum Provider: String, Sendable, CaseIterable, Codable {
    case openai
    case anthropic
    case gemini
    case together
    /// Any server that speaks the OpenAI chat completions API (vLLM, Ollama, LiteLLM).
    case openaiCompatible = "openai-compatible"
}

/// Where a model name sends a request: the provider and the model it is asked for.
public struct Route: Sendable, Hashable {
    public var provider: Provider
    /// The model name as llmq records it (aliases resolved, prefixes kept).
    public var model: String
    /// The model name as the provider's API expects it (routing prefixes removed).
    public var providerModel: String

    public init(provider: Provider, model: String, providerModel: String) {
        self.provider = provider
        self.model = model
        self.providerModel = providerModel
    }
}

/// Maps model names to providers, and aliases to model names. The one table of both.
public enum ModelRouter {
    /// Short names users may type, and the model each one stands for.
    public static let aliases: [String: String] = [
        "haiku": "claude-haiku-4-5",
        "sonnet": "claude-sonnet-4-5",
        "opus": "claude-opus-4-5",
        "flash": "gemini-2.5-flash",
        "flash-lite": "gemini-2.5-flash-lite",
        "gemini-pro": "gemini-2.5-pro",
        "gpt-mini": "gpt-5-mini",
        "gpt-nano": "gpt-5-nano",
    ]

    static let maximumAliasLength = aliases.keys.map(\.utf8.count).max() ?? 0

    /// The route for a model name, or nil when no provider serves it.
    ///
    /// `gpt-*`, `o1*`, `o3*`, `o4*`, `chatgpt-*` go to OpenAI; `claude-*` to Anthropic;
    /// `gemini-*` and `gemini/…` to Gemini; `together_ai/…` to Together; `openai/…` to
    /// an OpenAI-compatible server.
    public static func route(_ name: String) -> Route? {
        // Alias names are short; skip hashing the (usually longer) real model names.
        let model = name.utf8.count <= maximumAliasLength ? aliases[name] ?? name : name
        func has(_ prefix: String) -> Bool { model.hasPrefix(prefix) }
        func after(_ prefix: String) -> String { String(model.dropFirst(prefix.count)) }
        if has("together_ai/"), model.count > "together_ai/".count {
            return Route(provider: .together, model: model, providerModel: after("together_ai/"))
        }
        if has("openai/"), model.count > "openai/".count {
            return Route(provider: .openaiCompatible, model: model, providerModel: after("openai/"))
        }
        if has("gemini/"), model.count > "gemini/".count {
            return Route(provider: .gemini, model: model, providerModel: after("gemini/"))
        }
        if has("gpt-") || has("o1") || has("o3") || has("o4") || has("chatgpt-") {
            return Route(provider: .openai, model: model, providerModel: model)
        }
        if has("claude-") { return Route(provider: .anthropic, model: model, providerModel: model) }
        if has("gemini-") { return Route(provider: .gemini, model: model, providerModel: model) }
        return nil
    }

    /// A one-line explanation of which model names are served, for error messages.
    public static let servedModelsHint =
        "use a gpt-*, o1/o3/o4*, chatgpt-*, claude-*, gemini-* model, together_ai/<model>, "
        + "openai/<model> for an OpenAI-compatible server, or an alias ("
        + aliases.keys.sorted().joined(separator: ", ") + ")"
}
