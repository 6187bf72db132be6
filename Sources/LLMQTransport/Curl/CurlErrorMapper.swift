import CCurl

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Maps a failed transfer's curl code to a `TransportError`.
enum CurlErrorMapper {
    /// Called on the curl thread before the handle is reset.
    static func error(for code: CURLcode, transfer: CurlTransfer, easy: UnsafeMutableRawPointer) -> any Error {
        let message = String(cString: transfer.handle!.errorBuffer)
        let reason = message.isEmpty ? String(cString: curl_easy_strerror(code)) : message
        let host = hostOf(transfer.request.url)
        switch code {
        case CURLE_UNSUPPORTED_PROTOCOL where transfer.connected:
            // The reply was not HTTP ("Received HTTP/0.9 when not allowed").
            return TransportError.protocolError(reason: reason)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return TransportError.invalidRequest(reason: reason)
        case CURLE_COULDNT_RESOLVE_HOST:
            return TransportError.dnsFailure(host: host)
        case CURLE_COULDNT_RESOLVE_PROXY:
            return TransportError.connectFailed(host: host, reason: reason)
        case CURLE_COULDNT_CONNECT:
            var osError = 0
            llmq_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osError)
            if osError == Int(ECONNREFUSED) { return TransportError.connectionRefused(host: host) }
            return TransportError.connectFailed(host: host, reason: reason)
        case CURLE_OPERATION_TIMEDOUT:
            return TransportError.timeout(timeoutKind(transfer: transfer, easy: easy))
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_CLIENTCERT,
            CURLE_USE_SSL_FAILED:
            return TransportError.tlsFailure(reason: reason)
        case CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_HTTP2,
            CURLE_HTTP2_STREAM:
            return TransportError.connectionClosed(
                status: transfer.headComplete ? transfer.status : nil, receivedBytes: transfer.receivedBytes)
        case CURLE_WEIRD_SERVER_REPLY, CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP3, CURLE_UNRECOVERABLE_POLL:
            return TransportError.protocolError(reason: reason)
        case CURLE_ABORTED_BY_CALLBACK where transfer.upload?.error != nil,
            CURLE_READ_ERROR where transfer.upload?.error != nil:
            // A streamed request body could not be read.
            return TransportError.invalidRequest(reason: transfer.upload!.error!)
        case CURLE_WRITE_ERROR where transfer.channel != nil:
            // The write callback refused data because the body's reader went away.
            return CancellationError()
        default:
            return TransportError.other(code: Int(code.rawValue), reason: reason)
        }
    }

    /// curl reports every deadline as CURLE_OPERATION_TIMEDOUT; tell them apart by
    /// whether the connection was up and how long the transfer ran.
    private static func timeoutKind(transfer: CurlTransfer, easy: UnsafeMutableRawPointer)
        -> TransportError.TimeoutKind
    {
        var elapsedMicroseconds: curl_off_t = 0
        llmq_easy_getinfo_off_t(easy, CURLINFO_TOTAL_TIME_T, &elapsedMicroseconds)
        let elapsed = Duration.microseconds(elapsedMicroseconds)
        let slack = Duration.milliseconds(5)
        let options = transfer.options
        let totalExpired = options.totalTimeout.map { elapsed >= $0 - slack } ?? false
        if !transfer.connected {
            let connectExpired = options.connectTimeout.map { elapsed >= $0 - slack } ?? false
            return totalExpired && !connectExpired ? .total : .connect
        }
        if totalExpired || options.idleTimeout == nil { return .total }
        return .idle
    }

    /// The `host[:port]` of a URL, for error messages (never the path or query).
    static func hostOf(_ url: String) -> String {
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            rest = rest[rest.index(colon, offsetBy: 3)...]
        }
        if let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        return String(rest)
    }
}
