/// A complete HTTP response, whatever its status.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// True for a 2xx status.
    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The body decoded as UTF-8 (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Returns the response if its status is 2xx, otherwise throws it as an
    /// `HTTPStatusError`, for callers that treat every other status as a failure.
    @discardableResult
    public func requireSuccess() throws(HTTPStatusError) -> HTTPResponse {
        guard isSuccess else { throw HTTPStatusError(response: self) }
        return self
    }
}

/// A response whose status is not 2xx, thrown by `HTTPResponse.requireSuccess()`.
///
/// The description gives the status only; the body (which may echo a prompt) is
/// in `response` for a caller that wants it.
public struct HTTPStatusError: Error, Sendable, CustomStringConvertible {
    public var response: HTTPResponse

    public var status: Int { response.status }

    public var description: String { "HTTP status \(response.status)" }
}

/// A response whose head has arrived and whose body is still streaming in.
///
/// Read `body` once. Dropping it unread (or cancelling the task reading it) aborts
/// the transfer and frees its connection slot.
public struct HTTPStreamingResponse: Sendable {
    public var status: Int
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: HTTPBody

    /// True for a 2xx status.
    public var isSuccess: Bool { (200..<300).contains(status) }
}
