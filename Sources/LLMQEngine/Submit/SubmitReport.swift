import Foundation
import LLMQCore

/// What a cost estimate of new requests found.
public struct CostEstimate: Sendable, Equatable {
    /// Estimated input tokens of the new requests (UTF-8 bytes / 4 + 4 per message).
    public var inputTokens = 0
    /// The sum of `max_tokens` over new requests that set it.
    public var maxOutputTokens = 0
    /// New requests without `max_tokens`: their output cannot be bounded.
    public var requestsWithoutMaxTokens = 0
    /// Estimated input cost of the requests whose model has a price.
    public var inputCostUSD = 0.0
    /// Output cost if every request with `max_tokens` used all of it.
    public var maxOutputCostUSD = 0.0
    /// Models without a price, and how many new requests use each.
    public var unpricedModels: [String: Int] = [:]

    /// The last model priced, and its price: files mostly use one model, so this
    /// saves a table lookup per request.
    private var lastPrice: (model: String, price: ModelPrice?)?

    public init() {}

    public static func == (lhs: CostEstimate, rhs: CostEstimate) -> Bool {
        lhs.inputTokens == rhs.inputTokens && lhs.maxOutputTokens == rhs.maxOutputTokens
            && lhs.requestsWithoutMaxTokens == rhs.requestsWithoutMaxTokens && lhs.inputCostUSD == rhs.inputCostUSD
            && lhs.maxOutputCostUSD == rhs.maxOutputCostUSD && lhs.unpricedModels == rhs.unpricedModels
    }

    /// In batch mode, prices less each model's batch discount.
    public var batch = false

    mutating func add(_ request: SubmittedRequest, prices: PriceTable?) {
        inputTokens += request.estimatedInputTokens
        if let cap = request.maxTokens { maxOutputTokens += cap } else { requestsWithoutMaxTokens += 1 }
        let model = request.route.model
        let found: ModelPrice?
        if let lastPrice, lastPrice.model == model {
            found = lastPrice.price
        } else {
            found = prices?.price(for: model)
            lastPrice = (model, found)
        }
        guard let price = found else {
            unpricedModels[request.route.model, default: 0] += 1
            return
        }
        let factor = batch ? 1 - price.batchDiscount : 1
        inputCostUSD += Double(request.estimatedInputTokens) * price.input * factor / 1_000_000
        if let cap = request.maxTokens { maxOutputCostUSD += Double(cap) * price.output * factor / 1_000_000 }
    }
}

/// The outcome of `llmq submit`.
public struct SubmitReport: Sendable {
    public var job: String
    public var source: String
    /// Non-blank lines read.
    public var lines = 0
    public var added = 0
    public var unchanged = 0
    public var replaced = 0
    public var rejected = 0
    /// The first problems found, in line order (at most `Submitter.problemsShown`).
    public var problems: [InputProblem] = []
    /// Where rejected lines were written (with `--skip-invalid`), if any were.
    public var rejectedFile: URL?
    /// Estimated cost of the requests this submission added or replaced.
    public var estimate = CostEstimate()

    public init(job: String, source: String) {
        self.job = job
        self.source = source
    }
}

/// The submission was rejected because some lines were invalid; nothing was enqueued.
public struct SubmissionRejected: Error, Sendable {
    public var report: SubmitReport
}

/// The input had no request in it.
public struct EmptyInput: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var description: String {
        "\(source == "-" ? "standard input" : source) is empty: there is nothing to submit"
    }
}
