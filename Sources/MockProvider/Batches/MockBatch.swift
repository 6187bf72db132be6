import LLMQCore

/// Whose batch API a batch or file belongs to; the names are the keys of
/// `batches_created_by_provider` in `/_mock/stats`.
public enum BatchProvider: String, Sendable, CaseIterable, Codable {
    case anthropic
    case gemini
    case openAI = "openai"
    case together
}

/// One request of a batch, answered when the batch is created exactly as the online
/// endpoint answers it (`BatchLineAnswerer`); time only decides when the answer
/// shows.
struct BatchLine: Sendable {
    /// `custom_id` (OpenAI, Anthropic) or `key` (Gemini); nil for a Gemini inline
    /// request without `metadata.key`.
    var key: String?
    /// A Gemini inline request's `metadata`, echoed beside its response.
    var metadata: JSONValue?
    /// The online answer's HTTP status and body.
    var status: Int
    var body: [UInt8]
    /// The online answer's request id.
    var requestID: String
    /// OpenAI's `batch_req_…` (Together's `br_…`) id of the output line.
    var lineID: String
    /// Tokens of a successful OpenAI answer, for the batch's `usage`.
    var usage: TokenUsage?

    var succeeded: Bool { (200..<300).contains(status) }

    struct TokenUsage: Sendable {
        var input: Int
        var cached: Int
        var output: Int
        var reasoning: Int
    }
}

/// A validation error of an OpenAI batch's input file: the batch fails with these in
/// `errors.data`.
struct BatchValidationError: Sendable, Equatable {
    var code: String
    var message: String
    var param: String?
    /// 1-based line of the input file, if the error is about one line.
    var line: Int?
}

/// A batch of any provider, as the store keeps it. Fields that only one provider has
/// are grouped and nil for the others.
struct MockBatch: Sendable {
    var provider: BatchProvider
    /// The provider's id: `batch_…`, `msgbatch_…`, or Gemini's `batches/…` name.
    var id: String
    var timeline: BatchTimeline
    /// The requests, in the order they were sent.
    var lines: [BatchLine]
    /// Indices into `lines` in the order they run.
    var runOrder: [Int]
    /// Seeds the order of result files (they are unordered, as the real ones are).
    var shuffleSeed: UInt64
    /// Whether the result files were written (once, when the batch ended).
    var resultsWritten = false

    // OpenAI, and Together (whose jobs have the same fields; `validationErrors`
    // holds the one reason a Together job failed)
    var openAI: OpenAIFields?

    // Gemini
    var gemini: GeminiFields?

    struct OpenAIFields: Sendable {
        var endpoint: String
        var inputFileID: String
        var completionWindow: String
        var metadata: JSONValue?
        var model: String?
        /// Set when the input file failed validation: the batch fails.
        var validationErrors: [BatchValidationError]?
        /// Assigned at creation; shown once the batch has ended and has such lines.
        var outputFileID: String
        var errorFileID: String
    }

    struct GeminiFields: Sendable {
        var model: String
        var displayName: String?
        /// `files/…` when the requests came from a file; the responses go to a file too.
        var inputFileName: String?
        var responsesFileName: String
    }

    /// For each line, whether it ran by `time`.
    func ran(at time: Double) -> [Bool] {
        var ran = [Bool](repeating: false, count: lines.count)
        for index in runOrder.prefix(timeline.done(of: lines.count, at: time)) { ran[index] = true }
        return ran
    }

    /// Line indices in a shuffled order, for result files.
    func shuffledIndices() -> [Int] {
        var indices = Array(lines.indices)
        var generator = SplitMix64(seed: shuffleSeed)
        indices.shuffle(using: &generator)
        return indices
    }
}

/// A file of the OpenAI, Gemini or Together Files API: uploaded, or written by a batch.
struct StoredFile: Sendable {
    var provider: BatchProvider
    /// OpenAI's `file-…` id or Gemini's `files/…` name.
    var id: String
    var filename: String
    /// OpenAI's purpose (`batch`, `batch_output`, …); empty for Gemini.
    var purpose: String
    var mimeType: String
    var displayName: String?
    /// Unix seconds.
    var created: Double
    var bytes: [UInt8]
    /// Written by a batch rather than uploaded.
    var generated = false
}
