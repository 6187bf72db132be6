import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine
import LLMQProviders
import LLMQStore
import LLMQTransport

extension LLMQ {
    struct Call: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one request through the whole engine and print the answer.",
            discussion: """
                The quickest way to check keys, base URLs and prices: the answer goes to stdout
                (as it arrives with --stream), and latency, time to first token, tokens and cost
                to stderr. The response cache applies: asking again costs nothing.
                """)

        @Argument(help: "The prompt.")
        var prompt: String

        @Option(help: "The model (or alias).")
        var model: String

        @Option(help: "A system prompt.")
        var system: String?

        @Option(help: "The output cap in tokens.")
        var maxTokens: Int?

        @Option(help: "Sampling temperature.")
        var temperature: Double?

        @Option(help: "Attempts before giving up (rate-limit snoozes do not count).")
        var maxAttempts = 6

        @Flag(help: "Print the answer as it arrives.")
        var stream = false

        @Flag(help: "Print the answer, usage and cost as JSON on stdout.")
        var json = false

        @OptionGroup var cacheOptions: CacheOptions

        @OptionGroup var priceOptions: PriceOptions

        @Option(help: "Trust this certificate authority file (a local TLS server).")
        var caFile: String?

        @OptionGroup var homeOptions: HomeOptions

        func validate() throws {
            guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        }

        func run() throws {
            var line: JSONObject = ["prompt": .string(prompt), "model": .string(model)]
            if let system { line["system"] = .string(system) }
            if let maxTokens { line["max_tokens"] = .int(Int64(maxTokens)) }
            if let temperature { line["temperature"] = .number(temperature) }
            let request: SubmittedRequest
            switch RequestParser().parse(line: CanonicalJSON.string(.object(line)), number: 1) {
            case .success(let parsed): request = parsed
            case .failure(let problem):
                throw ValidationError(
                    (problem.field.map { "--\($0.replacingOccurrences(of: "_", with: "-")): " } ?? "") + problem.message
                )
            }
            let home = QueueHome.resolve(option: homeOptions.home)
            var configuration = ProviderRunner.Configuration()
            configuration.caFile = caFile
            configuration.retry.maxAttempts = maxAttempts
            let table = try priceOptions.load()
            let runner = ProviderRunner(
                transport: CurlTransport(), prices: table,
                cache: try cacheOptions.open(home: home),
                configuration: configuration)
            let showStream = stream && !json
            let printText: @Sendable (String) -> Void = { text in
                if showStream { FileHandle.standardOutput.write(Data(text.utf8)) }
            }
            let result: RunResult
            do {
                let useCache = !cacheOptions.noCache
                let onText = stream ? printText : nil
                result = try runBlocking { try await runner.run(request, useCache: useCache, onText: onText) }
            } catch let failure as RunFailure {
                FileHandle.standardError.write(
                    Data("error: \(model) failed after \(failure.attempts) attempt(s): \(failure.failure)\n".utf8))
                throw ExitCode(1)
            } catch let setup as ProviderSetupError {
                throw ValidationError(setup.description)
            }
            if json {
                print(CanonicalJSON.string(Self.json(result)))
            } else {
                if showStream && !result.cached { print() } else { print(result.answer.text) }
                FileHandle.standardError.write(Data((Self.summary(result, hasPrices: table != nil) + "\n").utf8))
            }
        }

        static func summary(_ result: RunResult, hasPrices: Bool) -> String {
            let usage = result.answer.usage
            var text = "\(result.model) via \(result.provider.rawValue): \(Int(result.latencyMilliseconds)) ms"
            if let first = result.firstTokenMilliseconds { text += " (first token \(Int(first)) ms)" }
            text += ", \(usage.totalInputTokens) in"
            if usage.cachedInputTokens > 0 { text += " (\(usage.cachedInputTokens) cached)" }
            text += " + \(usage.outputTokens) out tokens"
            if result.cached {
                text += ", from the response cache: $0 (saved \(result.savedUSD.map(money) ?? "an unknown amount"))"
            } else {
                let unknown =
                    hasPrices
                    ? "cost unknown (no price for \(result.model) in the price table)"
                    : "cost unknown (no price table: pass --prices FILE or run where prices.csv is)"
                text += ", " + (result.costUSD.map(money) ?? unknown)
            }
            if result.attempts > 1 { text += ", \(result.attempts) attempts" }
            return text
        }

        static func json(_ result: RunResult) -> JSONValue {
            var object: JSONObject = [
                "text": .string(result.answer.text), "model": .string(result.model),
                "provider": .string(result.provider.rawValue), "usage": result.answer.usage.json,
                "cached": .bool(result.cached), "attempts": .int(Int64(result.attempts)),
                "latency_ms": .int(Int64(result.latencyMilliseconds)),
                "cost_usd": result.costUSD.map { .number($0) } ?? .null,
            ]
            if let reason = result.answer.finishReason { object["finish_reason"] = .string(reason) }
            if let saved = result.savedUSD { object["saved_usd"] = .number(saved) }
            if let first = result.firstTokenMilliseconds { object["first_token_ms"] = .int(Int64(first)) }
            return .object(object)
        }
    }
}
