import Foundation
import LLMQCore

/// Finds and reads the price table: `--prices FILE`, else `LLMQ_PRICES`, else
/// `prices.csv` in the current directory.
public enum PriceLoader {
    public struct LoadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "Unable to read prices from \(path): \(reason)" }
    }

    /// The price table, or nil when none was found. A file that exists but cannot be
    /// parsed is an error.
    public static func load(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> PriceTable?
    {
        let explicit = option ?? environment["LLMQ_PRICES"].flatMap { $0.isEmpty ? nil : $0 }
        let path = explicit ?? "prices.csv"
        guard FileManager.default.fileExists(atPath: path) else {
            if explicit != nil { throw LoadError(path: path, reason: "no such file") }
            return nil
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(path: path, reason: error.localizedDescription)
        }
        do {
            return try PriceTable(csv: text)
        } catch {
            throw LoadError(path: path, reason: error.description)
        }
    }
}
