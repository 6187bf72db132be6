import Synchronization

/// Decides, per provider call, whether to inject a fault and how much jitter to add.
///
/// Each call takes the next number of a shared sequence and mixes it with the seed,
/// so a run with the same seed and the same order of calls injects the same faults;
/// with fractions of 0 or 1 the outcome does not depend on order at all.
final class FaultInjector: Sendable {
    struct Draw {
        var fault: MockFault?
        /// Uniform in [0, 1): the fraction of the configured jitter to add.
        var jitter: Double
    }

    private let seed: UInt64
    /// Upper bounds of each fault's slice of [0, 1).
    private let slices: [(fault: MockFault, upperBound: Double)]
    private let sequence = Atomic<UInt64>(0)

    init(faults: MockProviderServer.Faults, seed: UInt64) {
        self.seed = seed
        var bound = 0.0
        var slices: [(MockFault, Double)] = []
        for (fault, fraction) in faults.fractions where fraction > 0 {
            bound += fraction
            slices.append((fault, fraction >= 1 ? 2 : bound))
        }
        self.slices = slices
    }

    func draw() -> Draw {
        let number = sequence.wrappingAdd(1, ordering: .relaxed).oldValue
        var generator = SplitMix64(seed: seed ^ SplitMix64.mix(number))
        let pick = generator.nextUnit()
        let jitter = generator.nextUnit()
        let fault = slices.first { pick < $0.upperBound }?.fault
        return Draw(fault: fault, jitter: jitter)
    }
}

/// Remembers which prompts were seen, to report `cached_tokens` as OpenAI's
/// automatic prompt caching would. Only prompts of 1024 tokens or more reach it, so
/// its lock is off the path of small requests.
final class PromptCache: Sendable {
    /// Smallest prompt (or prefix) that is cached, in tokens.
    static let minimumTokens = 1024
    /// Cache hits come in steps of this many tokens.
    static let step = 128
    /// Forget everything past this many entries, to bound memory on long runs.
    private static let capacity = 1 << 20

    private let seen = Mutex(Set<UInt64>())

    /// The cached tokens for a prompt, and remember it (and its prefix) for later.
    func cachedTokens(for digest: PromptDigest) -> Int {
        guard digest.tokens >= Self.minimumTokens else { return 0 }
        let (fullHit, prefixHit) = seen.withLock { seen -> (Bool, Bool) in
            if seen.count >= Self.capacity { seen.removeAll(keepingCapacity: true) }
            let full = !seen.insert(digest.hash).inserted
            var prefix = false
            if digest.prefixTokens >= Self.minimumTokens {
                prefix = !seen.insert(digest.prefixHash).inserted
            }
            return (full, prefix)
        }
        let matched = fullHit ? digest.tokens : prefixHit ? digest.prefixTokens : 0
        guard matched >= Self.minimumTokens else { return 0 }
        return matched / Self.step * Self.step
    }

    /// Whether an explicitly cached prefix (Anthropic's `cache_control`) was written
    /// before. Callers mix a constant into `key` so these never meet the automatic
    /// entries.
    func contains(_ key: UInt64) -> Bool {
        seen.withLock { $0.contains(key) }
    }

    /// Writes an explicitly cached prefix.
    func remember(_ key: UInt64) {
        seen.withLock { seen in
            if seen.count >= Self.capacity { seen.removeAll(keepingCapacity: true) }
            seen.insert(key)
        }
    }
}
