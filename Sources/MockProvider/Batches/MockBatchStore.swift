import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The batches and files of every provider's batch API, in memory: the fake server is
/// one process, and a batch's progress is a function of time (`BatchTimeline`), so a
/// client that stops and polls again later sees it continue.
///
/// Everything sits behind one lock; batch calls are rare next to chat completions, and
/// the expensive part (answering a batch's requests) happens before the lock.
final class MockBatchStore: Sendable {
    private struct State {
        var files: [String: StoredFile] = [:]
        var batches: [String: MockBatch] = [:]
        /// Batch ids in creation order, for lists.
        var order: [String] = []
        /// Gemini resumable uploads in progress, by upload id.
        var uploads: [String: Upload] = [:]
    }

    /// A Gemini resumable upload: the file to be, its announced size, the bytes so far.
    struct Upload: Sendable {
        var file: StoredFile
        var expectedBytes: Int?
        var received: [UInt8] = []
    }

    /// What a cancel did.
    enum CancelOutcome {
        case notFound
        /// The batch had already ended (or failed validation); here as it is.
        case ended(MockBatch)
        /// Cancel had already been asked for; here as it is.
        case alreadyCancelled(MockBatch)
        case cancelled(MockBatch)
    }

    let configuration: MockProviderServer.Batches
    let seed: UInt64
    /// Unix seconds now; the wall clock unless a test injects another.
    let now: @Sendable () -> Double
    private let state = Mutex(State())

    init(
        configuration: MockProviderServer.Batches, seed: UInt64,
        now: @escaping @Sendable () -> Double = MockBatchStore.wallClock
    ) {
        self.configuration = configuration
        self.seed = seed
        self.now = now
    }

    /// Unix seconds, with a fraction, from the system's real-time clock.
    @Sendable static func wallClock() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// The timeline of a batch created at `time` with id `id`: the configured
    /// duration, and whether the `expiring` fraction picks it.
    func timeline(id: String, created time: Double) -> BatchTimeline {
        let seconds = Double(configuration.duration.nanoseconds) / 1e9
        let expires = Self.draw(id, seed: seed, salt: 0x6578_7069_7265) < configuration.expiring
        return BatchTimeline(created: time, seconds: seconds, expires: expires)
    }

    /// Whether the `failingLines` fraction picks the line with this key.
    func lineFails(key: String) -> Bool {
        configuration.failingLines > 0 && Self.draw(key, seed: seed, salt: 0x6661_696C) < configuration.failingLines
    }

    /// A uniform value in [0, 1) from a string, the seed and a salt.
    static func draw(_ text: String, seed: UInt64, salt: UInt64) -> Double {
        var hash = FNV1a()
        hash.combine(text)
        return Double(SplitMix64.mix(hash.value ^ seed ^ salt) >> 11) * 0x1p-53
    }

    // MARK: - Files

    func addFile(_ file: StoredFile) {
        state.withLock { $0.files[file.id] = file }
    }

    func file(_ id: String, provider: BatchProvider) -> StoredFile? {
        state.withLock { state in state.files[id].flatMap { $0.provider == provider ? $0 : nil } }
    }

    /// Removes a file; false if there was none.
    func deleteFile(_ id: String, provider: BatchProvider) -> Bool {
        state.withLock { state in
            guard state.files[id]?.provider == provider else { return false }
            state.files[id] = nil
            return true
        }
    }

    /// A provider's files, oldest first.
    func files(provider: BatchProvider) -> [StoredFile] {
        state.withLock { state in
            state.files.values.filter { $0.provider == provider }.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
        }
    }

    func startUpload(_ upload: Upload, id: String) {
        state.withLock { $0.uploads[id] = upload }
    }

    /// Applies `change` to an upload in progress; nil if there is none. When `change`
    /// returns a file, the upload is over and the file is stored.
    func withUpload<T>(_ id: String, _ change: (inout Upload) -> (T, StoredFile?)) -> T? {
        state.withLock { state in
            guard var upload = state.uploads[id] else { return nil }
            let (result, finished) = change(&upload)
            if let finished {
                state.uploads[id] = nil
                state.files[finished.id] = finished
            } else {
                state.uploads[id] = upload
            }
            return result
        }
    }

    // MARK: - Batches

    func insert(_ batch: MockBatch) {
        state.withLock { state in
            state.batches[batch.id] = batch
            state.order.append(batch.id)
        }
    }

    /// The batch as of `time`: a cancelled batch seen after its cancel (`settle`) ends
    /// there, and a batch seen ended for the first time gets its result files from
    /// `writeResults`.
    func observe(
        _ id: String, provider: BatchProvider, at time: Double, settle: Bool = true,
        writeResults: (MockBatch, Double) -> [StoredFile] = { _, _ in [] }
    ) -> MockBatch? {
        state.withLock { state in
            guard var batch = state.batches[id], batch.provider == provider else { return nil }
            Self.advance(&batch, in: &state, at: time, settle: settle, writeResults: writeResults)
            state.batches[id] = batch
            return batch
        }
    }

    /// A provider's batches as of `time`, newest first.
    func batches(
        provider: BatchProvider, at time: Double, writeResults: (MockBatch, Double) -> [StoredFile] = { _, _ in [] }
    ) -> [MockBatch] {
        state.withLock { state in
            var result: [MockBatch] = []
            for id in state.order.reversed() {
                guard var batch = state.batches[id], batch.provider == provider else { continue }
                Self.advance(&batch, in: &state, at: time, settle: true, writeResults: writeResults)
                state.batches[id] = batch
                result.append(batch)
            }
            return result
        }
    }

    /// Asks a running batch to stop at `time`. With `immediately` (Gemini, which has
    /// no cancelling state) it ends at once; otherwise it ends when next seen.
    func cancel(
        _ id: String, provider: BatchProvider, at time: Double, immediately: Bool = false,
        writeResults: (MockBatch, Double) -> [StoredFile] = { _, _ in [] }
    ) -> CancelOutcome {
        state.withLock { state in
            guard var batch = state.batches[id], batch.provider == provider else { return .notFound }
            Self.advance(&batch, in: &state, at: time, settle: true, writeResults: writeResults)
            state.batches[id] = batch
            if batch.timeline.cancelledAt != nil { return .alreadyCancelled(batch) }
            let failed = batch.openAI?.validationErrors != nil && time >= batch.timeline.validatedAt
            if failed || batch.timeline.hasEnded(at: time) { return .ended(batch) }
            batch.timeline.cancelledAt = time
            if immediately {
                batch.timeline.cancelSettledAt = time
                Self.advance(&batch, in: &state, at: time, settle: false, writeResults: writeResults)
            }
            state.batches[id] = batch
            return .cancelled(batch)
        }
    }

    /// Removes a batch; the result files stay, as they do at the providers.
    func deleteBatch(_ id: String, provider: BatchProvider) -> Bool {
        state.withLock { state in
            guard state.batches[id]?.provider == provider else { return false }
            state.batches[id] = nil
            state.order.removeAll { $0 == id }
            return true
        }
    }

    private static func advance(
        _ batch: inout MockBatch, in state: inout State, at time: Double, settle: Bool,
        writeResults: (MockBatch, Double) -> [StoredFile]
    ) {
        if settle, let cancelled = batch.timeline.cancelledAt, batch.timeline.cancelSettledAt == nil {
            batch.timeline.cancelSettledAt = max(time, cancelled)
        }
        guard !batch.resultsWritten, batch.timeline.hasEnded(at: time) else { return }
        batch.resultsWritten = true
        for file in writeResults(batch, time) { state.files[file.id] = file }
    }
}
