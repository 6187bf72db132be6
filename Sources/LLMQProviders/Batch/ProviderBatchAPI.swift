import Foundation
import LLMQCore

/// A provider's batch as its API last described it.
public struct RemoteBatch: Sendable, Equatable {
    /// Where the batch is, in llmq's terms.
    public enum Phase: String, Sendable, Equatable {
        /// Accepted and not ended (validating, queued, in progress, finalizing).
        case running
        /// Cancel asked for, not ended yet.
        case cancelling
        /// Ended: completed, failed, expired or cancelled. Results (if any) can be read.
        case ended
    }

    /// The provider's id (`batch_abc`, `msgbatch_01A`, `batches/b123`).
    public var id: String
    /// The provider's own status word (`in_progress`, `ended`, `BATCH_STATE_RUNNING`).
    public var status: String
    public var phase: Phase
    /// Counts as the provider reports them (nil when it does not say).
    public var total: Int?
    public var succeeded: Int?
    public var failed: Int?
    /// Where results are read from: output / error file ids (OpenAI, Together), the
    /// results URL (Anthropic), the responses file (Gemini); nil while running.
    public var outputLocation: String?
    public var errorLocation: String?
    /// The id llmq gave the batch (OpenAI `metadata.llmq_batch_id`, Gemini
    /// `displayName`); Anthropic batches carry none.
    public var llmqID: String?
    public var inputFileID: String?
    /// Unix milliseconds, when the provider says.
    public var createdAt: Int64?
    /// Why the whole batch failed, in the provider's words (OpenAI's validation
    /// `errors`, Gemini's operation `error`), when it says; nil otherwise. A batch
    /// that failed this way has no results: its requests need this message.
    public var message: String?

    public init(
        id: String, status: String, phase: Phase, total: Int? = nil, succeeded: Int? = nil, failed: Int? = nil,
        outputLocation: String? = nil, errorLocation: String? = nil, llmqID: String? = nil, inputFileID: String? = nil,
        createdAt: Int64? = nil, message: String? = nil
    ) {
        self.id = id
        self.status = status
        self.phase = phase
        self.total = total
        self.succeeded = succeeded
        self.failed = failed
        self.outputLocation = outputLocation
        self.errorLocation = errorLocation
        self.llmqID = llmqID
        self.inputFileID = inputFileID
        self.createdAt = createdAt
        self.message = message
    }
}

/// One request's outcome in a batch's results.
public enum BatchOutcome: Sendable, Equatable {
    /// Answered (usage as billed, before the batch discount is applied to cost).
    case answer(ProviderAnswer)
    /// Failed with the provider's error for that line.
    case failure(ProviderFailure)
    /// Not run: the batch expired or was cancelled before this request ran.
    case notRun(reason: String)
}

/// One line of a batch's results, matched by the id llmq gave the request.
public struct BatchResult: Sendable, Equatable {
    public var customID: String
    public var outcome: BatchOutcome

    public init(customID: String, outcome: BatchOutcome) {
        self.customID = customID
        self.outcome = outcome
    }
}

/// A provider's batch API: OpenAI Files + Batches, Anthropic Message Batches,
/// Gemini Batch Mode, Together's batches. Exactly per `PROVIDERS.md`.
///
/// Create and upload are not idempotent: the caller records its intent before
/// calling them and, after a crash, calls `find` before creating again. Nothing here
/// retries. An HTTP error from the provider throws its `ProviderFailure` (type and
/// message as the online adapter reads them); a transport failure throws
/// `TransportError`; a local file that cannot be read or written, or a results line
/// that is not the provider's shape, throws `BatchFileError`. No error carries a key.
public protocol ProviderBatchAPI: Sendable {
    var provider: Provider { get }
    /// Most requests and input bytes one batch may hold.
    var maxRequests: Int { get }
    var maxBytes: Int { get }

    /// One line of the batch input file llmq writes (and audits) for a request: the
    /// provider's own line shape, with its own body for `canonical`. Throws what the
    /// provider cannot express, as the online adapter does.
    func inputLine(customID: String, canonical: JSONValue, route: Route) throws(ProviderFailure) -> [UInt8]

    /// Uploads the input file where the provider takes one (OpenAI, Together,
    /// Gemini over its inline limit); returns its file id, or nil when the requests
    /// go inline with `create`.
    func upload(file: URL, name: String, key: String) async throws -> String?

    /// Creates the batch from the uploaded file (or `file`'s lines inline), tagged
    /// with `llmqID` wherever the provider keeps a tag.
    func create(file: URL, inputFileID: String?, llmqID: String, route: Route, key: String) async throws
        -> RemoteBatch

    /// The batch this process (or one that crashed) already created for `llmqID`,
    /// if any: by metadata / displayName / input file id where the provider keeps
    /// them, else (Anthropic) a batch created at or after `createdAfter` (unix ms)
    /// with `requestCount` requests.
    ///
    /// `createdAfter` is when the intent was recorded, by this machine's clock;
    /// implementations allow a few minutes of clock difference with the provider.
    /// Anthropic's match is by time and size only: a batch of the same size created
    /// with the same key in that window by someone else could be taken for ours (the
    /// one created nearest `createdAfter` is chosen). Batches in `excluding` (the
    /// remote ids llmq has already recorded) are never taken: with several batches
    /// of one size in flight, a crash could otherwise adopt a sibling.
    func find(
        llmqID: String, inputFileID: String?, requestCount: Int, createdAfter: Int64, excluding: Set<String>,
        key: String
    )
        async throws -> RemoteBatch?

    func get(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch

    func cancel(_ batch: RemoteBatch, key: String) async throws -> RemoteBatch

    /// Downloads an ended batch's results (and errors) into `to`, as JSONL in the
    /// provider's own line shape (Gemini inline responses are written as lines of
    /// `{"key","response"|"error"}`), so they can be audited and read again.
    ///
    /// The body is streamed to `to.part`, which is renamed to `to` once complete:
    /// `to` is whole or absent (a download cut short is simply done again). A batch
    /// that ended without results gives an empty file.
    func download(_ batch: RemoteBatch, key: String, to: URL) async throws

    /// Reads a file `download` wrote, one outcome per line, in the file's order,
    /// streaming it (memory does not grow with the file). A request the file does
    /// not mention has no outcome: treat it as not run.
    func results(in file: URL, _ each: (BatchResult) throws -> Void) throws
}
