import Foundation
import LLMQEngine

/// `llmq work`'s progress on stderr: on a terminal, a couple of lines redrawn in
/// place; otherwise a plain line every `plainInterval` seconds; with `quiet`,
/// nothing. Messages (such as "stopping…") go through `message` so they do not
/// tangle with the live lines.
final class ProgressDisplay: @unchecked Sendable {
    enum Style { case live, plain, quiet }

    let style: Style
    let plainInterval: Double
    private let lock = NSLock()
    private var drawnLines = 0
    private var lastPlain = 0.0

    init(quiet: Bool, plainInterval: Double = 5) {
        style = quiet ? .quiet : isatty(STDERR_FILENO) == 1 ? .live : .plain
        self.plainInterval = plainInterval
    }

    func update(_ progress: WorkProgress) {
        lock.withLock {
            switch style {
            case .quiet:
                return
            case .live:
                let width = Self.terminalWidth()
                let lines = Self.liveLines(progress).map { String($0.prefix(max(20, width - 1))) }
                write(clear() + lines.joined(separator: "\n"))
                drawnLines = lines.count
            case .plain:
                guard progress.elapsedSeconds - lastPlain >= plainInterval else { return }
                lastPlain = progress.elapsedSeconds
                write(Self.plainLine(progress) + "\n")
            }
        }
    }

    /// Prints a line of its own, above the live lines.
    func message(_ text: String) {
        lock.withLock {
            write(clear() + text + "\n")
            drawnLines = 0
        }
    }

    /// Leaves the last live lines on screen and moves below them.
    func finish() {
        lock.withLock {
            if drawnLines > 0 { write("\n") }
            drawnLines = 0
        }
    }

    /// Moves to the start of the first drawn line, erasing what was drawn.
    private func clear() -> String {
        guard drawnLines > 0 else { return "" }
        return String(repeating: "\r\u{1B}[2K\u{1B}[1A", count: drawnLines - 1) + "\r\u{1B}[2K"
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        return ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 100
    }

    // MARK: Text

    static func liveLines(_ progress: WorkProgress) -> [String] {
        let fraction = progress.total > 0 ? Double(progress.finished) / Double(progress.total) : 0
        let filled = Int((fraction * 24).rounded(.down))
        var first =
            "[\(String(repeating: "#", count: filled))\(String(repeating: "-", count: 24 - filled))] "
            + counts(progress) + "  " + rates(progress) + "  " + cost(progress)
        if progress.failed > 0 { first += "  \(progress.failed) failed" }
        first += "  ETA " + eta(progress)
        var lines = [first]
        if !progress.lanes.isEmpty { lines.append("  " + progress.lanes.map(lane).joined(separator: " · ")) }
        return lines
    }

    static func plainLine(_ progress: WorkProgress) -> String {
        var parts = [counts(progress), rates(progress), cost(progress)]
        if progress.failed > 0 { parts.append("\(progress.failed) failed") }
        let limited = progress.lanes.reduce(0) { $0 + $1.rateLimited }
        if limited > 0 { parts.append("\(limited) rate-limited") }
        parts.append("ETA " + eta(progress))
        return "llmq work: " + parts.joined(separator: ", ")
    }

    static func counts(_ progress: WorkProgress) -> String {
        let percent = progress.total > 0 ? 100 * progress.finished / progress.total : 0
        return "\(progress.finished)/\(progress.total) (\(percent)%)"
    }

    static func rates(_ progress: WorkProgress) -> String {
        String(format: "%.0f req/s", progress.requestsPerSecond) + " "
            + SubmitFormatter.tokens(Int(progress.tokensPerSecond)) + " tok/s"
    }

    static func cost(_ progress: WorkProgress) -> String {
        money(progress.costUSD) + (progress.unpriced > 0 ? " (+\(progress.unpriced) unpriced)" : "")
    }

    static func eta(_ progress: WorkProgress) -> String {
        if progress.remaining == 0 { return "0s" }
        guard let seconds = progress.etaSeconds, seconds.isFinite else { return "?" }
        return duration(seconds)
    }

    static func lane(_ lane: WorkProgress.LaneFigures) -> String {
        var text = "\(lane.name) \(lane.inFlight)/\(lane.window)"
        if lane.rateLimited > 0 { text += " \(lane.rateLimited)×429" }
        if lane.pausedMilliseconds > 0 { text += " waiting " + duration(Double(lane.pausedMilliseconds) / 1000) }
        return text
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole / 60 % 60))m"
    }
}
