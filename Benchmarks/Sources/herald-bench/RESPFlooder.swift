// The throughput publisher: several raw TCP (or unix socket) connections, each
// writing pipelined PUBLISH commands in batches and reading the batch's replies
// before the next (like `redis-benchmark -P`). The RESP bytes are built before
// the clock starts, so the publisher spends its time in write(2), not Swift.

import Foundation
import Glibc
import HeraldCore

/// Floods a channel with pipelined PUBLISH commands.
struct RESPFlooder {
    let endpoint: RedisEndpoint
    let connections: Int
    let pipeline: Int

    struct Result: Sendable {
        var published: Int
        var durationNs: Int64
        /// Sum of PUBLISH replies (receivers); equals `published` when one consumer listened throughout.
        var delivered: Int
        var error: String?
        var rate: Double { durationNs > 0 ? Double(published) * 1e9 / Double(durationNs) : 0 }
    }

    /// PUBLISHes sequence numbers 0..<count split across the connections; returns once every reply is in.
    func flood(channel: String, count: Int) throws -> Result {
        let per = (count + connections - 1) / connections
        var workers: [FloodWorker] = []
        for c in 0..<connections {
            let range = (c * per)..<min(count, (c + 1) * per)
            guard !range.isEmpty else { continue }
            let fd = try Self.connect(endpoint)
            workers.append(
                FloodWorker(
                    fd: fd, commands: range.map { Self.publish(channel, BenchPayload.schedule($0)) },
                    pipeline: pipeline))
        }
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for w in workers {
            done.enter()
            let t = Thread {
                go.wait()
                w.run()
                done.leave()
            }
            t.start()
        }
        let start = BenchClock.monotonicNs()
        for _ in workers { go.signal() }
        done.wait()
        let end = BenchClock.monotonicNs()
        for w in workers { close(w.fd) }
        return Result(
            published: workers.reduce(0) { $0 + $1.commands.count }, durationNs: end - start,
            delivered: workers.reduce(0) { $0 + $1.delivered }, error: workers.compactMap(\.error).first)
    }

    /// `*3 $7 PUBLISH $n channel $n payload` in RESP.
    static func publish(_ channel: String, _ payload: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.utf8.count + channel.utf8.count + 40)
        out += Array("*3\r\n$7\r\nPUBLISH\r\n".utf8)
        for arg in [channel, payload] {
            out += Array("$\(arg.utf8.count)\r\n".utf8)
            out += Array(arg.utf8)
            out += [13, 10]
        }
        return out
    }

    /// A blocking socket to the endpoint, AUTHenticated when the URL carries a password.
    static func connect(_ endpoint: RedisEndpoint) throws -> Int32 {
        let fd: Int32
        switch endpoint.address {
        case .sentinel:
            throw BenchFailure("the flooder needs a redis:// or unix:// URL, not Sentinel")
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in
                for (i, b) in path.utf8.prefix(buf.count - 1).enumerated() { buf[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard rc == 0 else { throw BenchFailure("connect \(path): \(String(cString: strerror(errno)))") }
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_family = AF_INET
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host == "localhost" ? "127.0.0.1" : host, String(port), &hints, &res) == 0, let a = res
            else {
                throw BenchFailure("cannot resolve \(host)")
            }
            defer { freeaddrinfo(res) }
            fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, 0)
            guard Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 else {
                close(fd)
                throw BenchFailure("connect \(host):\(port): \(String(cString: strerror(errno)))")
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if let pw = endpoint.password {
            let w = FloodWorker(fd: fd, commands: [authCommand(user: endpoint.username, password: pw)], pipeline: 1)
            w.run()
            if let e = w.error { throw BenchFailure("AUTH: \(e)") }
        }
        return fd
    }

    private static func authCommand(user: String?, password: String) -> [UInt8] {
        let args = ["AUTH"] + (user.map { [$0] } ?? []) + [password]
        var out = Array("*\(args.count)\r\n".utf8)
        for a in args { out += Array("$\(a.utf8.count)\r\n\(a)\r\n".utf8) }
        return out
    }
}

/// One flooding connection, run on its own thread.
final class FloodWorker: @unchecked Sendable {
    let fd: Int32
    let commands: [[UInt8]]
    let pipeline: Int
    private(set) var delivered = 0
    private(set) var error: String?

    init(fd: Int32, commands: [[UInt8]], pipeline: Int) {
        self.fd = fd
        self.commands = commands
        self.pipeline = max(1, pipeline)
    }

    func run() {
        var batch: [UInt8] = []
        var reply = [UInt8](repeating: 0, count: 65536)
        var i = 0
        while i < commands.count, error == nil {
            let n = min(pipeline, commands.count - i)
            batch.removeAll(keepingCapacity: true)
            for c in commands[i..<(i + n)] { batch += c }
            guard writeAll(batch) else { return }
            var lines = 0
            var value = 0
            var negative = false
            while lines < n {
                let got = reply.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if got < 0, errno == EINTR { continue }
                guard got > 0 else {
                    error = "connection closed by Redis"
                    return
                }
                // Replies are ":<receivers>\r\n" (or "-ERR ...\r\n"); sum the receivers.
                for b in reply[..<got] {
                    switch b {
                    case UInt8(ascii: ":"): value = 0
                    case UInt8(ascii: "-"): negative = true
                    case 48...57: value = value * 10 + Int(b) - 48
                    case 10:
                        if negative { error = "Redis replied with an error" } else { delivered += value }
                        lines += 1
                        value = 0
                        negative = false
                    default: break
                    }
                }
            }
            i += n
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let w = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if w < 0, errno == EINTR { continue }
            guard w > 0 else {
                error = "write: \(String(cString: strerror(errno)))"
                return false
            }
            off += w
        }
        return true
    }
}
