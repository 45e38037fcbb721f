// Asks Redis Sentinel where a master is: each sentinel in turn, with the sentinels'
// own timeout and credentials, `SENTINEL get-master-addr-by-name`. Blocking: the
// blocking client calls it on its own thread, the loop's connections through
// `resolve(_:on:done:)`, which runs it (and the name lookup) off the loop thread.

import Foundation
import HeraldCore

/// Finds the current master of a ``RedisSentinel`` set.
public enum RedisSentinelResolver {
    private static let queue = DispatchQueue(label: "herald.sentinel", attributes: .concurrent)

    /// The master's address as the first sentinel that knows it answers. The error names every
    /// sentinel tried and why it failed (never a password).
    public static func master(_ s: RedisSentinel) -> Result<(host: String, port: Int), IOError> {
        var failures: [String] = []
        for node in s.nodes {
            let endpoint = RedisEndpoint(
                address: .tcp(host: node.host, port: node.port), username: s.username, password: s.password)
            do {
                let client = try RedisClient(endpoint: endpoint, timeout: s.socketTimeout)
                let reply = try client.command(["SENTINEL", "get-master-addr-by-name", s.masterName])
                switch reply {
                case .array(let items) where items.count == 2:
                    if case .string(let h) = items[0], case .string(let p) = items[1],
                        let port = Int(String(decoding: p, as: UTF8.self))
                    {
                        return .success((String(decoding: h, as: UTF8.self), port))
                    }
                    failures.append("\(node): unexpected reply")
                case .null, .array:
                    failures.append("\(node): no master named \(s.masterName)")
                case .error(let m):
                    failures.append("\(node): \(m)")
                default:
                    failures.append("\(node): unexpected reply")
                }
            } catch {
                failures.append("\(node): \(error)")
            }
        }
        return .failure(
            .redis(
                call: "SENTINEL get-master-addr-by-name \(s.masterName)",
                message: failures.joined(separator: "; ")))
    }

    /// Calls `done` on the loop thread with the master's numeric address.
    static func resolve(
        _ s: RedisSentinel, on loop: EventLoop,
        done: @escaping @Sendable (Result<(ip: String, port: Int), IOError>) -> Void
    ) {
        queue.async {
            let r: Result<(ip: String, port: Int), IOError>
            switch master(s) {
            case .success(let m):
                switch Resolver.isNumeric(m.host) ? .success(m.host) : Resolver.resolveBlocking(m.host) {
                case .success(let ip): r = .success((ip, m.port))
                case .failure(let e): r = .failure(e)
                }
            case .failure(let e): r = .failure(e)
            }
            loop.execute { done(r) }
        }
    }

    /// Whether a `ROLE` reply says master (`["master", offset, replicas]`).
    static func isMaster(_ reply: RedisValue?) -> Bool {
        guard case .array(let items)? = reply, case .string(let role)? = items.first else { return false }
        return role == Array("master".utf8)
    }
}
