import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A port on 127.0.0.1 where connecting hangs: a listener whose accept queue is
/// full, so the kernel drops further SYNs and a client waits for its connect timeout.
final class Blackhole: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private var fillers: [Int32] = []

    init() throws {
        // Backlog 0 still queues one connection; fillers take every free slot.
        (listener, port) = try ScriptedServer.listen(backlog: 0)
        for _ in 0..<8 {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            fillers.append(socket)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
            if poll(&poller, 1, 200) == 0 { return }  // this one hangs: the queue is full
        }
        throw BlackholeError()
    }

    struct BlackholeError: Error, CustomStringConvertible {
        var description: String { "could not fill the accept queue of a loopback listener" }
    }

    deinit {
        for socket in fillers { close(socket) }
        close(listener)
    }
}
