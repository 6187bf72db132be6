/// The price of one model, in US dollars per million tokens.
public struct ModelPrice: Sendable, Equatable {
    public var model: String
    public var provider: Provider
    public var input: Double
    /// Price of input tokens read from the provider's prompt cache.
    public var cachedInput: Double
    /// Price of input tokens written to the provider's prompt cache.
    public var cacheWrite: Double
    public var output: Double
    /// Fraction taken off in batch mode (0.5 = half price).
    public var batchDiscount: Double

    public init(
        model: String, provider: Provider, input: Double, cachedInput: Double, cacheWrite: Double, output: Double,
        batchDiscount: Double
    ) {
        self.model = model
        self.provider = provider
        self.input = input
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.output = output
        self.batchDiscount = batchDiscount
    }
}

/// Model prices read from a CSV file (`prices.csv`).
///
/// The header is `model,provider,input,cached_input,cache_write,output,batch_discount`;
/// prices are USD per million tokens; `#` starts a comment line. A model not in the
/// table has an unknown price, never a price of zero.
public struct PriceTable: Sendable {
    public private(set) var prices: [String: ModelPrice] = [:]

    public static let header = [
        "model", "provider", "input", "cached_input", "cache_write", "output", "batch_discount",
    ]

    /// Why a price file could not be read.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public init(prices: [ModelPrice] = []) {
        for price in prices { self.prices[price.model] = price }
    }

    /// Parses CSV text. Fields are plain (no quoting is needed for model names).
    public init(csv: String) throws(ParseError) {
        var sawHeader = false
        var number = 0
        // Split on any newline: "\r\n" is one Character, so splitting on "\n" would miss it.
        for rawLine in csv.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            number += 1
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: " \t")
            }
            if !sawHeader {
                guard fields == Self.header else {
                    throw ParseError(line: number, message: "expected the header " + Self.header.joined(separator: ","))
                }
                sawHeader = true
                continue
            }
            guard fields.count == Self.header.count else {
                throw ParseError(line: number, message: "expected \(Self.header.count) fields, found \(fields.count)")
            }
            guard let provider = Provider(rawValue: fields[1]) else {
                throw ParseError(line: number, message: "unknown provider \"\(fields[1])\"")
            }
            var numbers: [Double] = []
            for (position, field) in fields.enumerated().dropFirst(2) {
                guard let value = Double(field), value.isFinite, value >= 0 else {
                    throw ParseError(
                        line: number, message: "\(Self.header[position]) is not a non-negative number: \"\(field)\"")
                }
                numbers.append(value)
            }
            guard numbers[4] <= 1 else {
                throw ParseError(line: number, message: "batch_discount is a fraction from 0 to 1")
            }
            prices[fields[0]] = ModelPrice(
                model: fields[0], provider: provider, input: numbers[0], cachedInput: numbers[1],
                cacheWrite: numbers[2],
                output: numbers[3], batchDiscount: numbers[4])
        }
        guard sawHeader else { throw ParseError(line: number, message: "empty price file") }
    }

    /// The price of a model (aliases resolved, a dated snapshot such as
    /// `gpt-4o-2024-08-06` or `claude-sonnet-4-5-20250929` priced as its model), or
    /// nil when unknown.
    public func price(for model: String) -> ModelPrice? {
        let name = ModelRouter.aliases[model] ?? model
        return prices[name] ?? Self.withoutSnapshotDate(name).flatMap { prices[$0] }
    }

    /// `name` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD`, or nil if it has none.
    static func withoutSnapshotDate(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        func isDigits(_ range: Range<Int>) -> Bool {
            range.lowerBound >= 0 && range.allSatisfy { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
        }
        let n = bytes.count
        // -YYYY-MM-DD
        if n > 11, bytes[n - 11] == 0x2D, bytes[n - 6] == 0x2D, bytes[n - 3] == 0x2D, isDigits(n - 10..<n - 6),
            isDigits(n - 5..<n - 3), isDigits(n - 2..<n)
        {
            return String(decoding: bytes[..<(n - 11)], as: UTF8.self)
        }
        // -YYYYMMDD
        if n > 9, bytes[n - 9] == 0x2D, isDigits(n - 8..<n) {
            return String(decoding: bytes[..<(n - 9)], as: UTF8.self)
        }
        return nil
    }

    /// What `usage` costs on `model` in US dollars, or nil when the model has no
    /// price (unknown, which is never the same as free).
    public func cost(of usage: Usage, model: String, batch: Bool = false) -> Double? {
        price(for: model)?.cost(of: usage, batch: batch)
    }
}

extension ModelPrice {
    /// Each token class at its price; in batch mode, less the batch discount (which
    /// applies to every class, cache reads and writes included).
    ///
    /// One-hour cache writes cost twice the input price (Anthropic's rate; the
    /// `cache_write` column is the 5-minute rate, 1.25× input).
    public func cost(of usage: Usage, batch: Bool = false) -> Double {
        let oneHour = min(max(usage.cacheWriteOneHourTokens, 0), usage.cacheWriteTokens)
        let full =
            (Double(usage.inputTokens) * input + Double(usage.cachedInputTokens) * cachedInput
                + Double(usage.cacheWriteTokens - oneHour) * cacheWrite + Double(oneHour) * 2 * input
                + Double(usage.outputTokens) * output) / 1_000_000
        return batch ? full * (1 - batchDiscount) : full
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = self[...]
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
