import CCurl

/// An `HTTPTransport` on libcurl's multi interface, driven by one dedicated thread.
///
/// Create one per process and share it: connections are cached and reused across
/// requests, and HTTP/2 requests to the same host multiplex over one connection.
/// Proxies are taken from `http_proxy`, `https_proxy` and `no_proxy` by libcurl.
/// A class because curl's C callbacks need a stable reference; the curl thread
/// ends once the transport is released and its last request has finished.
public final class CurlTransport: HTTPTransport {
    /// Connection limits, applied to the transport's multi handle.
    public struct Configuration: Hashable, Sendable {
        /// Idle connections kept for reuse. Default 1024: curl's default (4 × the
        /// number of transfers) closes idle keep-alive connections under load and
        /// reconnects.
        public var maxCachedConnections: Int
        /// Open connections at most, 0 for no limit (the default). Requests beyond
        /// it wait for a connection.
        public var maxConnections: Int
        /// Open connections per host at most, 0 for no limit (the default).
        public var maxConnectionsPerHost: Int
        /// Concurrent streams per HTTP/2 connection at most (the server's own limit
        /// applies too). Default 1000.
        public var maxConcurrentStreams: Int

        public init(
            maxCachedConnections: Int = 1024,
            maxConnections: Int = 0,
            maxConnectionsPerHost: Int = 0,
            maxConcurrentStreams: Int = 1000
        ) {
            self.maxCachedConnections = maxCachedConnections
            self.maxConnections = maxConnections
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.maxConcurrentStreams = maxConcurrentStreams
        }
    }

    public let configuration: Configuration
    private let loop: CurlLoop

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        loop = CurlLoop(configuration: configuration)
    }

    deinit {
        loop.shutdown()
    }

    /// Requests submitted and not yet finished (streamed bodies count until read
    /// to the end or abandoned).
    public var activeRequestCount: Int { loop.activeCount }

    public func send(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPResponse {
        try Self.validate(request)
        let transfer = CurlTransfer(
            request: request, options: options, loop: loop, upload: try request.upload.map(UploadReader.init))
        let raw = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.waiter = .complete(continuation)
                submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
        return HTTPResponse(
            status: raw.status, version: raw.version, headers: HTTPHeaders(rawLines: raw.headerBytes), body: raw.body)
    }

    public func stream(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPStreamingResponse {
        try Self.validate(request)
        let transfer = CurlTransfer(
            request: request, options: options, loop: loop, upload: try request.upload.map(UploadReader.init))
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.waiter = .head(continuation)
                submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }

    /// Hands the transfer to the curl thread, or fails it here if it cannot go.
    private func submit(_ transfer: CurlTransfer) {
        switch loop.submit(transfer) {
        case .accepted: return
        case .cancelled: transfer.fail(CancellationError())
        case .shutDown: transfer.fail(TransportError.shutDown)
        }
    }

    /// Rejects what would let one header smuggle another or cut the request.
    private static func validate(_ request: HTTPRequest) throws {
        func clean(_ text: String) -> Bool {
            !text.utf8.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") || $0 == 0 }
        }
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://"), clean(request.url) else {
            throw TransportError.invalidRequest(reason: "the URL must be absolute http:// or https://")
        }
        for (name, value) in request.headers {
            guard !name.isEmpty, clean(name), !name.utf8.contains(UInt8(ascii: ":")), clean(value) else {
                throw TransportError.invalidRequest(reason: "header \"\(name)\" has a forbidden character")
            }
        }
        guard clean(request.method.rawValue), !request.method.rawValue.isEmpty else {
            throw TransportError.invalidRequest(reason: "invalid method")
        }
        guard request.upload == nil || request.body.isEmpty else {
            throw TransportError.invalidRequest(reason: "a request has either a body or an upload, not both")
        }
    }
}
