import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine

extension LLMQ {
    struct Prices: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the price table (USD per million tokens) or one model's prices.")

        @Argument(help: "A model or alias; omit for the whole table.")
        var model: String?

        @OptionGroup var priceOptions: PriceOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            guard let table = try priceOptions.load() else {
                throw ValidationError("no price table: pass --prices FILE, set LLMQ_PRICES, or run where prices.csv is")
            }
            var rows = table.prices.values.sorted {
                ($0.provider.rawValue, $0.model) < ($1.provider.rawValue, $1.model)
            }
            if let model {
                guard let price = table.price(for: model) else {
                    throw ValidationError(
                        "no price for \(model): its cost will be reported as unknown; add a row to the price table")
                }
                rows = [price]
            }
            if json {
                let list: [JSONValue] = rows.map { price in
                    .object([
                        "model": .string(price.model), "provider": .string(price.provider.rawValue),
                        "input": .number(price.input), "cached_input": .number(price.cachedInput),
                        "cache_write": .number(price.cacheWrite), "output": .number(price.output),
                        "batch_discount": .number(price.batchDiscount),
                    ])
                }
                print(CanonicalJSON.string(.object(["prices": .array(list)])))
                return
            }
            let header = ["MODEL", "PROVIDER", "INPUT", "CACHED", "CACHE WRITE", "OUTPUT", "BATCH"]
            let cells = rows.map { price in
                [
                    price.model, price.provider.rawValue, amount(price.input), amount(price.cachedInput),
                    amount(price.cacheWrite), amount(price.output),
                    price.batchDiscount > 0 ? "-\(Int((price.batchDiscount * 100).rounded()))%" : "-",
                ]
            }
            print(TextTable.render(header: header, rows: cells, leftAligned: 2))
            print("USD per million tokens")
        }

        func amount(_ value: Double) -> String { String(format: "%.3f", value) }
    }
}
