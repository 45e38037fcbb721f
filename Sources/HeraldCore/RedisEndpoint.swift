// Where a Redis server is, parsed from the URL forms Dify and redis-py accept:
// redis://[[user]:password@]host[:port][/db] and
// unix://[[user]:password@]/path/to.sock[?db=N][&password=...]; or Celery's
// sentinel form sentinel://[[user]:password@]host:port[/db][;sentinel://host:port…],
// where the credentials and db are the master's and the sentinels are asked for its
// address (RedisSentinel.swift).

/// A parsed Redis URL. `password` is a secret: `redacted` is what logs show.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
        /// The master a set of sentinels names; asked at every connect.
        case sentinel(RedisSentinel)
    }
    public var address: Address
    public var username: String?
    public var password: String?
    public var database: Int

    public init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// The URL with the password replaced by `***`.
    public var redacted: String {
        let auth: String
        switch (username, password) {
        case (nil, nil): auth = ""
        case (let u?, nil): auth = "\(u)@"
        case (let u, _?): auth = "\(u ?? ""):***@"
        }
        switch address {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(h):\(port)/\(database)"
        case .unix(let path): return "unix://\(auth)\(path)?db=\(database)"
        case .sentinel(let s):
            let nodes = s.nodes.map { "sentinel://\(auth)\($0)/\(database)" }.joined(separator: ";")
            return nodes + " (master \(s.masterName))"
        }
    }

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case unsupportedScheme(String)
        case missingHost
        case invalidPort(String)
        case invalidDatabase(String)
        case tlsUnsupported
        case sentinelNeedsMasterName

        public var description: String {
            switch self {
            case .unsupportedScheme(let s): return "unsupported scheme \"\(s)\" (use redis:// or unix://)"
            case .missingHost: return "no host or socket path"
            case .invalidPort(let p): return "invalid port \"\(p)\""
            case .invalidDatabase(let d): return "invalid database number \"\(d)\""
            case .tlsUnsupported:
                return "rediss:// (TLS) is not supported: the hiredis of Debian 12 (0.14) has no TLS; "
                    + "reach Redis over a private network or a local TLS tunnel (stunnel, spiped) and give its redis:// URL"
            case .sentinelNeedsMasterName:
                return "a sentinel:// URL needs the master's name (CELERY_SENTINEL_MASTER_NAME)"
            }
        }
    }

    /// Parses one URL. `sentinel://` (one URL, or several joined by `;` as Celery writes them) needs
    /// `sentinel`: the master's name and the sentinels' own credentials and timeout, whose nodes
    /// are replaced by the URL's.
    public static func parse(_ url: String, sentinel: RedisSentinel? = nil) throws(ParseError) -> RedisEndpoint {
        if url.lowercased().hasPrefix("sentinel://") {
            guard var spec = sentinel, !spec.masterName.isEmpty else { throw .sentinelNeedsMasterName }
            var first: RedisEndpoint?
            spec.nodes = []
            for part in url.split(separator: ";") where !part.trimmingASCIIWhitespace().isEmpty {
                let one = String(part.trimmingASCIIWhitespace())
                guard one.lowercased().hasPrefix("sentinel://") else { throw .unsupportedScheme(one) }
                let e = try parse("redis://" + one.dropFirst("sentinel://".count))
                guard case .tcp(let host, let port) = e.address else { throw .missingHost }
                // Celery's sentinel port defaults to 26379, not 6379.
                let explicitPort =
                    one.dropFirst("sentinel://".count).split(separator: "/").first?
                    .split(separator: "@").last.map { $0.hasPrefix("[") ? $0.contains("]:") : $0.contains(":") }
                    ?? false
                spec.nodes.append(RedisSentinel.Node(host: host, port: explicitPort ? port : 26379))
                if first == nil { first = e }
            }
            guard let master = first else { throw .missingHost }
            return RedisEndpoint(
                address: .sentinel(spec), username: master.username, password: master.password,
                database: master.database)
        }
        let parts = url.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .unsupportedScheme(url) }
        let scheme = parts[0].lowercased()
        var rest = String(parts[1])
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count > 1 ? percentDecoded(String(kv[1])) : ""
            }
            rest = String(rest[..<q])
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = String(rest[rest.index(after: at)...])
            if let colon = userinfo.firstIndex(of: ":") {
                let u = String(userinfo[..<colon])
                username = u.isEmpty ? nil : percentDecoded(u)
                password = percentDecoded(String(userinfo[userinfo.index(after: colon)...]))
            } else if !userinfo.isEmpty {
                username = percentDecoded(String(userinfo))
            }
        }
        if let p = query["password"] { password = p }
        // `redis://:@host`: an empty password is none (Redis refuses `AUTH ""`, so the connection
        // would fail forever).
        if password?.isEmpty == true { password = nil }
        var database = 0
        switch scheme {
        case "redis":
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = String(rest[..<slash])
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let n = Int(db), n >= 0 else { throw .invalidDatabase(String(db)) }
                    database = n
                }
            }
            var host = hostPort
            var port = 6379
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { throw .missingHost }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                        throw .invalidPort(String(after.dropFirst()))
                    }
                    port = p
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                let p = String(hostPort[hostPort.index(after: colon)...])
                guard let n = Int(p), (1...65535).contains(n) else { throw .invalidPort(p) }
                port = n
            }
            guard !host.isEmpty else { throw .missingHost }
            if let db = query["db"] {
                guard let n = Int(db), n >= 0 else { throw .invalidDatabase(db) }
                database = n
            }
            return RedisEndpoint(
                address: .tcp(host: host, port: port), username: username, password: password, database: database)
        case "unix", "redis+unix", "redis-socket":
            guard rest.hasPrefix("/") else { throw .missingHost }
            if let db = query["db"] {
                guard let n = Int(db), n >= 0 else { throw .invalidDatabase(db) }
                database = n
            }
            return RedisEndpoint(address: .unix(path: rest), username: username, password: password, database: database)
        case "rediss":
            throw .tlsUnsupported
        default:
            throw .unsupportedScheme(scheme)
        }
    }

    /// `%XX` escapes decoded (an invalid escape is kept as written).
    public static func percentDecoded(_ s: String) -> String {
        guard s.contains("%") else { return s }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
