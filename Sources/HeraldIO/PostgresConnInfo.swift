// libpq connection strings, parsed with libpq itself so every form it accepts
// (URLs and key=value) works. Used to resolve the host off the loop and hand
// libpq a numeric `hostaddr`, because PQconnectPoll would otherwise block in
// getaddrinfo on the loop thread.

import CLibpq
import Glibc

/// A parsed libpq conninfo: ordered keyword/value pairs.
public struct PostgresConnInfo: Sendable, Equatable {
    public var pairs: [(String, String)]

    public static func == (a: Self, b: Self) -> Bool {
        a.pairs.map { $0.0 + "=" + $0.1 } == b.pairs.map { $0.0 + "=" + $0.1 }
    }

    /// Parses `conninfo` (a URL or key=value string).
    public init(_ conninfo: String) throws(IOError) {
        var err: UnsafeMutablePointer<CChar>?
        guard let opts = PQconninfoParse(conninfo, &err) else {
            let message = err.map { String(cString: $0) } ?? "invalid connection string"
            if let e = err { PQfreemem(e) }
            throw IOError.postgres(call: "PQconninfoParse", message: message.trimmingTrailingNewlines)
        }
        defer { PQconninfoFree(opts) }
        var out: [(String, String)] = []
        var p = opts
        while let kw = p.pointee.keyword {
            if let v = p.pointee.val { out.append((String(cString: kw), String(cString: v))) }
            p += 1
        }
        pairs = out
    }

    public subscript(key: String) -> String? {
        get { pairs.first { $0.0 == key }?.1 }
        set {
            pairs.removeAll { $0.0 == key }
            if let v = newValue { pairs.append((key, v)) }
        }
    }

    /// The host name that would need DNS, if any (not a socket path, not numeric, no hostaddr).
    public var hostNeedingResolution: String? {
        guard self["hostaddr"] == nil, let h = self["host"], !h.isEmpty, !h.hasPrefix("/"), !h.contains(",") else {
            return nil
        }
        return Resolver.isNumeric(h) ? nil : h
    }

    /// The connection described without its password (for logs).
    public var redacted: String {
        pairs.filter { $0.0 != "password" }.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }

    /// Calls `body` with NULL-terminated keyword and value arrays for PQconnectStartParams.
    func withArrays<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let keys = pairs.map { strdup($0.0) }
        let vals = pairs.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            vals.forEach { free($0) }
        }
        var k: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var v: [UnsafePointer<CChar>?] = vals.map { UnsafePointer($0) } + [nil]
        return k.withUnsafeMutableBufferPointer { kb in
            v.withUnsafeMutableBufferPointer { vb in body(kb.baseAddress!, vb.baseAddress!) }
        }
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}

/// libpq's error message for a connection, trimmed.
func postgresError(_ conn: OpaquePointer?) -> String {
    guard let conn, let m = PQerrorMessage(conn) else { return "unknown error" }
    return String(cString: m).trimmingTrailingNewlines
}
