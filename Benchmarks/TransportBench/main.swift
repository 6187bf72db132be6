// Sends POSTs through CurlTransport at fixed concurrency and prints throughput and
// client CPU: the transport benchmark of BENCHMARKS.md (see transport_bench.sh).
//
//   TransportBench URL [--requests N] [--concurrency 32,256] [--http2] [--cafile PEM]
//                      [--body-bytes B] [--label NAME]
//
// Each concurrency level first runs a warm-up (N/10 requests, at most 2,000) so
// connections are open, then measures N requests: wall time, and the process's user
// + system CPU from getrusage (every thread: the curl thread and Swift's pool).

import LLMQTransport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct Settings {
    var url = ""
    var requests = 20_000
    var concurrencies = [32, 256]
    var version = HTTPVersion.http1_1
    var caFile: String?
    var bodyBytes = 256
    var label: String?
}

func printError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

func usage(_ message: String) -> Never {
    let text =
        "error: \(message)\n"
        + "usage: TransportBench URL [--requests N] [--concurrency 32,256] [--http2] [--cafile PEM] "
        + "[--body-bytes B] [--label NAME]\n"
    printError(text)
    exit(64)
}

func parseSettings() -> Settings {
    var settings = Settings()
    var arguments = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let next = arguments.popFirst() else { usage("\(flag) needs a value") }
        return next
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--requests":
            guard let count = Int(value(argument)), count > 0 else { usage("--requests must be a positive integer") }
            settings.requests = count
        case "--concurrency":
            let levels = value(argument).split(separator: ",").compactMap { Int($0) }
            guard !levels.isEmpty, levels.allSatisfy({ $0 > 0 }) else {
                usage("--concurrency takes positive integers separated by commas")
            }
            settings.concurrencies = levels
        case "--http2": settings.version = .http2
        case "--cafile": settings.caFile = value(argument)
        case "--body-bytes":
            guard let bytes = Int(value(argument)), bytes >= 0 else { usage("--body-bytes must be 0 or more") }
            settings.bodyBytes = bytes
        case "--label": settings.label = value(argument)
        default:
            guard !argument.hasPrefix("-"), settings.url.isEmpty else { usage("unexpected argument \(argument)") }
            settings.url = argument
        }
    }
    guard !settings.url.isEmpty else { usage("missing URL") }
    return settings
}

/// User + system CPU seconds of the whole process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func formatted(_ value: Double, decimals: Int) -> String {
    if decimals == 0 { return String(Int(value.rounded())) }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...].count
        if fraction < decimals { text += String(repeating: "0", count: decimals - fraction) }
    } else if decimals > 0 {
        text += "." + String(repeating: "0", count: decimals)
    }
    return text
}

struct Outcome {
    var ok = 0
    var failed = 0
    var firstError: String?
}

/// Sends `total` requests with `concurrency` tasks, each sending its share in turn.
func run(_ transport: CurlTransport, request: HTTPRequest, options: HTTPRequestOptions, total: Int, concurrency: Int)
    async -> Outcome
{
    await withTaskGroup(of: Outcome.self) { group in
        for worker in 0..<concurrency {
            let share = total / concurrency + (worker < total % concurrency ? 1 : 0)
            group.addTask {
                var outcome = Outcome()
                for _ in 0..<share {
                    do {
                        let response = try await transport.send(request, options: options)
                        if response.status == 200 {
                            outcome.ok += 1
                        } else {
                            outcome.failed += 1
                            if outcome.firstError == nil { outcome.firstError = "HTTP \(response.status)" }
                        }
                    } catch {
                        outcome.failed += 1
                        if outcome.firstError == nil { outcome.firstError = "\(error)" }
                    }
                }
                return outcome
            }
        }
        var sum = Outcome()
        for await part in group {
            sum.ok += part.ok
            sum.failed += part.failed
            if sum.firstError == nil { sum.firstError = part.firstError }
        }
        return sum
    }
}

let settings = parseSettings()
let transport = CurlTransport()
let payload =
    "{\"model\":\"bench\",\"input\":\"" + String(repeating: "x", count: max(0, settings.bodyBytes - 30)) + "\"}"
let request = HTTPRequest(
    method: .post, url: settings.url, headers: ["Content-Type": "application/json", "Authorization": "Bearer bench"],
    body: Array(payload.utf8))
let options = HTTPRequestOptions(version: settings.version, totalTimeout: .seconds(30), caFile: settings.caFile)
let label = settings.label ?? (settings.version == .http2 ? "HTTP/2" : "HTTP/1.1")

for concurrency in settings.concurrencies {
    let warmUp = await run(
        transport, request: request, options: options, total: min(2_000, max(concurrency, settings.requests / 10)),
        concurrency: concurrency)
    if warmUp.ok == 0 {
        printError("error: warm-up failed: \(warmUp.firstError ?? "no response")\n")
        exit(1)
    }
    let cpuBefore = processCPUSeconds()
    let clock = ContinuousClock()
    let start = clock.now
    let outcome = await run(
        transport, request: request, options: options, total: settings.requests, concurrency: concurrency)
    let elapsed = start.duration(to: clock.now)
    let cpu = processCPUSeconds() - cpuBefore
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(settings.requests) / seconds
    let perRequest = cpu / Double(settings.requests) * 1e6
    var line =
        "\(label) c=\(concurrency) n=\(settings.requests): \(formatted(rate, decimals: 0)) req/s, "
        + "wall \(formatted(seconds, decimals: 2)) s, client CPU \(formatted(cpu, decimals: 2)) s, "
        + "\(formatted(perRequest, decimals: 1)) µs CPU/req, failed \(outcome.failed)"
    if let firstError = outcome.firstError { line += " (first: \(firstError))" }
    print(line)
}
