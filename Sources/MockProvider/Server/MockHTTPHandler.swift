import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Serves one connection: collects each request, asks its surface for an answer, and
/// applies the shared knobs (in-flight cap, rate limits, faults, latency, streaming
/// pace) before writing it.
///
/// It is the only handler: it parses requests (`HTTPRequestParser`), frames answers
/// itself, and keeps pipelined requests in a queue, answering them in order, one at a
/// time; while a request waits it stops reading from the socket, so a client that
/// pipelines without limit cannot make it buffer without limit.
final class MockHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The answer being written.
    private struct Answer {
        /// A provider call, counted in flight until it ends.
        var isCall = false
        var keepAlive: Bool
        var version: HTTPVersion
        /// The latency or stream pacing timer, cancelled if the connection closes.
        var scheduled: Scheduled<Void>?
    }

    /// What follows the frames of a stream.
    private enum Ending {
        case finish
        /// Write these bytes as a last chunk, then finish (a cut frame, an error event).
        case finishAfter([UInt8])
        case reset
        case stall
    }

    /// A complete request, or what stopped the parser.
    private enum Queued {
        case request(MockRequest)
        /// A body over the limit: answer 413 and close.
        case tooLarge(HTTPVersion)
        /// Not HTTP: answer 400 and close.
        case invalid
    }

    private let server: MockServerState
    private let shard: MockStatsRecorder.Shard
    private let parser: HTTPRequestParser
    private var generator: SplitMix64
    /// Bytes received and not yet parsed into a request.
    private var inbound: ByteBuffer?
    /// Set once the parser stopped (a 413 or 400 is queued); later bytes are ignored.
    private var parserStopped = false
    private var continueSent = false
    /// Complete requests waiting for the answer before them.
    private var queue: [Queued] = []
    private var answer: Answer?
    private var isOpen = true
    /// A `read` held back while requests wait in the queue.
    private var readPending = false
    /// Inside `channelRead`: answers written now are flushed at `channelReadComplete`,
    /// so the answers to pipelined requests that arrived together leave in one write.
    private var isReading = false
    private var needsFlush = false
    private var isDraining = false

    init(server: MockServerState, shard: MockStatsRecorder.Shard) {
        self.server = server
        self.shard = shard
        parser = HTTPRequestParser(maximumBodyBytes: server.configuration.maximumBodyBytes)
        generator = SplitMix64(seed: server.nonce ^ SplitMix64.mix(server.nextConnectionNumber()))
    }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        shard.recordConnection()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        queue.removeAll()
        endAnswer()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if queue.isEmpty {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !parserStopped else { return }
        var chunk = unwrapInboundIn(data)
        if var pending = inbound {
            // Release the stored copy first, so appending does not copy the bytes.
            inbound = nil
            pending.writeBuffer(&chunk)
            inbound = pending
        } else {
            inbound = chunk
        }
        parse(context: context)
        let wasReading = isReading
        isReading = true
        drain(context: context)
        isReading = wasReading
    }

    /// Moves every complete request from `inbound` to the queue.
    private func parse(context: ChannelHandlerContext) {
        guard var buffer = inbound else { return }
        inbound = nil
        parsing: while true {
            switch parser.next(from: &buffer) {
            case .request(let request):
                queue.append(.request(request))
                continueSent = false
            case .needMoreBytes(let expectsContinue):
                if expectsContinue && !continueSent {
                    // Clients that ask (curl for large bodies) would otherwise wait a second.
                    continueSent = true
                    var reply = context.channel.allocator.buffer(capacity: 32)
                    reply.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                    context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
                }
                break parsing
            case .tooLarge(let version):
                queue.append(.tooLarge(version))
                parserStopped = true
                break parsing
            case .invalid:
                queue.append(.invalid)
                parserStopped = true
                break parsing
            }
        }
        if buffer.readableBytes > 0, !parserStopped { inbound = buffer }
    }

    // MARK: - Deciding the answer

    /// Answers queued requests in order while nothing else is being answered.
    private func drain(context: ChannelHandlerContext) {
        guard !isDraining else { return }
        isDraining = true
        while answer == nil, isOpen, !queue.isEmpty {
            switch queue.removeFirst() {
            case .request(let request):
                handle(request, context: context)
            case .tooLarge(let version):
                var requestContext = makeRequestContext(context: context)
                answer = Answer(keepAlive: false, version: version)
                let response = server.fallback.payloadTooLarge(context: &requestContext)
                deliver(response, fault: nil, endpoint: 0, context: context)
            case .invalid:
                answer = Answer(keepAlive: false, version: .http1_1)
                let response = MockResponse(status: .badRequest, headers: [], body: .full([]))
                deliver(response, fault: nil, endpoint: 0, context: context)
            }
        }
        isDraining = false
        if queue.isEmpty, readPending, isOpen {
            readPending = false
            context.read()
        }
    }

    private func makeRequestContext(context: ChannelHandlerContext) -> MockRequestContext {
        MockRequestContext(
            server: server, requestID: makeRequestID(),
            unixTime: Int(time(nil)), generator: SplitMix64(seed: generator.next()))
    }

    private func handle(_ request: MockRequest, context: ChannelHandlerContext) {
        var requestContext = makeRequestContext(context: context)
        answer = Answer(keepAlive: request.keepAlive, version: request.version)
        guard let route = server.router.route(request) else {
            deliver(
                server.fallback.notFound(request, context: &requestContext), fault: nil, endpoint: 0, context: context)
            return
        }
        switch route.surface.prepare(request, endpoint: route.endpoint, context: &requestContext) {
        case .respond(let response):
            deliver(response, fault: nil, endpoint: route.id, context: context)
        case .call(let call):
            startCall(call, route: route, requestContext: &requestContext, context: context)
        }
    }

    private func startCall(
        _ call: MockCall, route: MockRouter.Route, requestContext: inout MockRequestContext,
        context: ChannelHandlerContext
    ) {
        let configuration = server.configuration
        let surface = call.surface ?? route.surface
        let cap = configuration.rateLimit.maxInFlight
        if server.stats.tryStartCall(cap: cap) {
            answer?.isCall = true
        } else if let cap {
            // A slot frees when a call ends; suggest retrying after about one answer's latency.
            let retry = max(10_000_000, configuration.latency.fixed.nanoseconds)
            let report = server.limiter?.report(now: NIODeadline.now().uptimeNanoseconds)
            let rejection = MockRejection.concurrency(limit: cap, retryAfterNanoseconds: retry, report: report)
            let response = surface.rateLimited(rejection, call: call, context: &requestContext)
            deliver(response, fault: nil, endpoint: route.id, context: context)
            return
        }
        var report: RateLimiter.Report?
        if let limiter = server.limiter {
            switch limiter.acquire(tokens: call.tokenCost, now: NIODeadline.now().uptimeNanoseconds) {
            case .allowed(let state):
                report = state
            case .rejected(let rejection):
                let response = surface.rateLimited(.bucket(rejection), call: call, context: &requestContext)
                deliver(response, fault: nil, endpoint: route.id, context: context)
                return
            }
        }
        let latency = configuration.latency
        var delay = latency.fixed.nanoseconds
        var fault: MockFault?
        if let injector = server.faults {
            let draw = injector.draw()
            fault = draw.fault == .streamError && !call.isStream ? nil : draw.fault
            delay += Int64((Double(latency.jitter.nanoseconds) * draw.jitter).rounded())
        }
        if !call.isStream { delay += latency.perToken.nanoseconds * Int64(call.completionTokens) }
        let response: MockResponse
        switch fault {
        case .serverError?, .overloaded?:
            response = surface.serverFault(fault!, call: call, context: &requestContext)
        default:
            response = call.render(report, &requestContext)
        }
        if let fault { shard.recordFault(fault) }
        let errorFrame = fault == .streamError ? surface.streamErrorFrame(context: &requestContext) : nil
        deliver(response, fault: fault, errorFrame: errorFrame, endpoint: route.id, delay: delay, context: context)
    }

    // MARK: - Writing the answer

    /// Writes an answer now, or after `delay` nanoseconds.
    private func deliver(
        _ response: MockResponse, fault: MockFault?, errorFrame: [UInt8]? = nil, endpoint: Int, delay: Int64 = 0,
        context: ChannelHandlerContext
    ) {
        guard delay > 0 else {
            write(response, fault: fault, errorFrame: errorFrame, endpoint: endpoint, context: context)
            return
        }
        answer?.scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
            guard isOpen else { return }
            answer?.scheduled = nil
            write(response, fault: fault, errorFrame: errorFrame, endpoint: endpoint, context: context)
            flushIfNeeded(context: context)
        }
    }

    private func write(
        _ response: MockResponse, fault: MockFault?, errorFrame: [UInt8]?, endpoint: Int,
        context: ChannelHandlerContext
    ) {
        guard let answer else { return }
        shard.recordResponse(endpoint: endpoint, status: Int(response.status.code))
        let connection = answer.keepAlive ? (answer.version.minor == 0 ? "keep-alive" : nil) : "close"
        switch response.body {
        case .full(let body):
            let cut = body[..<(body.count / 2)]
            var out = ByteWriter(capacity: body.count + 256)
            out.writeResponseHead(
                version: answer.version, status: response.status, headers: response.headers,
                contentLength: fault == .truncatedBody ? cut.count : body.count, chunked: false,
                connection: connection)
            switch fault {
            case .connectionReset?:
                out.writeBytes(cut)
                context.write(wrapOutboundOut(buffer(out, context: context)), promise: nil)
                reset(context: context)
            case .stall?:
                out.writeBytes(cut)
                context.writeAndFlush(wrapOutboundOut(buffer(out, context: context)), promise: nil)
            case .truncatedBody?:
                out.writeBytes(cut)
                finish(out, context: context)
            default:
                out.writeBytes(body)
                finish(out, context: context)
            }
        case .stream(let frames):
            // HTTP/1.0 has no chunked encoding: the body runs to the connection's close.
            let chunked = answer.version.minor > 0
            if !chunked { self.answer?.keepAlive = false }
            var head = ByteWriter(capacity: 256 + frames.reduce(0) { $0 + $1.bytes.count + 8 })
            head.writeResponseHead(
                version: answer.version, status: response.status, headers: response.headers, contentLength: nil,
                chunked: chunked, connection: chunked ? connection : "close")
            let half = max(1, frames.count / 2)
            switch fault {
            case .connectionReset?:
                writeFrames(frames, from: 0, upTo: half, then: .reset, pending: head, context: context)
            case .stall?:
                writeFrames(frames, from: 0, upTo: half, then: .stall, pending: head, context: context)
            case .truncatedBody?:
                let next = frames[min(half, frames.count - 1)].bytes
                let piece = Array(next[..<max(1, next.count / 2)])
                writeFrames(frames, from: 0, upTo: half, then: .finishAfter(piece), pending: head, context: context)
            case .streamError?:
                writeFrames(
                    frames, from: 0, upTo: half, then: .finishAfter(errorFrame!), pending: head, context: context)
            default:
                writeFrames(frames, from: 0, upTo: frames.count, then: .finish, pending: head, context: context)
            }
        }
    }

    /// The bytes written so far, as one buffer for the channel.
    private func buffer(_ writer: ByteWriter, context: ChannelHandlerContext) -> ByteBuffer {
        var buffer = context.channel.allocator.buffer(capacity: writer.count)
        buffer.writeBytes(writer.bytes)
        return buffer
    }

    /// Writes `frames[start..<end]` after `pending` (the head, at first), pausing the
    /// per-token latency before each frame that carries a token (except one already
    /// paused for), then the ending. Frames between pauses leave in one write.
    private func writeFrames(
        _ frames: [MockResponse.Frame], from start: Int, upTo end: Int, pausedAt: Int = -1, then ending: Ending,
        pending: ByteWriter, context: ChannelHandlerContext
    ) {
        let pause = server.configuration.latency.perToken.nanoseconds
        let chunked = answer?.version.minor != 0
        var out = pending
        var index = start
        while index < end {
            let frame = frames[index]
            if pause > 0, frame.carriesToken, index != pausedAt {
                context.writeAndFlush(wrapOutboundOut(buffer(out, context: context)), promise: nil)
                let resumeAt = index
                answer?.scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(pause)) {
                    [self] in
                    guard isOpen else { return }
                    answer?.scheduled = nil
                    writeFrames(
                        frames, from: resumeAt, upTo: end, pausedAt: resumeAt, then: ending,
                        pending: ByteWriter(capacity: 256), context: context)
                    flushIfNeeded(context: context)
                }
                return
            }
            out.writeBodyPiece(frame.bytes, chunked: chunked)
            index += 1
        }
        switch ending {
        case .finish:
            if chunked { out.writeLastChunk() }
            finish(out, context: context)
        case .finishAfter(let bytes):
            out.writeBodyPiece(bytes, chunked: chunked)
            if chunked { out.writeLastChunk() }
            finish(out, context: context)
        case .reset:
            context.write(wrapOutboundOut(buffer(out, context: context)), promise: nil)
            reset(context: context)
        case .stall:
            // Nothing more is written; the call stays in flight until the client gives up.
            context.writeAndFlush(wrapOutboundOut(buffer(out, context: context)), promise: nil)
        }
    }

    /// Writes the last bytes of an answer, ends it, and moves on to the next request.
    private func finish(_ out: ByteWriter, context: ChannelHandlerContext) {
        let keepAlive = answer?.keepAlive ?? false
        endAnswer()
        let bytes = buffer(out, context: context)
        guard keepAlive else {
            queue.removeAll()
            context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.write(wrapOutboundOut(bytes), promise: nil)
        needsFlush = true
        if !isReading { flushIfNeeded(context: context) }
        drain(context: context)
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    /// Flushes what was written, then closes with a TCP reset (SO_LINGER 0).
    private func reset(context: ChannelHandlerContext) {
        endAnswer()
        queue.removeAll()
        needsFlush = false
        context.flush()
        guard let provider = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func endAnswer() {
        guard let answer else { return }
        answer.scheduled?.cancel()
        if answer.isCall { server.stats.callEnded() }
        self.answer = nil
    }

    private func makeRequestID() -> String {
        MockRequestContext.makeRequestID(from: &generator)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64.max`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : scaled &+ attoseconds / 1_000_000_000
    }
}
