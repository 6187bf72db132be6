import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawn`: what the end-to-end tests use
/// instead of Foundation's `Process`.
///
/// `Process.run()` in swift-corelibs-foundation (Swift 6.3.1) lists
/// /proc/self/fd and copies 256 bytes from each `dirent.d_name`, which can read
/// past the end of a mapped page and crash the test run (SIGSEGV in memcpy; fixed
/// upstream by swift-corelibs-foundation#5472). This class never lists
/// /proc/self/fd: the child closes every descriptor from 3 up before it execs.
///
/// The surface is the part of `Process` the tests use, with the executable given
/// to `init`. Set the other properties, then call ``run()`` once; after that the
/// child may be waited for and inspected from any thread. A class because a child
/// process has identity: every reference sees the one exit status.
///
/// Two differences from `Process`, both to start the child as a shell would: its
/// signal mask is empty (not the spawning thread's), and it stays in the test
/// process's process group (so an interrupted `swift test` stops it too). Signal
/// dispositions are inherited as with `Process`: a SIGPIPE the test process
/// ignores stays ignored in the child.
final class ChildProcess: @unchecked Sendable {
    /// Where one of the child's standard streams goes.
    enum Stream {
        /// The test process's own stream.
        case inherited
        /// /dev/null, opened by the child.
        case nullDevice
        /// A pipe: the child gets the read end (stdin) or the write end (stdout,
        /// stderr); `run()` closes the parent's copy of that end.
        case pipe(Pipe)

        var pipe: Pipe? {
            if case .pipe(let pipe) = self { pipe } else { nil }
        }
    }

    enum TerminationReason: Sendable {
        case exit
        case uncaughtSignal
    }

    /// Why `run()` could not start the child.
    struct SpawnError: Error, CustomStringConvertible {
        var call: String
        var code: Int32
        var description: String { "\(call) failed: \(String(cString: strerror(code))) (\(code))" }
    }

    let executableURL: URL
    var arguments: [String] = []
    /// The child's working directory; the test process's when nil.
    var currentDirectoryURL: URL?
    /// The child's whole environment; the test process's when nil.
    var environment: [String: String]?
    var standardInput = Stream.inherited
    var standardOutput = Stream.inherited
    var standardError = Stream.inherited

    private struct State {
        var pid: pid_t = 0
        /// The raw status from `waitpid`, once the child has been reaped.
        var waitStatus: Int32?
    }

    private let state = Mutex(State())

    init(executableURL: URL) {
        self.executableURL = executableURL
    }

    /// The child's process id; 0 before `run()`.
    var processIdentifier: Int32 { state.withLock { $0.pid } }

    /// Starts the child. Throws if it could not be spawned (a missing executable,
    /// a missing working directory).
    func run() throws {
        precondition(processIdentifier == 0, "ChildProcess.run() called twice")
        var path = executableURL.path
        var argv = [path] + arguments

        var actions = posix_spawn_file_actions_t()
        try check("posix_spawn_file_actions_init", posix_spawn_file_actions_init(&actions))
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (stream, target, childEnd) in [
            (standardInput, STDIN_FILENO, \Pipe.fileHandleForReading),
            (standardOutput, STDOUT_FILENO, \Pipe.fileHandleForWriting),
            (standardError, STDERR_FILENO, \Pipe.fileHandleForWriting),
        ] {
            switch stream {
            case .inherited:
                break
            case .nullDevice:
                try check(
                    "posix_spawn_file_actions_addopen",
                    posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0))
            case .pipe(let pipe):
                let descriptor = pipe[keyPath: childEnd].fileDescriptor
                try check(
                    "posix_spawn_file_actions_adddup2", posix_spawn_file_actions_adddup2(&actions, descriptor, target))
            }
        }
        if let directory = currentDirectoryURL?.path {
            if let addChdir = Self.addChdir {
                try check("posix_spawn_file_actions_addchdir_np", addChdir(&actions, directory))
            } else {
                // glibc before 2.29: coreutils' env changes directory, then execs.
                argv = ["/usr/bin/env", "-C", directory, path] + arguments
                path = "/usr/bin/env"
            }
        }
        // Last, after the dup2s: the child keeps only 0, 1 and 2, so it never holds
        // the end of another test's pipe (whose reader would then wait for EOF forever).
        guard let addCloseFrom = Self.addCloseFrom else {
            throw SpawnError(call: "posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later)", code: ENOSYS)
        }
        try check("posix_spawn_file_actions_addclosefrom_np", addCloseFrom(&actions, 3))

        var attributes = posix_spawnattr_t()
        try check("posix_spawnattr_init", posix_spawnattr_init(&attributes))
        defer { posix_spawnattr_destroy(&attributes) }
        // An empty signal mask, as a shell gives: the spawning thread may be a pool
        // thread that blocks SIGINT and SIGTERM, which the child would inherit.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        try check("posix_spawnattr_setsigmask", posix_spawnattr_setsigmask(&attributes, &noSignals))
        try check("posix_spawnattr_setflags", posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK)))

        var pid = pid_t()
        let result = withCStrings(argv) { argv in
            guard let environment else { return posix_spawn(&pid, path, &actions, &attributes, argv, environ) }
            return withCStrings(environment.map { "\($0.key)=\($0.value)" }) { envp in
                posix_spawn(&pid, path, &actions, &attributes, argv, envp)
            }
        }
        try check("posix_spawn \(path)", result)
        state.withLock { $0.pid = pid }

        // The child has its own copies now; a parent holding the write end of the
        // child's stdout would never read EOF. (Errors ignored: the child runs.)
        try? standardInput.pipe?.fileHandleForReading.close()
        try? standardOutput.pipe?.fileHandleForWriting.close()
        try? standardError.pipe?.fileHandleForWriting.close()
    }

    /// Blocks until the child has exited, and reaps it.
    func waitUntilExit() {
        while !reapIfExited() {
            // Waits without reaping, so the reaping (and recording of the status)
            // happens in one place, under the lock, whichever thread gets there first.
            var info = siginfo_t()
            if waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOWAIT) == -1 {
                // EINTR: try again. ECHILD: another thread reaped it; the loop sees that.
                guard errno == EINTR || errno == ECHILD else {
                    preconditionFailure("waitid: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    /// Whether the child has not exited yet. Reaps it when it has.
    var isRunning: Bool {
        processIdentifier != 0 && !reapIfExited()
    }

    /// The exit code, or the signal's number when a signal killed the child. Only
    /// once it has exited.
    var terminationStatus: Int32 {
        let status = exitedStatus()
        return Self.signal(of: status) ?? (status >> 8) & 0xff
    }

    var terminationReason: TerminationReason {
        Self.signal(of: exitedStatus()) == nil ? .exit : .uncaughtSignal
    }

    /// Sends SIGTERM, unless the child has already exited.
    func terminate() {
        state.withLock { state in
            // Under the lock, so the child cannot be reaped (and its pid reused)
            // between the check and the kill.
            if !Self.reap(&state) { kill(state.pid, SIGTERM) }
        }
    }

    private func exitedStatus() -> Int32 {
        precondition(!isRunning, "the child process is still running")
        guard let status = state.withLock({ $0.waitStatus }) else {
            preconditionFailure("the child process was never started")
        }
        return status
    }

    /// Reaps the child if it has exited (without blocking) and says whether it has.
    private func reapIfExited() -> Bool {
        state.withLock { Self.reap(&$0) }
    }

    private static func reap(_ state: inout State) -> Bool {
        if state.waitStatus != nil { return true }
        precondition(state.pid != 0, "ChildProcess used before run()")
        var status: Int32 = 0
        while true {
            let result = waitpid(state.pid, &status, WNOHANG)
            if result == state.pid {
                state.waitStatus = status
                return true
            }
            if result == 0 { return false }
            guard errno == EINTR else { preconditionFailure("waitpid: \(String(cString: strerror(errno)))") }
        }
    }

    /// The signal that ended the child, from a `waitpid` status (WIFSIGNALED and
    /// WTERMSIG, which Swift does not import).
    private static func signal(of status: Int32) -> Int32? {
        let signal = status & 0x7f
        return signal == 0 ? nil : signal
    }

    private func check(_ call: String, _ result: Int32) throws {
        if result != 0 { throw SpawnError(call: call, code: result) }
    }

    // glibc has both, but Swift's Glibc module does not import them (they sit
    // behind _GNU_SOURCE), so they are looked up by name.
    private typealias Actions = UnsafeMutablePointer<posix_spawn_file_actions_t>
    private typealias AddChdir = @convention(c) (Actions, UnsafePointer<CChar>) -> Int32
    private typealias AddCloseFrom = @convention(c) (Actions, Int32) -> Int32

    private static let addChdir = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: AddChdir.self)
    }
    private static let addCloseFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
}

/// Calls `body` with a NULL-terminated C array of copies of `strings`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) } + [nil]
    defer { for copy in copies { free(copy) } }
    return body(copies)
}
