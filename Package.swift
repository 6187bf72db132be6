// swift-tools-version:6.1
import PackageDescription

// Why each dependency is here:
// - swift-argument-parser: the `llmq` command line (subcommands, help, validation).
// - GRDB.swift: SQLite access for the queue store (migrations, transactions,
//   statements), built against the system libsqlite3; its GRDBSQLite module also
//   gives the raw C API used on the bulk insert path.
// - swift-nio: the fake provider's HTTP server (MockProvider, `llmq mock`): an
//   event-loop server fast enough never to be a benchmark's bottleneck, without
//   Hummingbird's extra build time.
// HTTP requests go through the system libcurl (CCurl, LLMQTransport).
// SHA-256 comes from the system libcrypto (OpenSSL 3, present with libssl-dev,
// which libcurl4-openssl-dev pulls in) through the tiny COpenSSL module: the same
// speed as swift-crypto without its 60-80 s build on every CI run.
let package = Package(
    name: "llmq",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "llmq", targets: ["llmq"]),
        .library(name: "LLMQCore", targets: ["LLMQCore"]),
        .library(name: "LLMQStore", targets: ["LLMQStore"]),
        .library(name: "LLMQEngine", targets: ["LLMQEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "LLMQTransport",
            dependencies: ["CCurl"]
        ),
        .target(
            name: "LLMQProviders",
            dependencies: ["LLMQCore", "LLMQTransport"]
        ),
        .target(
            name: "MockProvider",
            dependencies: [
                "LLMQCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "LLMQCore",
            dependencies: ["COpenSSL"]
        ),
        .target(
            name: "LLMQStore",
            dependencies: [
                "LLMQCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "LLMQEngine",
            dependencies: ["LLMQCore", "LLMQStore", "LLMQTransport", "LLMQProviders"]
        ),
        .executableTarget(
            name: "llmq",
            dependencies: [
                "LLMQCore", "LLMQStore", "LLMQEngine", "LLMQTransport", "LLMQProviders", "MockProvider",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LLMQCoreTests", dependencies: ["LLMQCore"]),
        .testTarget(
            name: "LLMQProvidersTests",
            dependencies: ["LLMQProviders", "LLMQCore", "LLMQTransport", "MockProvider"]
        ),
        .testTarget(
            name: "LLMQEngineTests",
            dependencies: ["LLMQEngine", "LLMQCore", "LLMQStore", "LLMQTransport", "LLMQProviders", "MockProvider"]
        ),
        .testTarget(
            name: "LLMQStoreTests",
            dependencies: ["LLMQStore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .executableTarget(
            name: "TransportBench",
            dependencies: ["LLMQTransport"],
            path: "Benchmarks/TransportBench"
        ),
        .testTarget(
            name: "LLMQTransportTests",
            dependencies: [
                "LLMQTransport", "MockProvider",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "MockProviderTests", dependencies: ["MockProvider", "LLMQCore"]),
        .testTarget(name: "LLMQEndToEndTests", dependencies: ["LLMQCore", "LLMQTransport", "MockProvider", "llmq"]),
    ]
)
