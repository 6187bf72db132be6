/// Sends HTTP requests: the seam between provider adapters and the network.
///
/// A transport never throws for an HTTP status: a 429 or 500 is a response.
/// It throws `TransportError` when no complete response could be had, and
/// `CancellationError` when the calling task is cancelled.
public protocol HTTPTransport: Sendable {
    /// Sends a request and returns the complete response.
    func send(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPResponse

    /// Sends a request and returns as soon as the response head arrives; the body
    /// follows as an asynchronous sequence of byte chunks.
    func stream(_ request: HTTPRequest, options: HTTPRequestOptions) async throws -> HTTPStreamingResponse
}

extension HTTPTransport {
    /// Sends a request with default options (HTTP/1.1, 10 s connect timeout).
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await send(request, options: HTTPRequestOptions())
    }

    /// Streams a request with default options (HTTP/1.1, 10 s connect timeout).
    public func stream(_ request: HTTPRequest) async throws -> HTTPStreamingResponse {
        try await stream(request, options: HTTPRequestOptions())
    }
}
