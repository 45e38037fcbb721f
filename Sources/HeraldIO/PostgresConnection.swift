// An ordinary, blocking libpq connection for work done off the loop thread
// (migrations, claims, cleanups, the CLI). Only parameterized queries: values
// travel separately from the SQL text, never spliced into it.

import CLibpq
import Glibc
import Synchronization

/// Bumped when any session finds its prepared statements outdated by a schema change (an `ALTER
/// TABLE` of a table they read: `0A000 cached plan must not change result type`). Every session
/// sees it at its next prepared execution and prepares again, so one ALTER costs one failed
/// statement in the process, not one per session, and none waits for a reconnect.
private let preparedStatementsOutdated = Atomic<Int>(0)

/// The rows of a query result, as text (libpq's text format).
public struct PostgresRows: Sendable {
    public var columns: [String]
    public var rows: [[String?]]
    /// Rows affected by INSERT/UPDATE/DELETE.
    public var affected: Int

    /// The value at `row`, column `name`.
    public func value(_ row: Int, _ name: String) -> String? {
        guard let i = columns.firstIndex(of: name) else { return nil }
        return rows[row][i]
    }
}

/// One blocking connection. Not thread-safe: one thread at a time (the pool enforces it).
public final class PostgresConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    private let connInfo: PostgresConnInfo
    /// Statements prepared on the current session, by name (a new session starts empty).
    private var prepared: [String: String] = [:]
    /// The value of `preparedStatementsOutdated` when `prepared` was last known good.
    private var preparedGeneration = preparedStatementsOutdated.load(ordering: .relaxed)

    /// Connects (blocking). Call off the loop thread.
    public init(connInfo: PostgresConnInfo) throws(IOError) {
        self.connInfo = connInfo
        try open()
    }

    deinit {
        if let c = conn { PQfinish(c) }
    }

    private func open() throws(IOError) {
        var info = connInfo
        if info["connect_timeout"] == nil { info["connect_timeout"] = "5" }
        let c = info.withArrays { PQconnectdbParams($0, $1, 0) }
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let message = postgresError(c)
            if let c { PQfinish(c) }
            throw IOError.postgres(call: "PQconnectdb", message: message)
        }
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
        prepared = [:]
    }

    /// True when the connection is usable.
    public var isHealthy: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Reconnects when the server dropped the session.
    public func resetIfBroken() throws(IOError) {
        guard !isHealthy else { return }
        if let c = conn {
            PQfinish(c)
            conn = nil
        }
        try open()
    }

    /// Runs one parameterized statement (`$1`, `$2` … placeholders; nil is NULL).
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws(IOError) -> PostgresRows {
        guard let c = conn else { throw IOError.notConnected("postgres") }
        let cParams = params.map { $0.map { strdup($0) } ?? nil }
        defer { cParams.forEach { free($0) } }
        let result: OpaquePointer? = cParams.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: UnsafePointer<CChar>?.self) { p in
                PQexecParams(c, sql, Int32(params.count), nil, p.baseAddress, nil, nil, 0)
            }
        }
        guard let r = result else { throw IOError.postgres(call: "PQexecParams", message: postgresError(c)) }
        defer { PQclear(r) }
        switch PQresultStatus(r) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.rows(r)
        default:
            let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?????"
            let msg = String(cString: PQresultErrorMessage(r)).trimmingTrailingNewlines
            throw IOError.postgresQuery(sqlState: state, message: msg)
        }
    }

    /// Runs `sql` as the session's prepared statement `name` (prepared on first use, and again
    /// after a reconnect or when `name` is reused for other text): PostgreSQL parses and plans it
    /// once per session instead of at every execution. For statements run many times on one
    /// connection (the retention batches).
    @discardableResult
    public func queryPrepared(_ name: String, _ sql: String, _ params: [String?] = []) throws(IOError) -> PostgresRows {
        guard let c = conn else { throw IOError.notConnected("postgres") }
        let generation = preparedStatementsOutdated.load(ordering: .acquiring)
        if generation != preparedGeneration {
            // A session met a schema change: drop this session's statements before using one (not
            // inside a failed transaction, where nothing runs; the next call does it).
            if prepared.isEmpty {
                preparedGeneration = generation
            } else if PQtransactionStatus(c) != PQTRANS_INERROR {
                _ = try query("DEALLOCATE ALL")
                prepared = [:]
                preparedGeneration = generation
            }
        }
        if prepared[name] != sql {
            if prepared[name] != nil { _ = try query("DEALLOCATE \"\(name)\"") }
            guard let r = PQprepare(c, name, sql, Int32(params.count), nil) else {
                throw IOError.postgres(call: "PQprepare", message: postgresError(c))
            }
            defer { PQclear(r) }
            guard PQresultStatus(r) == PGRES_COMMAND_OK else { throw Self.failure(r) }
            prepared[name] = sql
        }
        let cParams = params.map { $0.map { strdup($0) } ?? nil }
        defer { cParams.forEach { free($0) } }
        let result: OpaquePointer? = cParams.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: UnsafePointer<CChar>?.self) { p in
                PQexecPrepared(c, name, Int32(params.count), p.baseAddress, nil, nil, 0)
            }
        }
        guard let r = result else { throw IOError.postgres(call: "PQexecPrepared", message: postgresError(c)) }
        defer { PQclear(r) }
        switch PQresultStatus(r) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return Self.rows(r)
        default:
            let error = Self.failure(r)
            if case .postgresQuery("0A000", _) = error {
                // The statement's result type changed under it (ALTER TABLE): every session prepares
                // again at its next use; this one forgets at once (its DEALLOCATE waits for the next
                // call, when the failed transaction has been rolled back).
                preparedStatementsOutdated.add(1, ordering: .releasing)
            }
            throw error
        }
    }

    private static func failure(_ r: OpaquePointer) -> IOError {
        let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?????"
        return IOError.postgresQuery(
            sqlState: state, message: String(cString: PQresultErrorMessage(r)).trimmingTrailingNewlines)
    }

    /// Runs several statements without parameters (migrations). Blocking.
    public func execute(script: String) throws(IOError) {
        guard let c = conn else { throw IOError.notConnected("postgres") }
        guard let r = PQexec(c, script) else { throw IOError.postgres(call: "PQexec", message: postgresError(c)) }
        defer { PQclear(r) }
        let s = PQresultStatus(r)
        guard s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY else {
            let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "?????"
            throw IOError.postgresQuery(
                sqlState: state, message: String(cString: PQresultErrorMessage(r)).trimmingTrailingNewlines)
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let v = try body(self)
            try query("COMMIT")
            return v
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    private static func rows(_ r: OpaquePointer) -> PostgresRows {
        let nf = Int(PQnfields(r))
        let nt = Int(PQntuples(r))
        var columns: [String] = []
        for i in 0..<nf { columns.append(String(cString: PQfname(r, Int32(i)))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(nt)
        for t in 0..<nt {
            var row: [String?] = []
            row.reserveCapacity(nf)
            for f in 0..<nf {
                if PQgetisnull(r, Int32(t), Int32(f)) == 1 {
                    row.append(nil)
                } else {
                    let len = Int(PQgetlength(r, Int32(t), Int32(f)))
                    let p = PQgetvalue(r, Int32(t), Int32(f))!
                    row.append(String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self))
                }
            }
            rows.append(row)
        }
        let affected = Int(String(cString: PQcmdTuples(r))) ?? 0
        return PostgresRows(columns: columns, rows: rows, affected: affected)
    }
}
