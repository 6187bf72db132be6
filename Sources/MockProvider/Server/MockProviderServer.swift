import NIOCore
import NIOHTTP1
import NIOPosix

/// A fake LLM provider over HTTP/1.1, for tests, benchmarks and offline demos.
///
/// It speaks the providers' APIs as `PROVIDERS.md` describes them (OpenAI and
/// Together chat completions, Anthropic messages, Gemini generateContent, and the
/// batch APIs of OpenAI, Anthropic and Gemini with their file uploads), answers with
/// deterministic replies (`MockReplies`, or `StructuredReply` when a request asks for
/// JSON), and has knobs for latency, rate limits, injected faults and how batches run
/// (`Configuration`).
///
/// ```swift
/// let server = try await MockProviderServer.start(.init())
/// // POST \(server.url)/v1/chat/completions …
/// print(server.stats.totalRequests)
/// await server.shutdown()
/// ```
///
/// Built on SwiftNIO: one event loop per core, keep-alive and pipelining, answers
/// written straight into byte buffers.
public final class MockProviderServer: Sendable {
    /// The knobs the server runs with.
    public let configuration: Configuration
    /// The port it listens on (the one picked when `configuration.port` is 0).
    public let port: Int

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let state: MockServerState

    private init(
        configuration: Configuration, port: Int, group: MultiThreadedEventLoopGroup, channel: any Channel,
        state: MockServerState
    ) {
        self.configuration = configuration
        self.port = port
        self.group = group
        self.channel = channel
        self.state = state
    }

    /// `http://HOST:PORT`, the root of every endpoint. OpenAI clients want
    /// `openAIBaseURL`, which adds `/v1`.
    public var url: String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "http://\(host):\(port)"
    }

    /// The base URL for OpenAI clients (`OPENAI_BASE_URL`): `url` + `/v1`.
    public var openAIBaseURL: String { url + "/v1" }

    /// What the server has served so far.
    public var stats: MockStats { state.snapshot() }

    /// Zeroes the counters (as `POST /_mock/reset` does).
    public func resetStats() {
        state.stats.reset()
    }

    /// Starts a server and returns once it listens.
    public static func start(_ configuration: Configuration = Configuration()) async throws -> MockProviderServer {
        try configuration.validate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        do {
            let (channel, state) = try bind(configuration, group: group)
            return try await make(configuration, group: group, channel: channel.get(), state: state)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Starts a server and returns once it listens, blocking the calling thread (for
    /// synchronous callers such as the `llmq mock` command).
    public static func start(_ configuration: Configuration = Configuration()) throws -> MockProviderServer {
        try configuration.validate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        do {
            let (channel, state) = try bind(configuration, group: group)
            return try make(configuration, group: group, channel: channel.wait(), state: state)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    /// Stops listening, closes every connection (stalled ones included) and stops
    /// the event loops.
    public func shutdown() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// Starts a server, runs `body` with it, and shuts it down whether `body`
    /// returns or throws: the lifetime a test wants.
    public static func with<T>(
        _ configuration: Configuration = Configuration(), _ body: (MockProviderServer) async throws -> T
    ) async throws -> T {
        let server = try await start(configuration)
        do {
            let result = try await body(server)
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }

    /// `shutdown()` for synchronous callers; blocks until the loops have stopped.
    public func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private static func bind(_ configuration: Configuration, group: MultiThreadedEventLoopGroup) throws -> (
        EventLoopFuture<any Channel>, MockServerState
    ) {
        let loops = Array(group.makeIterator())
        let state = MockServerState(
            configuration: configuration, loops: loops, now: NIODeadline.now().uptimeNanoseconds)
        let channel = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // One handler parses, answers and frames (see `MockHTTPHandler`).
                    try channel.pipeline.syncOperations.addHandler(
                        MockHTTPHandler(server: state, shard: state.stats.shard(for: channel.eventLoop)))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
        return (channel, state)
    }

    private static func make(
        _ configuration: Configuration, group: MultiThreadedEventLoopGroup, channel: any Channel,
        state: MockServerState
    ) throws -> MockProviderServer {
        guard let port = channel.localAddress?.port else {
            channel.close(promise: nil)
            throw ConfigurationError.invalid("the server socket has no port")
        }
        return MockProviderServer(
            configuration: configuration, port: port, group: group, channel: channel, state: state)
    }
}
