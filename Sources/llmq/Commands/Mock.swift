import ArgumentParser
import Foundation
import LLMQCore
import MockProvider

extension LLMQ {
    struct Mock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a fake LLM provider on this machine, for tests, benchmarks and demos.",
            discussion: """
                Prints "listening on http://127.0.0.1:PORT" as its first line, then serves until \
                interrupted (SIGINT or SIGTERM). It speaks OpenAI, Anthropic, Gemini and Together on \
                one port: point llmq or the providers' SDKs at it with \
                OPENAI_BASE_URL=http://127.0.0.1:PORT/v1, \
                TOGETHER_BASE_URL=http://127.0.0.1:PORT/together/v1 (the together SDK adds /v1 \
                itself: give it .../together), ANTHROPIC_BASE_URL and \
                GEMINI_BASE_URL=http://127.0.0.1:PORT, and any non-empty API key. Under /together/v1 \
                everything is Together's. Together also shares OpenAI's /v1 paths: there a model \
                named org/name (meta-llama/Llama-3.3-70B-Instruct-Turbo) gets Together's answers, \
                any other model OpenAI's, and Together's files and batches are known by their ids, \
                but the list of batches is OpenAI's.

                The batch APIs are served too: OpenAI files and batches, Anthropic Message \
                Batches, Gemini Batch Mode with the Files API, Together's batches with their \
                three-step upload. Each batch line is answered as \
                the online endpoint would answer it; a batch takes --batch-seconds to end \
                (0: it has ended at the first poll), its state kept in memory, and result \
                files come back unordered.

                Replies are deterministic words, or JSON that fits the schema when a request asks \
                for structured output; counters are at GET /_mock/stats (POST \
                /_mock/reset zeroes them). Durations are Go-style: 250ms, 1.5s, 2m. Fractions are \
                0...1 of the calls that pass validation and the rate limits.
                """)

        @Option(help: "TCP port; 0 picks a free one.")
        var port = 0

        @Option(help: "Address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "Event-loop threads (default: one per core).")
        var threads: Int?

        @Option(help: "Accept only this API key (default: any non-empty key).")
        var apiKey: String?

        @Option(name: .customLong("model"), help: "Serve only this model (repeatable; default: any model).")
        var models: [String] = []

        @Option(help: "Reply length in words, one completion token each.")
        var replyTokens = MockReplies.defaultTokens

        @Flag(help: "Never report cached prompt tokens.")
        var noPromptCache = false

        @Option(help: "Fixed latency before each answer (default: 0s).", transform: duration)
        var latency: Duration = .zero

        @Option(help: "Uniform random extra latency, up to this much (default: 0s).", transform: duration)
        var jitter: Duration = .zero

        @Option(
            help: "Latency per completion token: between stream chunks, × tokens otherwise (default: 0s).",
            transform: duration)
        var tokenLatency: Duration = .zero

        @Option(help: "Requests per second allowed (token bucket); 429 beyond.")
        var rps: Double?

        @Option(help: "Request bucket capacity (default: --rps rounded up).")
        var burst: Int?

        @Option(help: "Tokens per minute allowed (prompt + completion); 429 beyond.")
        var tpm: Int?

        @Option(help: "Most calls answered at once; 429 beyond.")
        var maxInFlight: Int?

        @Option(name: .customLong("fault-500"), help: "Fraction of calls answered 500.")
        var fault500 = 0.0

        @Option(name: .customLong("fault-503"), help: "Fraction of calls answered 503 (overloaded).")
        var fault503 = 0.0

        @Option(help: "Fraction of calls reset (TCP RST) halfway through the body.")
        var faultReset = 0.0

        @Option(help: "Fraction of calls whose JSON body (or stream) is cut in half.")
        var faultTruncate = 0.0

        @Option(help: "Fraction of calls that stop sending halfway and hang.")
        var faultStall = 0.0

        @Option(help: "Fraction of streams that end with an in-stream error event.")
        var faultStreamError = 0.0

        @Option(help: "Seed for jitter and fault choices.")
        var seed: UInt64 = 0

        @Option(help: "Seconds from a batch's creation to its end; 0 ends it at the first poll.")
        var batchSeconds = 0.0

        @Option(help: "Fraction of batch lines (picked by custom_id or key) answered with the provider's 500 error.")
        var batchFailLines = 0.0

        @Option(help: "Fraction of batches (picked by id) that expire with half their requests run.")
        var batchExpire = 0.0

        var serverConfiguration: MockProviderServer.Configuration {
            var configuration = MockProviderServer.Configuration()
            configuration.host = host
            configuration.port = port
            if let threads { configuration.threads = threads }
            configuration.apiKey = apiKey
            configuration.models = models.isEmpty ? nil : Set(models)
            configuration.replyTokens = replyTokens
            configuration.promptCaching = !noPromptCache
            configuration.latency = .init(fixed: latency, jitter: jitter, perToken: tokenLatency)
            configuration.rateLimit = .init(
                requestsPerSecond: rps, burst: burst, tokensPerMinute: tpm, maxInFlight: maxInFlight)
            configuration.faults = .init(
                serverErrors: fault500, overloaded: fault503, resets: faultReset, truncatedBodies: faultTruncate,
                stalls: faultStall, streamErrors: faultStreamError)
            configuration.seed = seed
            // Non-finite or negative values are refused by `validate()` before this is used.
            let batchDuration = batchSeconds.isFinite ? Duration.seconds(max(0, batchSeconds)) : .zero
            configuration.batches = .init(
                duration: batchDuration, failingLines: batchFailLines, expiring: batchExpire)
            return configuration
        }

        func validate() throws {
            guard batchSeconds.isFinite, batchSeconds >= 0, batchSeconds <= 1e9 else {
                throw ValidationError("--batch-seconds must be a number of seconds from 0 to 1e9, not \(batchSeconds)")
            }
            do {
                try serverConfiguration.validate()
            } catch {
                throw ValidationError(error.description)
            }
        }

        func run() throws {
            // Block the stop signals before any thread starts, so every thread inherits
            // the mask and `sigwait` below is the only receiver. Handlers back to the
            // default first: a background job inherits SIGINT ignored.
            var stopSignals = sigset_t()
            sigemptyset(&stopSignals)
            for stopSignal in [SIGINT, SIGTERM] {
                signal(stopSignal, SIG_DFL)
                sigaddset(&stopSignals, stopSignal)
            }
            pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
            let server: MockProviderServer
            do {
                server = try MockProviderServer.start(serverConfiguration)
            } catch {
                FileHandle.standardError.write(
                    Data("error: unable to listen on \(host):\(port): \(error); try another --port, or 0\n".utf8))
                throw ExitCode.failure
            }
            // Written unbuffered: a parent process reads this line to learn the port.
            FileHandle.standardOutput.write(Data("listening on \(server.url)\n".utf8))
            let hint =
                "llmq mock: OPENAI_BASE_URL=\(server.openAIBaseURL), TOGETHER_BASE_URL=\(server.url)/together/v1, "
                + "ANTHROPIC_BASE_URL and GEMINI_BASE_URL=\(server.url), stats at \(server.url)/_mock/stats; "
                + "Ctrl-C stops\n"
            FileHandle.standardError.write(Data(hint.utf8))
            var received: Int32 = 0
            sigwait(&stopSignals, &received)
            let stats = server.stats
            server.shutdown()
            FileHandle.standardError.write(
                Data(
                    "llmq mock: stopped after \(stats.totalRequests) requests (\(stats.rateLimited) rate limited, \(stats.totalFaults) faults) on \(stats.connectionsAccepted) connections\n"
                        .utf8))
        }
    }
}

/// Parses a Go-style duration flag (`250ms`, `1.5s`, `2m`, `0`).
private func duration(_ text: String) throws -> Duration {
    guard let nanoseconds = GoDuration.nanoseconds(text), nanoseconds >= 0 else {
        throw ValidationError("\"\(text)\" is not a duration; write it like 250ms, 1.5s or 2m")
    }
    return .nanoseconds(nanoseconds)
}
