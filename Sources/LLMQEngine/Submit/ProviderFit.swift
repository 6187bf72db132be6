import LLMQCore
import LLMQProviders

/// Requests their provider cannot express (Anthropic has no `seed`, its
/// temperature stops at 1, Gemini has no `logit_bias`, …), found at submit time by
/// the very adapter that would send them, rather than failing later in `llmq work`.
/// OpenAI-shaped providers take the canonical request as it is.
enum ProviderFit {
    private static let anthropic = AnthropicAdapter(baseURL: "https://api.anthropic.com")
    private static let gemini = GeminiAdapter(baseURL: "https://generativelanguage.googleapis.com")

    /// Why `request` (from input line `line`) cannot be sent as it is, if it cannot.
    static func problem(_ request: SubmittedRequest, line: Int) -> InputProblem? {
        let name: String
        switch request.route.provider {
        case .anthropic: name = "Anthropic"
        case .gemini: name = "Gemini"
        default: return nil
        }
        guard let canonical = try? JSONParser.parse(request.canonical) else { return nil }
        do {
            if request.route.provider == .anthropic {
                try anthropic.validate(canonical, route: request.route)
            } else {
                try gemini.validate(canonical, route: request.route)
            }
            return nil
        } catch {
            return InputProblem(
                line: line, field: quotedName(in: error.message), customID: request.customID,
                message: "\(request.route.model) is served by \(name): \(error.message)")
        }
    }

    /// The first `"name"` an adapter's refusal quotes (the parameter at fault).
    static func quotedName(in message: String) -> String? {
        let parts = message.split(separator: "\"", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts[1].isEmpty, !parts[1].contains(" ") else { return nil }
        return String(parts[1])
    }
}
