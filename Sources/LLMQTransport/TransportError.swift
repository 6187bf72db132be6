/// Why a request failed below HTTP: a caller matches these to decide what to retry.
///
/// HTTP error statuses are not transport errors: they arrive as a response (see
/// `HTTPResponse.requireSuccess()`). Cancelling the calling task throws
/// `CancellationError`, not a `TransportError`. Descriptions name the host and
/// curl's reason, never a request body, a query string or a header value.
public enum TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which deadline expired.
    public enum TimeoutKind: Hashable, Sendable {
        /// No connection (TLS handshake included) within `connectTimeout`.
        case connect
        /// The whole exchange took longer than `totalTimeout`.
        case total
        /// Nothing arrived for `idleTimeout`.
        case idle
    }

    /// The request cannot be sent as given (malformed URL, unsupported scheme,
    /// a header containing a line break).
    case invalidRequest(reason: String)
    /// The host name did not resolve.
    case dnsFailure(host: String)
    /// The host actively refused the connection (nothing listens on the port).
    case connectionRefused(host: String)
    /// Connecting failed for another reason (unreachable network, proxy failure).
    case connectFailed(host: String, reason: String)
    /// The connection broke before the response was complete. `status` is the
    /// response status if its head had arrived; `receivedBytes` counts body bytes
    /// received. The server may have processed the request.
    case connectionClosed(status: Int?, receivedBytes: Int)
    /// TLS could not be established or the peer's certificate was not trusted.
    case tlsFailure(reason: String)
    case timeout(TimeoutKind)
    /// The server's reply was not valid HTTP.
    case protocolError(reason: String)
    /// The transport was shut down before the request finished.
    case shutDown
    /// Any other libcurl failure, with curl's error code and message.
    case other(code: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidRequest(let reason): "invalid request: \(reason)"
        case .dnsFailure(let host): "could not resolve host \(host)"
        case .connectionRefused(let host): "connection refused by \(host)"
        case .connectFailed(let host, let reason): "could not connect to \(host): \(reason)"
        case .connectionClosed(let status, let received):
            if let status {
                "connection closed after HTTP \(status) with \(received) body bytes received, before the response was complete"
            } else {
                "connection closed before a response arrived"
            }
        case .tlsFailure(let reason): "TLS failure: \(reason)"
        case .timeout(.connect): "timed out connecting"
        case .timeout(.total): "timed out: the request exceeded its total timeout"
        case .timeout(.idle): "timed out: nothing received within the idle timeout"
        case .protocolError(let reason): "invalid HTTP reply: \(reason)"
        case .shutDown: "the HTTP transport was shut down"
        case .other(let code, let reason): "transfer failed (curl error \(code)): \(reason)"
        }
    }
}
