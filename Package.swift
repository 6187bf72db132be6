// swift-tools-version:6.1
import PackageDescription

// Why each dependency is here:
// - swift-argument-parser: the `llmq` command line (subcommands, help, validation).
// - GRDB.swift: SQLite access for the queue store (migrations, transactions,
//   statements), built against the system libsqlite3; its GRDBSQLite module also
//   gives the raw C API used on the bulk insert path.
// SHA-256 comes from the system libcrypto (OpenSSL 3, present with libssl-dev,
// which libcurl4-openssl-dev pulls in) through the tiny COpenSSL module: the same
// speed as swift-crypto without its 60-80 s build on every CI run.
let package = Package(
    name: "llmq",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "llmq", targets: ["llmq"]),
        .library(name: "LLMQCore", targets: ["LLMQCore"]),
        .library(name: "LLMQStore", targets: ["LLMQStore"]),
        .library(name: "LLMQEngine", targets: ["LLMQEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
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
            dependencies: ["LLMQCore", "LLMQStore"]
        ),
        .executableTarget(
            name: "llmq",
            dependencies: [
                "LLMQCore", "LLMQStore", "LLMQEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LLMQCoreTests", dependencies: ["LLMQCore"]),
        .testTarget(
            name: "LLMQStoreTests",
            dependencies: ["LLMQStore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "LLMQEndToEndTests", dependencies: ["LLMQCore", "llmq"]),
    ]
)
