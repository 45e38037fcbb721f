// Host names are resolved off the loop thread: getaddrinfo blocks, and a slow
// DNS server must never stall event delivery (docs/development.md).

// CLibevent for SOCK_STREAM: CLibevent.h includes <sys/socket.h> first (docs/development.md,
// "Interop pitfalls"), so in a release (whole-module) build its declarations belong to CLibevent
// and Glibc alone does not show them.
import CLibevent
import Foundation
import Glibc

/// Resolves host names on a background queue and reports on the loop.
enum Resolver {
    private static let queue = DispatchQueue(label: "herald.resolver", attributes: .concurrent)

    /// True when `host` is already a numeric IPv4 or IPv6 address.
    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Calls `done` on the loop thread with the first address of `host`.
    static func resolve(_ host: String, on loop: EventLoop, done: @escaping @Sendable (Result<String, IOError>) -> Void)
    {
        if isNumeric(host) {
            loop.execute { done(.success(host)) }
            return
        }
        queue.async {
            let r = resolveBlocking(host)
            loop.execute { done(r) }
        }
    }

    static func resolveBlocking(_ host: String) -> Result<String, IOError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &res)
        guard rc == 0, let first = res else {
            return .failure(.resolve(host: host, message: String(cString: gai_strerror(rc))))
        }
        defer { freeaddrinfo(res) }
        // Prefer IPv4 when both are offered: redis and postgres commonly bind 127.0.0.1 only.
        var chosen = first
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            if a.pointee.ai_family == AF_INET { chosen = a; break }
            p = a.pointee.ai_next
        }
        var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let g = getnameinfo(
            chosen.pointee.ai_addr, chosen.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST)
        guard g == 0 else { return .failure(.resolve(host: host, message: String(cString: gai_strerror(g)))) }
        return .success(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
