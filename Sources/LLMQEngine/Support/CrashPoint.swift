import Foundation
import Synchronization

/// Fault injection for the crash tests: `LLMQ_CRASH_AT=name:N` makes the process
/// kill itself with SIGKILL the Nth time it reaches the point called `name` (for
/// example `created:2`, just after a provider answered a create and before llmq
/// recorded it). Unset — as for every user — it does nothing.
enum CrashPoint {
    private static let target: (name: String, count: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["LLMQ_CRASH_AT"] else { return nil }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let count = Int(parts[1]), count > 0 else { return nil }
        return (String(parts[0]), count)
    }()
    private static let hits = Mutex(0)

    static func reached(_ name: String) {
        guard let target, target.name == name else { return }
        if hits.withLock({ hits in
            hits += 1
            return hits == target.count
        }) {
            kill(getpid(), SIGKILL)
        }
    }
}
