import CCurl

/// The callbacks curl calls on its thread. Non-capturing: each finds its transfer
/// through the context pointer, which the loop's table keeps alive.
enum CurlCallbacks {
    static let write: curl_write_callback = { buffer, size, count, context in
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
        return transfer.receiveBody(UnsafeRawBufferPointer(start: buffer, count: size * count))
    }

    static let header: curl_write_callback = { buffer, size, count, context in
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
        transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: buffer, count: size * count))
        return size * count
    }

    /// Fills curl's buffer with the next bytes of a streamed request body.
    static let read: curl_read_callback = { buffer, size, count, context in
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
        guard let upload = transfer.upload, let buffer else { return 0 }
        let read = upload.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
        return read < 0 ? Int(CURL_READFUNC_ABORT) : read
    }

    /// Rewinds a streamed request body (curl sends it again on a new connection).
    static let seek: curl_seek_callback = { context, offset, origin in
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
        guard origin == SEEK_SET, let upload = transfer.upload, upload.seek(to: Int64(offset)) else {
            return Int32(CURL_SEEKFUNC_CANTSEEK)
        }
        return Int32(CURL_SEEKFUNC_OK)
    }

    /// Called once the connection is up (or reused), TLS included: a timeout after
    /// this point is not a connect timeout.
    static let prerequest: curl_prereq_callback = { context, _, _, _, _ in
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
        transfer.connected = true
        return CURL_PREREQFUNC_OK
    }
}

/// Turns an `HTTPRequest` and its options into easy-handle options.
enum CurlRequestSetup {
    /// Configures a freshly reset handle; returns an error if the request is unusable.
    static func configure(_ handle: CurlLoop.PooledHandle, for transfer: CurlTransfer) -> TransportError? {
        let easy = handle.easy
        let request = transfer.request
        let options = transfer.options
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        handle.errorBuffer[0] = 0

        var code = request.url.withCString { llmq_easy_setopt_pointer(easy, CURLOPT_URL, $0) }
        guard code == CURLE_OK else { return .invalidRequest(reason: "the URL is not usable") }
        // No signals from curl (it would otherwise use SIGALRM for DNS timeouts).
        llmq_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        llmq_easy_setopt_long(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)
        llmq_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, handle.errorBuffer)
        llmq_easy_setopt_pointer(easy, CURLOPT_PRIVATE, context)
        llmq_easy_setopt_write_callback(easy, CURLOPT_WRITEFUNCTION, CurlCallbacks.write)
        llmq_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        llmq_easy_setopt_write_callback(easy, CURLOPT_HEADERFUNCTION, CurlCallbacks.header)
        llmq_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
        llmq_easy_setopt_prereq_callback(easy, CurlCallbacks.prerequest)
        llmq_easy_setopt_pointer(easy, CURLOPT_PREREQDATA, context)

        switch options.version {
        case .http2:
            llmq_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS)
            // Wait for the connection being set up and multiplex on it rather than
            // opening one connection per request. Only over TLS: without it HTTP/2
            // is never negotiated, and the wait only holds every request back until
            // the first answer (a whole round trip at start, measured at 1,024 slots).
            if request.url.lowercased().hasPrefix("https:") {
                llmq_easy_setopt_long(easy, CURLOPT_PIPEWAIT, 1)
            }
        case .http1_1, .other:
            llmq_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1)
        }
        if let timeout = options.connectTimeout {
            llmq_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(timeout))
        }
        if let timeout = options.totalTimeout {
            llmq_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, milliseconds(timeout))
        }
        if let timeout = options.idleTimeout {
            llmq_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
            llmq_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, (milliseconds(timeout) + 999) / 1000))
        }
        if let caFile = options.caFile {
            caFile.withCString { _ = llmq_easy_setopt_pointer(easy, CURLOPT_CAINFO, $0) }
        }

        let method = request.method
        if method == .head {
            llmq_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if method == .get && !request.hasBody {
            // The default after a reset.
        } else {
            if let upload = transfer.upload {
                // Streamed from its parts by the read callback, of a known length.
                llmq_easy_setopt_long(easy, CURLOPT_POST, 1)
                llmq_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(upload.length))
                llmq_easy_setopt_read_callback(easy, CurlCallbacks.read)
                llmq_easy_setopt_pointer(easy, CURLOPT_READDATA, context)
                llmq_easy_setopt_seek_callback(easy, CurlCallbacks.seek)
                llmq_easy_setopt_pointer(easy, CURLOPT_SEEKDATA, context)
            } else if !request.body.isEmpty || method == .post || method == .put || method == .patch {
                llmq_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
                if request.body.isEmpty {
                    code = llmq_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, Self.emptyBody.utf8Start)
                } else {
                    code = request.body.withUnsafeBytes {
                        llmq_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress)
                    }
                }
                guard code == CURLE_OK else { return .other(code: Int(code.rawValue), reason: "cannot set the body") }
            }
            if method != .post {
                code = method.rawValue.withCString { llmq_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, $0) }
                guard code == CURLE_OK else { return .invalidRequest(reason: "unusable method \(method)") }
            }
        }

        var list: UnsafeMutablePointer<curl_slist>?
        for line in transfer.headerLines {
            list = line.withCString { curl_slist_append(list, $0) }
        }
        transfer.headerList = list
        llmq_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, list)
        return nil
    }

    private static let emptyBody: StaticString = ""

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let total = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return max(1, Int(clamping: total))
    }
}
