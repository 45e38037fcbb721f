// The metrics and health endpoint, served by libevent's own HTTP server on the
// loop. Handlers must be quick (they render in-memory state); anything slow
// belongs elsewhere. Bounded: request line and headers at most 16 KiB (libevent
// answers a larger request with an error and closes), no body, 10 s of silence
// closes a connection, and when accept() fails for want of descriptors (EMFILE,
// ENFILE) the listener pauses for a second instead of spinning on the loop.

import CLibevent
import Glibc
import Synchronization

/// The servers by their listener: libevent gives the listener's error callback evhttp's own
/// argument, not ours. Touched on loop threads only; the lock keeps Swift 6 satisfied.
private let serversByListener = Mutex<[UInt: UInt]>([:])

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

/// An evhttp server bound to one address. Loop-confined.
public final class HTTPServer {
    /// The largest request line plus headers accepted, in bytes.
    public static let maxHeadersSize = 16 * 1024
    private var http: OpaquePointer?
    private var listener: OpaquePointer?
    private lazy var resumeAccepting = LoopTimer(loop: loop) { [unowned self] in
        if let l = self.listener { _ = evconnlistener_enable(l) }
    }
    /// accept() failures that paused the listener (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    public private(set) var acceptPauses = 0
    /// Called on the loop when accepting pauses, with the errno text.
    public var onAcceptPaused: ((String) -> Void)?
    private let handler: (String, String) -> HTTPResponse
    private let loop: EventLoop
    public let host: String
    public private(set) var port: Int

    /// Binds `host:port` (port 0 picks a free one) and serves `handler(method, path)`.
    public init(
        loop: EventLoop, host: String, port: Int, handler: @escaping (String, String) -> HTTPResponse
    ) throws(IOError) {
        loop.assertInLoop()
        self.loop = loop
        self.handler = handler
        self.host = host
        self.port = port
        guard let h = evhttp_new(loop.base) else { throw IOError.loop(call: "evhttp_new", message: "out of memory") }
        http = h
        evhttp_set_timeout(h, 10)
        evhttp_set_allowed_methods(h, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_HEAD.rawValue))
        evhttp_set_max_headers_size(h, Int(Self.maxHeadersSize))
        evhttp_set_max_body_size(h, 0)
        guard let bound = evhttp_bind_socket_with_handle(h, host, UInt16(port)) else {
            let e = errno
            evhttp_free(h)
            http = nil
            // A name libevent could not resolve leaves errno at 0 ("Success"): say what it means.
            let reason = e == 0 ? "cannot resolve or use this address" : String(cString: strerror(e))
            throw IOError.loop(call: "evhttp_bind_socket(\(host):\(port))", message: reason)
        }
        let fd = evhttp_bound_socket_get_fd(bound)
        var addr = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) }
        }
        if addr.ss_family == sa_family_t(AF_INET) {
            self.port = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        } else if addr.ss_family == sa_family_t(AF_INET6) {
            self.port = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        }
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        // libevent keeps a listener readable while accept() fails for want of descriptors, and
        // without an error callback it logs a warning at every turn of the loop: pause instead.
        if let l = evhttp_bound_socket_get_listener(bound) {
            listener = l
            let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(l)))
            let server = UInt(bitPattern: Int(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
            serversByListener.withLock { $0[key] = server }
            evconnlistener_set_error_cb(l) { l, _ in
                let failure = errno
                guard let l else { return }
                let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(l)))
                guard let server = serversByListener.withLock({ $0[key] }),
                    let p = UnsafeRawPointer(bitPattern: server)
                else { return }
                Unmanaged<HTTPServer>.fromOpaque(p).takeUnretainedValue().acceptFailed(l, errno: failure)
            }
        }
        evhttp_set_gencb(
            h,
            { req, arg in
                guard let req, let arg else { return }
                Unmanaged<HTTPServer>.fromOpaque(arg).takeUnretainedValue().serve(req)
            }, ctx)
    }

    deinit {
        forgetListener()
        if let h = http { evhttp_free(h) }
    }

    private func forgetListener() {
        guard let l = listener else { return }
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(l)))
        _ = serversByListener.withLock { $0.removeValue(forKey: key) }
        listener = nil
    }

    /// accept() failed. For want of descriptors or memory the listener pauses for a second (the
    /// pending connections wait in the backlog), else the error is only reported.
    private func acceptFailed(_ l: OpaquePointer, errno failure: Int32) {
        let text = String(cString: strerror(failure))
        switch failure {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            _ = evconnlistener_disable(l)
            acceptPauses += 1
            resumeAccepting.schedule(after: .seconds(1))
            onAcceptPaused?(text)
        default:
            onAcceptPaused?(text)
        }
    }

    /// Stops listening and closes connections.
    public func close() {
        loop.assertInLoop()
        resumeAccepting.cancel()
        forgetListener()
        if let h = http {
            http = nil
            evhttp_free(h)
        }
    }

    private func serve(_ req: OpaquePointer) {
        let method = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ? "HEAD" : "GET"
        var path = "/"
        if let uri = evhttp_request_get_uri(req) {
            path = String(cString: uri)
            if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
        }
        let response = handler(method, path)
        let headers = evhttp_request_get_output_headers(req)
        evhttp_add_header(headers, "Content-Type", response.contentType)
        evhttp_add_header(headers, "Cache-Control", "no-store")
        let buf = evbuffer_new()
        if method != "HEAD" {
            response.body.withUnsafeBytes { b in _ = evbuffer_add(buf, b.baseAddress, b.count) }
        }
        evhttp_send_reply(req, Int32(response.status), Self.reason(response.status), buf)
        evbuffer_free(buf)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
