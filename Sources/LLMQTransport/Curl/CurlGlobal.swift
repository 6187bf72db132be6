import CCurl

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Process-wide setup, done once before the first transport exists.
enum CurlGlobal {
    /// With CURLOPT_NOSIGNAL curl no longer shields a write to a closed socket, so
    /// SIGPIPE is ignored for the process (as most servers and clients do).
    static let initialized: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return curl_global_init(llmq_global_all()) == CURLE_OK
    }()
}
