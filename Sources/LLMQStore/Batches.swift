import LLMQCore

/// How a job's requests are sent.
public enum JobMode: String, Sendable, CaseIterable {
    /// One request at a time through the lanes.
    case online
    /// Through the providers' batch APIs (half price, within 24 hours).
    case batch
}

/// One batch llmq sent (or is about to send) to a provider's batch API.
public struct BatchRecord: Sendable, Equatable {
    /// Each step is recorded before the next starts.
    public enum State: String, Sendable, CaseIterable {
        /// The input file is written and its requests are in it; nothing sent yet.
        case planned
        /// An upload was started (at `intentAt`) and its file id is not known yet.
        case uploading
        /// The input file is uploaded (`inputFileID`), or goes inline.
        case uploaded
        /// A create was started (at `intentAt`) and the remote id is not known yet:
        /// after a crash, look for the batch before creating another.
        case creating
        /// The provider has it (`remoteID`); polled until it ends.
        case created
        /// Ended at the provider; its results are downloaded and collected next.
        case ended
        /// Its results are in the store (final).
        case collected
        /// Given up (the provider refused it); its requests went back to the queue (final).
        case failed
    }

    public var id: Int64
    public var job: String
    /// llmq's own id for the batch: OpenAI `metadata.llmq_batch_id`, Gemini
    /// `displayName`, the input file's name.
    public var llmqID: String
    public var provider: Provider
    public var model: String
    /// Which of the provider's keys (its index in the environment's list; never the key).
    public var keyIndex: Int
    public var state: State
    /// The input file written for the batch (under the job's `batches/` folder).
    public var localFile: String
    public var fileSHA256: String
    public var requestCount: Int
    public var bytes: Int64
    public var inputFileID: String?
    public var remoteID: String?
    /// The provider's own status word, as last polled.
    public var remoteStatus: String?
    public var total: Int?
    public var succeeded: Int?
    public var failed: Int?
    public var outputLocation: String?
    public var errorLocation: String?
    /// When the last upload or create was started (unix ms).
    public var intentAt: Int64?
    /// When to poll next (unix ms), and the current interval.
    public var nextPollAt: Int64
    public var pollIntervalMilliseconds: Int64
    /// `llmq cancel` asked for it: cancel at the provider, and what did not run is cancelled.
    public var cancelRequested: Bool
    /// The last error met while advancing it (for `llmq status`); cleared by progress.
    public var error: String?
    /// Why the provider failed the whole batch (it then has no results, and its
    /// requests fail with this), in the provider's words.
    public var failure: String?
    /// Unix ms.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var endedAt: Int64?
    public var collectedAt: Int64?

    public var isFinal: Bool { state == .collected || state == .failed }

    /// The lease owner of the batch's requests while they are in it.
    public var requestOwner: String { Self.requestOwner(id) }

    public static func requestOwner(_ id: Int64) -> String { "batch:\(id)" }
}

/// A batch to record: its file is written and holds these requests.
public struct NewBatch: Sendable {
    public var job: String
    public var llmqID: String
    public var provider: Provider
    public var model: String
    public var keyIndex: Int
    public var localFile: String
    public var fileSHA256: String
    public var bytes: Int64
    /// The store ids of the requests in the file, claimed by the caller.
    public var requestIDs: [Int64]
    /// Requests identical to one in the file (the same cache key), claimed by the
    /// caller: they wait in the batch without a line of their own, go back to the
    /// queue when it is collected, and are answered from the cache then.
    public var followerIDs: [Int64]
    public var pollIntervalMilliseconds: Int64

    public init(
        job: String, llmqID: String, provider: Provider, model: String, keyIndex: Int, localFile: String,
        fileSHA256: String, bytes: Int64, requestIDs: [Int64], followerIDs: [Int64] = [],
        pollIntervalMilliseconds: Int64
    ) {
        self.followerIDs = followerIDs
        self.job = job
        self.llmqID = llmqID
        self.provider = provider
        self.model = model
        self.keyIndex = keyIndex
        self.localFile = localFile
        self.fileSHA256 = fileSHA256
        self.bytes = bytes
        self.requestIDs = requestIDs
        self.pollIntervalMilliseconds = pollIntervalMilliseconds
    }
}

/// The requests of a batch, as collecting its results needs them.
public struct BatchedRequest: Sendable, Equatable {
    public var id: Int64
    public var customID: String
    public var model: String
    public var cacheKey: CacheKey
    public var attempt: Int

    public init(id: Int64, customID: String, model: String, cacheKey: CacheKey, attempt: Int) {
        self.id = id
        self.customID = customID
        self.model = model
        self.cacheKey = cacheKey
        self.attempt = attempt
    }
}

/// Thrown by `recordBatch` when a request of the file is no longer leased to the
/// caller (another worker took it): the batch is not recorded, and its file must
/// not be sent.
public struct BatchLeaseLost: Error, Sendable, CustomStringConvertible {
    public var missing: Int
    public var description: String { "\(missing) requests of the batch are no longer leased to this worker" }
}
