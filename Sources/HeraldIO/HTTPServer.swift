// The metrics and health endpoint: a small HTTP/1.1 server of its own on the loop, one
// request per connection. (libevent 2.1's evhttp can cap neither its connections nor a
// request's total time, and answers oversized headers with 400.) Handlers must be quick
// (they render in-memory state); anything slow belongs elsewhere. Bounded every way:
// - the request line and headers are read at most 16 KiB far (431 beyond), GET and HEAD
//   only (405), no body is read, and every answer closes the connection;
// - a connection lives at most `requestTimeout` from accept to its last byte, however the
//   peer trickles its request or reads the answer;
// - at most `maxConnections` are open: at the cap the listener pauses (new connections wait
//   in the kernel's backlog) and resumes when one closes;
// - when accept() fails for want of descriptors (EMFILE, ENFILE) the listener pauses for a
//   second instead of spinning on the loop.

import CLibevent
import Glibc

/// A response from a handler.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public init(status: Int, contentType: String, text: String) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8))
    }
}

/// An HTTP server bound to one address. Loop-confined.
public final class HTTPServer {
    /// The largest request line plus headers accepted, in bytes.
    public static let maxHeadersSize = 16 * 1024
    /// Connections open at once before the listener pauses.
    public static let defaultMaxConnections = 64
    /// The longest a connection may stay open, from accept to its last byte.
    public static let defaultRequestTimeout: Duration = .seconds(10)
    /// After an answer, how long the peer's remaining bytes are read and dropped before the
    /// connection closes (so a close with unread input does not reset the answer away).
    static let linger: Duration = .seconds(2)

    public let host: String
    public private(set) var port: Int
    public let maxConnections: Int
    public let requestTimeout: Duration
    /// accept() failures that paused the listener (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    public private(set) var acceptPauses = 0
    /// Times the connection cap paused the listener.
    public private(set) var limitPauses = 0
    /// Connections closed because their time ran out.
    public private(set) var timedOut = 0
    /// Connections open now.
    public var openConnections: Int { connections.count }
    /// Called on the loop for each connection or request turned away, with a detail (the errno
    /// text of a failed accept).
    public var onRejected: ((Rejection, String) -> Void)?

    /// Why a connection or request was turned away.
    public enum Rejection: String, CaseIterable, Sendable {
        /// accept() failed for want of descriptors or memory: accepting paused for 1 s.
        case descriptors
        /// accept() failed otherwise.
        case acceptError = "accept_error"
        /// The cap on open connections was reached: accepting paused until one closes.
        case connectionLimit = "connection_limit"
        /// The connection's time ran out before its answer was written.
        case timeout
        /// Request line and headers over 16 KiB (431).
        case headersTooLarge = "headers_too_large"
        /// Not an HTTP/1 request line (400).
        case badRequest = "bad_request"
        /// A method other than GET and HEAD (405).
        case method
    }

    let loop: EventLoop
    private let handler: (String, String) -> HTTPResponse
    private var listener: OpaquePointer?
    private var listening = true
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var pausedAtLimit = false
    private var pausedForDescriptors = false
    private lazy var resumeAccepting = LoopTimer(loop: loop) { [unowned self] in
        self.pausedForDescriptors = false
        self.updateListening()
    }

    /// Binds `host:port` (port 0 picks a free one) and serves `handler(method, path)`.
    public init(
        loop: EventLoop, host: String, port: Int, maxConnections: Int = HTTPServer.defaultMaxConnections,
        requestTimeout: Duration = HTTPServer.defaultRequestTimeout,
        handler: @escaping (String, String) -> HTTPResponse
    ) throws(IOError) {
        loop.assertInLoop()
        self.loop = loop
        self.handler = handler
        self.host = host
        self.port = port
        self.maxConnections = max(1, maxConnections)
        self.requestTimeout = requestTimeout
        let call = "bind(\(host):\(port))"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else {
            throw IOError.loop(call: call, message: "cannot resolve or use this address")
        }
        defer { freeaddrinfo(found) }
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC)
        errno = 0
        guard
            let l = evconnlistener_new_bind(
                loop.base,
                { _, fd, _, _, arg in
                    guard let arg else {
                        Glibc.close(fd)
                        return
                    }
                    Unmanaged<HTTPServer>.fromOpaque(arg).takeUnretainedValue().accepted(fd)
                }, ctx, flags, 128, first.pointee.ai_addr, Int32(first.pointee.ai_addrlen))
        else {
            let e = errno
            // A name libevent could not use leaves errno at 0 ("Success"): say what it means.
            let reason = e == 0 ? "cannot resolve or use this address" : String(cString: strerror(e))
            throw IOError.loop(call: call, message: reason)
        }
        listener = l
        self.port = Self.boundPort(evconnlistener_get_fd(l)) ?? port
        // libevent keeps a listener readable while accept() fails for want of descriptors, and
        // without an error callback it logs a warning at every turn of the loop: pause instead.
        evconnlistener_set_error_cb(l) { _, arg in
            let failure = errno
            guard let arg else { return }
            Unmanaged<HTTPServer>.fromOpaque(arg).takeUnretainedValue().acceptFailed(errno: failure)
        }
    }

    deinit {
        for c in connections.values { c.release() }
        if let l = listener { evconnlistener_free(l) }
    }

    private static func boundPort(_ fd: Int32) -> Int? {
        var addr = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        if addr.ss_family == sa_family_t(AF_INET) {
            return withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        }
        if addr.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        }
        return nil
    }

    /// accept() failed. For want of descriptors or memory the listener pauses for a second (the
    /// pending connections wait in the backlog), else the error is only reported.
    private func acceptFailed(errno failure: Int32) {
        let text = String(cString: strerror(failure))
        switch failure {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            pausedForDescriptors = true
            acceptPauses += 1
            updateListening()
            resumeAccepting.schedule(after: .seconds(1))
            onRejected?(.descriptors, text)
        default:
            onRejected?(.acceptError, text)
        }
    }

    private func accepted(_ fd: Int32) {
        guard connections.count < maxConnections,
            let bev = bufferevent_socket_new(loop.base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        else {
            Glibc.close(fd)
            updateListening()
            return
        }
        let connection = HTTPConnection(server: self, bev: bev)
        connections[ObjectIdentifier(connection)] = connection
        connection.start()
        updateListening()
    }

    /// Listens unless at the cap or paused for descriptors.
    private func updateListening() {
        guard let l = listener else { return }
        let atLimit = connections.count >= maxConnections
        if atLimit, !pausedAtLimit {
            limitPauses += 1
            onRejected?(.connectionLimit, "\(maxConnections) connections open")
        }
        pausedAtLimit = atLimit
        let listen = !atLimit && !pausedForDescriptors
        guard listen != listening else { return }
        listening = listen
        _ = listen ? evconnlistener_enable(l) : evconnlistener_disable(l)
    }

    /// Closes `connection` (on the loop, from one of its callbacks or its timer).
    func finished(_ connection: HTTPConnection, timedOut expired: Bool) {
        withExtendedLifetime(connection) {
            guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
            if expired {
                timedOut += 1
                onRejected?(.timeout, "open \(requestTimeout)")
            }
            connection.release()
            updateListening()
        }
    }

    /// The handler's answer to a request line, or an error status for a bad one.
    func answer(requestLine line: String) -> (response: HTTPResponse, head: Bool) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") || parts[1].hasPrefix("http")
        else {
            onRejected?(.badRequest, "")
            return (HTTPResponse(status: 400, contentType: "text/plain", text: "bad request\n"), false)
        }
        let method = String(parts[0])
        guard method == "GET" || method == "HEAD" else {
            onRejected?(.method, "")
            return (HTTPResponse(status: 405, contentType: "text/plain", text: "GET or HEAD only\n"), false)
        }
        var path = String(parts[1])
        if !path.hasPrefix("/") {  // absolute form: http://host/path
            let rest = path.drop { $0 != "/" }.dropFirst(2)
            path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = String(path[..<q]) }
        return (handler(method, path), method == "HEAD")
    }

    /// Stops listening and closes connections.
    public func close() {
        loop.assertInLoop()
        resumeAccepting.cancel()
        for c in connections.values { c.release() }
        connections.removeAll()
        if let l = listener {
            listener = nil
            evconnlistener_free(l)
        }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 431: return "Request Header Fields Too Large"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

/// One accepted connection: reads one request head, writes one answer, lingers briefly, closes.
final class HTTPConnection {
    private unowned let server: HTTPServer
    private var bev: OpaquePointer?
    private var head: [UInt8] = []
    private var answered = false
    private var peerClosed = false
    private var lingering = false
    private let deadline: ContinuousClock.Instant
    private lazy var timer = LoopTimer(loop: server.loop) { [unowned self] in
        self.server.finished(self, timedOut: !self.lingering)
    }

    init(server: HTTPServer, bev: OpaquePointer) {
        self.server = server
        self.bev = bev
        deadline = .now + server.requestTimeout
    }

    func start() {
        guard let bev else { return }
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(
            bev,
            { _, arg in Unmanaged<HTTPConnection>.fromOpaque(arg!).takeUnretainedValue().readable() },
            { _, arg in Unmanaged<HTTPConnection>.fromOpaque(arg!).takeUnretainedValue().drained() },
            { _, events, arg in Unmanaged<HTTPConnection>.fromOpaque(arg!).takeUnretainedValue().event(events) },
            ctx)
        _ = bufferevent_enable(bev, Int16(EV_READ))
        timer.schedule(after: server.requestTimeout)
    }

    /// Frees the socket; the server has already forgotten this connection.
    func release() {
        timer.cancel()
        guard let b = bev else { return }
        bev = nil
        bufferevent_setcb(b, nil, nil, nil, nil)
        bufferevent_free(b)
    }

    private func readable() {
        guard let bev, let input = bufferevent_get_input(bev) else { return }
        let available = evbuffer_get_length(input)
        guard !answered else {
            evbuffer_drain(input, available)  // lingering: the peer's rest is dropped
            return
        }
        // Move what came in out of libevent's buffer, never more than the limit plus one.
        let room = HTTPServer.maxHeadersSize + 1 - head.count
        let take = min(available, room)
        guard take > 0 else { return }
        let start = head.count
        head.append(contentsOf: repeatElement(0, count: take))
        let got = head.withUnsafeMutableBytes { evbuffer_remove(input, $0.baseAddress! + start, take) }
        if got < take { head.removeLast(take - max(0, Int(got))) }
        evbuffer_drain(input, evbuffer_get_length(input))
        if let end = Self.endOfHead(head, from: max(0, start - 3)), end <= HTTPServer.maxHeadersSize {
            let lineEnd = head.firstIndex(of: UInt8(ascii: "\n")) ?? end
            var line = head[..<lineEnd]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            let (response, isHead) = server.answer(requestLine: String(decoding: line, as: UTF8.self))
            respond(response, head: isHead)
        } else if head.count > HTTPServer.maxHeadersSize {
            server.onRejected?(.headersTooLarge, "")
            respond(
                HTTPResponse(status: 431, contentType: "text/plain", text: "request headers over 16 KiB\n"), head: false
            )
        }
    }

    /// Index just past the blank line ending the head (CRLF CRLF, or bare LF LF), or nil.
    static func endOfHead(_ bytes: [UInt8], from: Int) -> Int? {
        let lf = UInt8(ascii: "\n")
        let cr = UInt8(ascii: "\r")
        var i = from
        while i < bytes.count {
            if bytes[i] == lf {
                if i + 1 < bytes.count, bytes[i + 1] == lf { return i + 2 }
                if i + 2 < bytes.count, bytes[i + 1] == cr, bytes[i + 2] == lf { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    private func respond(_ response: HTTPResponse, head isHead: Bool) {
        guard let bev else { return }
        answered = true
        head = []
        var text = "HTTP/1.1 \(response.status) \(HTTPServer.reason(response.status))\r\n"
        text += "Content-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\n"
        text += "Cache-Control: no-store\r\nConnection: close\r\n"
        if response.status == 405 { text += "Allow: GET, HEAD\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { bufferevent_write(bev, $0.baseAddress, $0.count) }
        if !isHead, !response.body.isEmpty {
            _ = response.body.withUnsafeBytes { bufferevent_write(bev, $0.baseAddress, $0.count) }
        }
        _ = bufferevent_enable(bev, Int16(EV_WRITE))
    }

    /// The answer is written: close if the peer is gone, else half-close and linger a little.
    private func drained() {
        guard answered, !lingering, let bev else { return }
        if peerClosed {
            server.finished(self, timedOut: false)
            return
        }
        lingering = true
        shutdown(bufferevent_getfd(bev), Int32(SHUT_WR))
        let left = ContinuousClock.now.duration(to: deadline)
        timer.schedule(after: max(.milliseconds(1), min(HTTPServer.linger, left)))
    }

    private func event(_ events: Int16) {
        if events & Int16(BEV_EVENT_ERROR) == 0, events & Int16(BEV_EVENT_EOF) != 0, answered, !lingering,
            let bev, evbuffer_get_length(bufferevent_get_output(bev)) > 0
        {
            peerClosed = true  // the peer half-closed after its request: finish writing first
            _ = bufferevent_disable(bev, Int16(EV_READ))
            return
        }
        server.finished(self, timedOut: false)
    }
}
