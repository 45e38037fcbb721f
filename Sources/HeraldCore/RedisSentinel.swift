// A Redis master found through Redis Sentinel, as Dify configures it
// (`REDIS_USE_SENTINEL`, `REDIS_SENTINELS`, `REDIS_SENTINEL_SERVICE_NAME`, …) and as
// Celery's broker URL writes it (`sentinel://host:port/db;sentinel://…` with
// `CELERY_SENTINEL_MASTER_NAME`). The sentinels are asked for the master's address at
// every connect, so a reconnect after a failover reaches the new master.

/// Where the sentinels are, which master to ask for, and how to talk to the sentinels
/// (the master's own credentials and database stay on the ``RedisEndpoint``).
public struct RedisSentinel: Sendable, Equatable {
    /// One sentinel's address.
    public struct Node: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var nodes: [Node]
    /// The monitored master's name (`REDIS_SENTINEL_SERVICE_NAME`, `CELERY_SENTINEL_MASTER_NAME`).
    public var masterName: String
    /// Credentials for the sentinels themselves (`REDIS_SENTINEL_USERNAME/PASSWORD`,
    /// `CELERY_SENTINEL_PASSWORD`). A secret: never printed.
    public var username: String?
    public var password: String?
    /// Connect and read timeout for each sentinel (`REDIS_SENTINEL_SOCKET_TIMEOUT`, Dify's default 0.1 s).
    public var socketTimeout: Duration

    public init(
        nodes: [Node], masterName: String, username: String? = nil, password: String? = nil,
        socketTimeout: Duration = .milliseconds(100)
    ) {
        self.nodes = nodes
        self.masterName = masterName
        self.username = username
        self.password = password
        self.socketTimeout = socketTimeout
    }

    /// Parses Dify's `REDIS_SENTINELS`: `host:port,host:port` (spaces around entries are
    /// ignored; an IPv6 address is written `[addr]:port`). Every entry needs its port.
    public static func parseNodes(_ text: String) throws(RedisEndpoint.ParseError) -> [Node] {
        var nodes: [Node] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = raw.trimmingASCIIWhitespace()
            guard !entry.isEmpty else { throw .missingHost }
            nodes.append(try parseNode(entry))
        }
        guard !nodes.isEmpty else { throw .missingHost }
        return nodes
    }

    /// `host:port` or `[v6]:port`.
    static func parseNode(_ entry: Substring) throws(RedisEndpoint.ParseError) -> Node {
        let host: Substring
        let port: Substring
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]"), entry[entry.index(after: close)...].hasPrefix(":") else {
                throw .missingHost
            }
            host = entry[entry.index(after: entry.startIndex)..<close]
            port = entry[entry.index(close, offsetBy: 2)...]
        } else {
            guard let colon = entry.lastIndex(of: ":") else { throw .invalidPort("") }
            host = entry[..<colon]
            port = entry[entry.index(after: colon)...]
        }
        guard !host.isEmpty else { throw .missingHost }
        guard let p = Int(port), (1...65535).contains(p) else { throw .invalidPort(String(port)) }
        return Node(host: String(host), port: p)
    }
}

extension Substring {
    func trimmingASCIIWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s.removeLast() }
        return s
    }
}
