import LLMQCore
import Synchronization

/// One turn at a time per cache key: while a request is with the provider, an
/// identical one (same key) waits, then finds the answer in the response cache
/// instead of paying for it again. If the first fails, the next one sends itself.
final class KeyedTurns: Sendable {
    /// For each key in use, who waits for it, in order.
    private let waiting = Mutex<[CacheKey: [CheckedContinuation<Void, Never>]]>([:])

    /// Runs `body` when no other turn for `key` is running.
    func run<T>(_ key: CacheKey, _ body: () async throws -> T) async rethrows -> T {
        await take(key)
        defer { pass(key) }
        return try await body()
    }

    private func take(_ key: CacheKey) async {
        let free = waiting.withLock { waiting in
            guard waiting[key] != nil else {
                waiting[key] = []
                return true
            }
            return false
        }
        if free { return }
        await withCheckedContinuation { continuation in
            let free = waiting.withLock { waiting in
                // The holder may have finished since the first look.
                guard waiting[key] != nil else {
                    waiting[key] = []
                    return true
                }
                waiting[key]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    /// Hands the key to the next waiter, or frees it.
    private func pass(_ key: CacheKey) {
        let next = waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard var queue = waiting[key], !queue.isEmpty else {
                waiting[key] = nil
                return nil
            }
            let next = queue.removeFirst()
            waiting[key] = queue
            return next
        }
        next?.resume()
    }
}
