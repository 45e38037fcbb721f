// Prepared statements on a blocking connection: prepared once per session, prepared
// again when the text behind a name changes or the session was replaced, errors typed.

import HeraldIO
import XCTest

final class PostgresPreparedTests: XCTestCase {
    func testPreparedOncePerSessionAndAgainAfterReconnect() throws {
        let (_, d) = try TestServers.require()
        let c = try PostgresConnection(connInfo: PostgresConnInfo(d))
        func preparedCount() throws -> String? { try c.query("SELECT count(*) FROM pg_prepared_statements").rows[0][0] }

        XCTAssertEqual(try c.queryPrepared("p", "SELECT $1::int + 1", ["41"]).rows[0][0], "42")
        XCTAssertEqual(try c.queryPrepared("p", "SELECT $1::int + 1", ["1"]).rows[0][0], "2")
        XCTAssertEqual(try preparedCount(), "1", "one statement, prepared once")
        XCTAssertEqual(
            try c.queryPrepared("p", "SELECT $1::int * 10", ["4"]).rows[0][0], "40", "new text under the name")
        XCTAssertEqual(try preparedCount(), "1", "the old one was deallocated")

        // The session dies; after the reconnect the statement is prepared again.
        let pid = try XCTUnwrap(c.query("SELECT pg_backend_pid()").rows[0][0])
        let killer = try PostgresConnection(connInfo: PostgresConnInfo(d))
        try killer.query("SELECT pg_terminate_backend($1::int)", [pid])
        XCTAssertThrowsError(try c.queryPrepared("p", "SELECT $1::int * 10", ["5"]))
        try c.resetIfBroken()
        XCTAssertEqual(try c.queryPrepared("p", "SELECT $1::int * 10", ["5"]).rows[0][0], "50")

        XCTAssertThrowsError(try c.queryPrepared("bad", "SELECT * FROM no_such_table")) { e in
            guard case .postgresQuery(let state, _)? = e as? IOError else { return XCTFail("\(e)") }
            XCTAssertEqual(state, "42P01")
        }
        XCTAssertThrowsError(try c.queryPrepared("p", "SELECT $1::int * 10", ["x"])) { e in
            guard case .postgresQuery(let state, _)? = e as? IOError else { return XCTFail("\(e)") }
            XCTAssertEqual(state, "22P02", "invalid input: a typed error, the session stays usable")
        }
        XCTAssertEqual(try c.queryPrepared("p", "SELECT $1::int * 10", ["6"]).rows[0][0], "60")
    }
}
