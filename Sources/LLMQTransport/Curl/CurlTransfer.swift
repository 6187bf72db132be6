import CCurl

/// One request in flight: its easy handle, the response as it arrives, and the
/// continuation waiting for it.
///
/// Everything but `cancelRequested` is touched only on the curl thread once the
/// transfer is submitted; the loop's lock hands it over.
final class CurlTransfer: @unchecked Sendable {
    enum Waiter {
        case complete(CheckedContinuation<RawResponse, any Error>)
        case head(CheckedContinuation<HTTPStreamingResponse, any Error>)
    }

    /// A finished buffered response; headers are parsed by the caller, off the curl thread.
    struct RawResponse: Sendable {
        var status: Int
        var version: HTTPVersion
        var headerBytes: [UInt8]
        var body: [UInt8]
    }

    let request: HTTPRequest
    let options: HTTPRequestOptions
    let loop: CurlLoop
    /// Header lines for curl's list, built by the caller to keep string work off the
    /// curl thread.
    let headerLines: [String]
    /// Reads `request.upload` for curl (curl thread only once submitted).
    let upload: UploadReader?
    var waiter: Waiter?

    /// Guarded by the loop's lock.
    var cancelRequested = false

    // Curl thread only.
    var handle: CurlLoop.PooledHandle?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var connected = false
    var status = 0
    var version = HTTPVersion.http1_1
    var headerBytes: [UInt8] = []
    var headComplete = false
    var body: [UInt8] = []
    var receivedBytes = 0
    var channel: BodyChannel?

    init(request: HTTPRequest, options: HTTPRequestOptions, loop: CurlLoop, upload: UploadReader? = nil) {
        self.request = request
        self.options = options
        self.loop = loop
        self.upload = upload
        var lines: [String] = []
        lines.reserveCapacity(request.headers.count + 2)
        for (name, value) in request.headers {
            // "Name;" is curl's way to send a header with an empty value.
            lines.append(value.isEmpty ? name + ";" : name + ": " + value)
        }
        // No "Expect: 100-continue" round trip before a large body.
        lines.append("Expect:")
        if request.hasBody && !request.headers.contains("Content-Type") {
            // Otherwise curl labels the body application/x-www-form-urlencoded.
            lines.append("Content-Type:")
        }
        headerLines = lines
    }

    // MARK: Callbacks (curl thread)

    /// One header line, CRLF included. A status line starts a new head, so 1xx
    /// interim responses are discarded; the blank line ends the head.
    func receiveHeaderLine(_ line: UnsafeRawBufferPointer) {
        if line.count >= 5 && line[0] == UInt8(ascii: "H") && line[1] == UInt8(ascii: "T")
            && line[2] == UInt8(ascii: "T") && line[3] == UInt8(ascii: "P") && line[4] == UInt8(ascii: "/")
        {
            parseStatusLine(line)
            headerBytes.removeAll(keepingCapacity: true)
            headComplete = false
            return
        }
        if line.count <= 2 && (line.first == UInt8(ascii: "\r") || line.first == UInt8(ascii: "\n")) {
            if status >= 200 && !headComplete {
                headComplete = true
                if case .head = waiter { deliverHead() }
            }
            return
        }
        if !headComplete { headerBytes.append(contentsOf: line) }
    }

    private func parseStatusLine(_ line: UnsafeRawBufferPointer) {
        // "HTTP/1.1 200 OK\r\n" or "HTTP/2 200 \r\n"
        var index = 5
        while index < line.count && line[index] != UInt8(ascii: " ") { index += 1 }
        let versionText = String(decoding: UnsafeRawBufferPointer(rebasing: line[5..<index]), as: UTF8.self)
        switch versionText {
        case "1.1": version = .http1_1
        case "2", "2.0": version = .http2
        default: version = .other(versionText)
        }
        while index < line.count && line[index] == UInt8(ascii: " ") { index += 1 }
        var code = 0
        while index < line.count, line[index] >= UInt8(ascii: "0"), line[index] <= UInt8(ascii: "9") {
            code = code * 10 + Int(line[index] - UInt8(ascii: "0"))
            index += 1
        }
        status = code
    }

    /// Returns what the write callback must return: the byte count, 0 to abort, or
    /// `CURL_WRITEFUNC_PAUSE`.
    func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        if let channel {
            switch channel.offer(bytes) {
            case .accepted:
                receivedBytes += bytes.count
                return bytes.count
            case .pause: return Int(CURL_WRITEFUNC_PAUSE)
            case .abort: return 0
            }
        }
        if case .head = waiter {
            deliverHead()
            return receiveBody(bytes)
        }
        receivedBytes += bytes.count
        body.append(contentsOf: bytes)
        return bytes.count
    }

    private func deliverHead() {
        guard case .head(let continuation) = waiter else { return }
        waiter = nil
        let channel = BodyChannel(limit: options.streamBufferLimit, control: self)
        self.channel = channel
        let response = HTTPStreamingResponse(
            status: status, version: version, headers: HTTPHeaders(rawLines: headerBytes),
            body: HTTPBody(channel: channel))
        continuation.resume(returning: response)
    }

    // MARK: Completion (curl thread, after the handle left the multi handle)

    func complete() {
        if let channel {
            channel.finish(throwing: nil)
            self.channel = nil
            return
        }
        switch waiter {
        case .complete(let continuation):
            waiter = nil
            continuation.resume(
                returning: RawResponse(status: status, version: version, headerBytes: headerBytes, body: body))
        case .head:
            deliverHead()
            complete()
        case nil:
            break
        }
    }

    func fail(_ error: any Error) {
        if let channel {
            channel.finish(throwing: error)
            self.channel = nil
            return
        }
        switch waiter {
        case .complete(let continuation):
            waiter = nil
            continuation.resume(throwing: error)
        case .head(let continuation):
            waiter = nil
            continuation.resume(throwing: error)
        case nil:
            break
        }
    }
}

extension CurlTransfer: BodyProducerControl {
    func resumeProducer() { loop.unpause(self) }

    func cancelProducer() { loop.cancel(self) }
}
