// Typed errors of HeraldIO: each names the failing C call and carries
// the library's own message, so a log line says what broke and where.

/// An error from a C library call.
public enum IOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libevent (loop, timers, signals, HTTP).
    case loop(call: String, message: String)
    /// hiredis.
    case redis(call: String, message: String)
    /// A Redis server error reply.
    case redisReply(message: String)
    /// libpq.
    case postgres(call: String, message: String)
    /// A PostgreSQL error result (SQLSTATE and message).
    case postgresQuery(sqlState: String, message: String)
    /// Name resolution.
    case resolve(host: String, message: String)
    /// libcurl.
    case curl(call: String, message: String)
    /// A deadline passed.
    case timeout(operation: String)
    /// The connection is not up.
    case notConnected(String)

    public var description: String {
        switch self {
        case .loop(let c, let m): return "\(c): \(m)"
        case .redis(let c, let m): return "\(c): \(m)"
        case .redisReply(let m): return "redis replied: \(m)"
        case .postgres(let c, let m): return "\(c): \(m)"
        case .postgresQuery(let s, let m): return "postgres error \(s): \(m)"
        case .resolve(let h, let m): return "resolving \(h): \(m)"
        case .curl(let c, let m): return "\(c): \(m)"
        case .timeout(let op): return "\(op) timed out"
        case .notConnected(let what): return "\(what) is not connected"
        }
    }
}
