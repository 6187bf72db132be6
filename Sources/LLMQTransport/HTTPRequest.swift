/// An HTTP request method such as `GET` or `POST`.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let patch = HTTPMethod(rawValue: "PATCH")
    public static let delete = HTTPMethod(rawValue: "DELETE")

    public var description: String { rawValue }
}

/// The HTTP protocol version a request asks for, or a response arrived with.
public enum HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    /// HTTP/1.1 with keep-alive connections, one request at a time per connection.
    case http1_1
    /// HTTP/2 negotiated over TLS (ALPN), many requests multiplexed on one connection.
    ///
    /// For an `http://` URL this falls back to HTTP/1.1: cleartext HTTP/2 (h2c) is
    /// never used because curl 7.88 fails the second request on a reused h2c connection.
    case http2
    /// A response version other than the two above (HTTP/1.0, HTTP/3).
    case other(String)

    public var description: String {
        switch self {
        case .http1_1: "HTTP/1.1"
        case .http2: "HTTP/2"
        case .other(let name): "HTTP/\(name)"
        }
    }
}

/// One HTTP request: what goes on the wire.
///
/// Its `description` shows the method, scheme, host and path only: never the query
/// string (some APIs take keys there), header values or the body.
public struct HTTPRequest: Sendable, CustomStringConvertible {
    public var method: HTTPMethod
    /// An absolute `http://` or `https://` URL.
    public var url: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// A body streamed from its parts (files read as they are sent) instead of
    /// `body`, which must then be empty.
    public var upload: HTTPUpload?

    public init(
        method: HTTPMethod = .get, url: String, headers: HTTPHeaders = [:], body: [UInt8] = [],
        upload: HTTPUpload? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.upload = upload
    }

    /// Whether the request carries a body (bytes or an upload).
    public var hasBody: Bool { !body.isEmpty || upload != nil }

    public var description: String {
        let shownURL = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        let shownBody = upload.map { "a \($0.parts.count)-part upload" } ?? "\(body.count)-byte body"
        return "\(method) \(shownURL) (\(headers.count) headers, \(shownBody))"
    }
}

/// How one request is carried out: protocol, timeouts, trust, stream buffering.
public struct HTTPRequestOptions: Hashable, Sendable {
    /// The protocol to ask for. Default: HTTP/1.1 keep-alive.
    public var version: HTTPVersion
    /// Longest wait to establish a connection, TLS handshake included. Default: 10 s.
    public var connectTimeout: Duration?
    /// Longest time for the whole exchange, from start to the last body byte.
    /// Default: none (use `idleTimeout` for long streams).
    public var totalTimeout: Duration?
    /// Fails a transfer that receives nothing for this long (rounded up to whole
    /// seconds). Default: none.
    ///
    /// curl measures speed over a sliding window of about five seconds, so silence
    /// right after data is detected up to five seconds late.
    public var idleTimeout: Duration?
    /// A PEM file of certificate authorities to trust instead of the system's
    /// (for example a test server's self-signed certificate).
    public var caFile: String?
    /// Bytes of a streamed body buffered ahead of its reader before the transfer is
    /// paused. Default: 1 MiB.
    public var streamBufferLimit: Int

    public init(
        version: HTTPVersion = .http1_1,
        connectTimeout: Duration? = .seconds(10),
        totalTimeout: Duration? = nil,
        idleTimeout: Duration? = nil,
        caFile: String? = nil,
        streamBufferLimit: Int = 1 << 20
    ) {
        self.version = version
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.idleTimeout = idleTimeout
        self.caFile = caFile
        self.streamBufferLimit = streamBufferLimit
    }
}
