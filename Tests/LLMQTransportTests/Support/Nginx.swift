import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An nginx started by a test: TLS with HTTP/2 and HTTP/1.1 (ALPN) on a random
/// loopback port, a self-signed certificate made with the `openssl` CLI, and
/// responses that name their connection (`X-Connection`), so tests can count
/// connections.
final class Nginx: @unchecked Sendable {
    struct Missing: Error, CustomStringConvertible {
        var tool: String
        var description: String {
            "\(tool) is not installed; the TLS and HTTP/2 tests need it (apt-get install -y nginx openssl, as .ci/run does)"
        }
    }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    let port: Int
    let directory: URL
    /// The self-signed certificate, to pass as `HTTPRequestOptions.caFile`.
    let caFile: String
    private let process: ChildProcess

    var baseURL: String { "https://localhost:\(port)" }

    /// Starts nginx; `upstream` is a plain HTTP server that `/echo/` and `/proxy/`
    /// forward to (`/proxy/` unbuffered, for streams).
    init(upstream: Int? = nil, largeFileBytes: Int = 1 << 20) throws {
        guard let nginx = Self.find("nginx") else { throw Missing(tool: "nginx") }
        guard let openssl = Self.find("openssl") else { throw Missing(tool: "openssl") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("llmq-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        caFile = directory.appendingPathComponent("cert.pem").path
        try Self.run(
            openssl,
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-keyout", directory.appendingPathComponent("key.pem").path, "-out", caFile, "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
        var large = [UInt8](repeating: 0, count: largeFileBytes)
        for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }
        try Data(large).write(to: directory.appendingPathComponent("large.bin"))

        var lastError = ""
        for _ in 0..<5 {
            let (socket, port) = try ScriptedServer.listen(backlog: 1)
            close(socket)
            let process = ChildProcess(executableURL: URL(fileURLWithPath: nginx))
            let dir = directory.path
            try Self.config(directory: dir, port: port, upstream: upstream).write(
                toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
            process.arguments = ["-p", dir, "-c", "\(dir)/nginx.conf", "-e", "\(dir)/error.log"]
            process.standardOutput = .nullDevice
            process.standardError = .nullDevice
            try process.run()
            if Self.waitUntilListening(port: port, process: process) {
                self.port = port
                self.process = process
                return
            }
            Self.kill(process)
            lastError = (try? String(contentsOfFile: "\(dir)/error.log", encoding: .utf8)) ?? ""
        }
        throw StartFailure(description: "nginx did not start: \(lastError)")
    }

    deinit {
        Self.kill(process)
        try? FileManager.default.removeItem(at: directory)
    }

    private static func config(directory: String, port: Int, upstream: Int?) -> String {
        let proxies =
            upstream.map { upstream in
                """
                        location /echo/ { proxy_pass http://127.0.0.1:\(upstream); }
                        location /proxy/ {
                            proxy_pass http://127.0.0.1:\(upstream);
                            proxy_buffering off;
                            proxy_http_version 1.1;
                        }
                """
            } ?? ""
        return """
            master_process off;
            daemon off;
            worker_processes 1;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                keepalive_requests 100000;
                http2_max_concurrent_streams 128;
                server {
                    listen 127.0.0.1:\(port) ssl http2;
                    ssl_certificate \(directory)/cert.pem;
                    ssl_certificate_key \(directory)/key.pem;
                    add_header X-Connection $connection always;
                    add_header X-Connection-Requests $connection_requests always;
                    location = /hello { default_type text/plain; return 200 'hello over TLS'; }
                    location = /large.bin { root \(directory); }
            \(proxies)
                }
            }
            """
    }

    /// SIGKILL: nothing to shut down gracefully.
    private static func kill(_ process: ChildProcess) {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    private static func waitUntilListening(port: Int, process: ChildProcess) -> Bool {
        for _ in 0..<200 {
            guard process.isRunning else { return false }
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(socket)
            if connected { return true }
            usleep(20_000)
        }
        return false
    }

    static func find(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        return directories.map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = ChildProcess(executableURL: URL(fileURLWithPath: executable))
        process.arguments = arguments
        process.standardOutput = .nullDevice
        process.standardError = .nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw StartFailure(description: "\(executable) \(arguments.first ?? "") failed")
        }
    }
}
