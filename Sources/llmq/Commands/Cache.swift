import ArgumentParser
import Foundation
import LLMQCore
import LLMQStore

extension LLMQ {
    struct Cache: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect or clear the response cache (answers never paid for twice).",
            subcommands: [Stats.self, Clear.self])

        /// Where the cache lives, shared by both subcommands.
        struct Location: ParsableArguments {
            @Option(help: "The cache file (default: $LLMQ_CACHE, else cache.sqlite in the home).")
            var cache: String?

            @OptionGroup var homeOptions: HomeOptions

            func open() throws -> SQLiteResponseCache {
                let home = QueueHome.resolve(option: homeOptions.home)
                return try SQLiteResponseCache(url: SQLiteResponseCache.url(option: cache, home: home))
            }
        }

        struct Stats: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show entries, size, hits and money saved.")

            @OptionGroup var location: Location

            @Flag(help: "Print JSON.")
            var json = false

            func run() throws {
                let stats = try location.open().stats()
                if json {
                    let object: JSONValue = .object([
                        "bytes": .int(stats.bytes), "entries": .int(Int64(stats.entries)),
                        "hits": .int(Int64(stats.hits)), "saved_usd": .number(stats.savedUSD),
                    ])
                    print(CanonicalJSON.string(object))
                } else {
                    print(
                        "\(stats.entries) answers, \(ByteCountFormatter.string(fromByteCount: stats.bytes, countStyle: .file)), "
                            + "\(stats.hits) hits, \(money(stats.savedUSD)) saved")
                }
            }
        }

        struct Clear: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete every cached answer.")

            @OptionGroup var location: Location

            func run() throws {
                let removed = try location.open().clear()
                print("removed \(removed) cached answers")
            }
        }
    }
}
