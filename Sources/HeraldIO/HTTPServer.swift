// The metrics and health endpoint, served by libevent's own HTTP server on the
// loop. Handlers must be quick (they render in-memory state); anything slow
// belongs elsewhere.

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

/// An evhttp server bound to one address. Loop-confined.
public final class HTTPServer {
    private var http: OpaquePointer?
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
        guard let bound = evhttp_bind_socket_with_handle(h, host, UInt16(port)) else {
            let e = errno
            evhttp_free(h)
            http = nil
            throw IOError.loop(call: "evhttp_bind_socket(\(host):\(port))", message: String(cString: strerror(e)))
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
        evhttp_set_gencb(
            h,
            { req, arg in
                guard let req, let arg else { return }
                Unmanaged<HTTPServer>.fromOpaque(arg).takeUnretainedValue().serve(req)
            }, ctx)
    }

    deinit {
        if let h = http { evhttp_free(h) }
    }

    /// Stops listening and closes connections.
    public func close() {
        loop.assertInLoop()
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
