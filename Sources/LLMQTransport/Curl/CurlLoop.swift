import CCurl

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The curl multi handle and the one thread that drives it.
///
/// The thread waits in `epoll_wait` on the sockets curl asks it to watch (through
/// `CURLMOPT_SOCKETFUNCTION`) and an eventfd, and hands each ready socket and each
/// expired curl timer to `curl_multi_socket_action`, then reads finished transfers.
/// Unlike `curl_multi_poll`, which scans every connection on every wake-up, the
/// cost of a wake-up does not grow with the number of connections (1,024 slots
/// made poll the biggest cost of `llmq work`). Tasks never touch a curl handle:
/// they queue commands under `lock` and wake the thread through the eventfd (only
/// when it sleeps, so a busy loop is not woken once per request).
final class CurlLoop: @unchecked Sendable {
    /// An easy handle with its error buffer, reused across requests.
    struct PooledHandle {
        let easy: UnsafeMutableRawPointer
        let errorBuffer: UnsafeMutablePointer<CChar>
    }

    private enum Command {
        case add(CurlTransfer)
        case cancel(CurlTransfer)
        case unpause(CurlTransfer)
    }

    enum SubmitResult { case accepted, cancelled, shutDown }

    private let lock = Lock()
    // Guarded by `lock`.
    private var commands: [Command] = []
    private var sleeping = false
    private var wakePending = false
    private var shutdownRequested = false
    private var exited = false
    private var publishedActiveCount = 0

    // Curl thread only (curl calls the socket and timer callbacks on it).
    private let epoll: Int32
    private let wakeFD: Int32
    /// When curl wants `socket_action(CURL_SOCKET_TIMEOUT)`, in monotonic
    /// nanoseconds; nil: no timer.
    private var timerDeadline: UInt64?
    private var watched: Set<Int32> = []
    private let multi: UnsafeMutableRawPointer
    private var active: [ObjectIdentifier: CurlTransfer] = [:]
    private var pool: [PooledHandle] = []
    private let maxPooledHandles = 1024

    init(configuration: CurlTransport.Configuration) {
        _ = CurlGlobal.initialized
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        llmq_multi_setopt_long(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        llmq_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections)
        llmq_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxConnections)
        llmq_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        llmq_multi_setopt_long(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, configuration.maxConcurrentStreams)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard epoll >= 0, wakeFD >= 0 else { fatalError("cannot create the curl loop's epoll or eventfd: \(errno)") }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, &event)
        // The callbacks only run on the curl thread, which holds a reference.
        let context = Unmanaged.passUnretained(self).toOpaque()
        llmq_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, context)
        llmq_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, context)
        llmq_multi_setopt_socket_callback(multi) { _, socket, what, context, _ in
            Unmanaged<CurlLoop>.fromOpaque(context!).takeUnretainedValue().watch(socket, what)
            return 0
        }
        llmq_multi_setopt_timer_callback(multi) { _, milliseconds, context in
            let loop = Unmanaged<CurlLoop>.fromOpaque(context!).takeUnretainedValue()
            loop.timerDeadline =
                milliseconds < 0 ? nil : CurlLoop.monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000
            return 0
        }
        startThread()
    }

    /// Requests in flight (submitted and not yet finished), as last published by the
    /// curl thread.
    var activeCount: Int { lock.withLock { publishedActiveCount } }

    // MARK: Commands from tasks

    func submit(_ transfer: CurlTransfer) -> SubmitResult {
        lock.lock()
        defer { lock.unlock() }
        if exited { return .shutDown }
        if transfer.cancelRequested { return .cancelled }
        commands.append(.add(transfer))
        publishedActiveCount += 1
        wakeLocked()
        return .accepted
    }

    func cancel(_ transfer: CurlTransfer) {
        lock.lock()
        defer { lock.unlock() }
        guard !transfer.cancelRequested, !exited else { return }
        transfer.cancelRequested = true
        commands.append(.cancel(transfer))
        wakeLocked()
    }

    func unpause(_ transfer: CurlTransfer) {
        lock.lock()
        defer { lock.unlock() }
        guard !exited else { return }
        commands.append(.unpause(transfer))
        wakeLocked()
    }

    /// Lets the thread end once every request in flight has finished.
    func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        shutdownRequested = true
        wakeLocked(force: true)
    }

    /// With the lock held, so the thread cannot free the multi handle meanwhile.
    private func wakeLocked(force: Bool = false) {
        guard !exited, (sleeping && !wakePending) || force else { return }
        wakePending = true
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: The curl thread

    private func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { context in
                let loop = Unmanaged<CurlLoop>.fromOpaque(context!).takeRetainedValue()
                llmq_set_thread_name("llmq-curl")
                loop.run()
                return nil
            }, context)
        guard created == 0 else { fatalError("cannot start the curl thread: error \(created)") }
        pthread_detach(thread)
    }

    private func run() {
        var batch: [Command] = []
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            lock.lock()
            swap(&batch, &commands)
            if shutdownRequested && batch.isEmpty && active.isEmpty {
                exited = true
                lock.unlock()
                break
            }
            lock.unlock()

            for command in batch {
                switch command {
                case .add(let transfer): add(transfer)
                case .cancel(let transfer): cancelActive(transfer)
                case .unpause(let transfer):
                    if let handle = transfer.handle, active[ObjectIdentifier(transfer)] != nil {
                        curl_easy_pause(handle.easy, llmq_pause_cont())
                    }
                }
            }
            batch.removeAll(keepingCapacity: true)
            // New transfers and unpaused ones start from curl's timer.
            fireTimerIfDue()
            readMessages()

            lock.lock()
            let idle = commands.isEmpty
            if idle { sleeping = true }
            lock.unlock()
            let ready = epoll_wait(epoll, &events, Int32(events.count), idle ? waitMilliseconds() : 0)
            if idle {
                lock.lock()
                sleeping = false
                wakePending = false
                lock.unlock()
            }
            var running: Int32 = 0
            for index in 0..<Int(max(0, ready)) {
                let fd = events[index].data.fd
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                let flags = events[index].events
                var mask: Int32 = 0
                if flags & EPOLLIN.rawValue != 0 { mask |= CURL_CSELECT_IN }
                if flags & EPOLLOUT.rawValue != 0 { mask |= CURL_CSELECT_OUT }
                if flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { mask |= CURL_CSELECT_ERR }
                curl_multi_socket_action(multi, fd, mask, &running)
            }
            fireTimerIfDue()
            readMessages()
        }
        for handle in pool { releaseHandle(handle) }
        pool.removeAll()
        curl_multi_cleanup(multi)
        close(wakeFD)
        close(epoll)
    }

    /// Starts, changes or stops watching a socket, as curl asks.
    private func watch(_ socket: Int32, _ what: Int32) {
        if what == CURL_POLL_REMOVE {
            epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil)
            watched.remove(socket)
            return
        }
        var event = epoll_event()
        if what & CURL_POLL_IN != 0 { event.events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { event.events |= EPOLLOUT.rawValue }
        event.data.fd = socket
        let operation = watched.contains(socket) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        // A socket closed without a REMOVE leaves epoll by itself, and its number
        // may come back: if one operation fails, the other is the right one.
        if epoll_ctl(epoll, operation, socket, &event) != 0 {
            epoll_ctl(epoll, operation == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, &event)
        }
        watched.insert(socket)
    }

    /// Lets curl handle its timeouts (and start new transfers) once its timer is due.
    private func fireTimerIfDue() {
        guard let deadline = timerDeadline, Self.monotonicNanoseconds() >= deadline else { return }
        timerDeadline = nil
        var running: Int32 = 0
        curl_multi_socket_action(multi, llmq_socket_timeout(), 0, &running)
    }

    /// How long to wait for sockets: until curl's timer, at most a second.
    private func waitMilliseconds() -> Int32 {
        guard let deadline = timerDeadline else { return 1000 }
        let now = Self.monotonicNanoseconds()
        guard deadline > now else { return 0 }
        return Int32(min(1000, (deadline - now + 999_999) / 1_000_000))
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private func readMessages() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let result = message.pointee.data.result
            var context: UnsafeMutableRawPointer?
            llmq_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &context)
            guard let context else { continue }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            if result == CURLE_OK {
                detach(transfer)
                transfer.complete()
            } else {
                let error = CurlErrorMapper.error(for: result, transfer: transfer, easy: easy)
                detach(transfer)
                transfer.fail(error)
            }
        }
    }

    private func add(_ transfer: CurlTransfer) {
        let handle = takeHandle()
        transfer.handle = handle
        if let error = CurlRequestSetup.configure(handle, for: transfer) {
            recycle(handle, transfer: transfer)
            unpublish()
            transfer.fail(error)
            return
        }
        active[ObjectIdentifier(transfer)] = transfer
        let code = curl_multi_add_handle(multi, handle.easy)
        if code != CURLM_OK {
            active[ObjectIdentifier(transfer)] = nil
            recycle(handle, transfer: transfer)
            unpublish()
            transfer.fail(TransportError.other(code: Int(code.rawValue), reason: "curl_multi_add_handle failed"))
        }
    }

    private func cancelActive(_ transfer: CurlTransfer) {
        guard active[ObjectIdentifier(transfer)] != nil else { return }
        detach(transfer)
        transfer.fail(CancellationError())
    }

    /// Takes a transfer out of the multi handle and the table and recycles its handle.
    private func detach(_ transfer: CurlTransfer) {
        guard let handle = transfer.handle else { return }
        curl_multi_remove_handle(multi, handle.easy)
        active[ObjectIdentifier(transfer)] = nil
        recycle(handle, transfer: transfer)
        unpublish()
    }

    private func unpublish() {
        lock.withLock { publishedActiveCount -= 1 }
    }

    private func recycle(_ handle: PooledHandle, transfer: CurlTransfer) {
        transfer.handle = nil
        if let list = transfer.headerList {
            curl_slist_free_all(list)
            transfer.headerList = nil
        }
        // Reset now so a pooled handle holds no pointer to a finished transfer.
        curl_easy_reset(handle.easy)
        if pool.count < maxPooledHandles { pool.append(handle) } else { releaseHandle(handle) }
    }

    private func takeHandle() -> PooledHandle {
        if let handle = pool.popLast() { return handle }
        guard let easy = curl_easy_init() else { fatalError("curl_easy_init failed") }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        buffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        return PooledHandle(easy: easy, errorBuffer: buffer)
    }

    private func releaseHandle(_ handle: PooledHandle) {
        curl_easy_cleanup(handle.easy)
        handle.errorBuffer.deallocate()
    }
}
