// The connections from Dify's own settings: the app Redis from REDIS_* (standalone and
// Sentinel), the broker from CELERY_BROKER_URL (Celery's sentinel:// form too), PostgreSQL
// from DB_* with DB_EXTRAS; what cannot work here is refused naming the setting; no
// password appears in an error, the summary or a warning.

import HeraldCore
import HeraldRuntime
import XCTest

final class DifyConnectionSettingsTests: XCTestCase {
    func testAppRedisFromDifysNames() throws {
        let s = try Settings.load(from: [
            "REDIS_HOST": "redis", "REDIS_PORT": "6380", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "difyai123456",
            "REDIS_DB": "2", "CELERY_BROKER_URL": "redis://:difyai123456@redis:6379/1",
        ])
        XCTAssertEqual(
            s.redis,
            RedisEndpoint(
                address: .tcp(host: "redis", port: 6380), username: "app", password: "difyai123456", database: 2))
        XCTAssertEqual(s.celeryBroker.database, 1)
        XCTAssertEqual(s.warnings, [])
        // HERALD_REDIS_URL wins over Dify's names.
        let h = try Settings.load(from: ["HERALD_REDIS_URL": "redis://other:1/3", "REDIS_HOST": "redis"])
        XCTAssertEqual(h.redis, RedisEndpoint(address: .tcp(host: "other", port: 1), database: 3))
        // An empty password is none (Dify's `REDIS_PASSWORD or None`).
        XCTAssertNil(try Settings.load(from: ["REDIS_PASSWORD": ""]).redis.password)
    }

    func testAppRedisThroughSentinel() throws {
        let s = try Settings.load(from: [
            "REDIS_USE_SENTINEL": "true", "REDIS_SENTINELS": "s1:26379, s2:26380,[::1]:26381",
            "REDIS_SENTINEL_SERVICE_NAME": "mymaster", "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
            "REDIS_SENTINEL_SOCKET_TIMEOUT": "0.5", "REDIS_PASSWORD": "master-secret", "REDIS_DB": "4",
            // Dify ignores TLS in Sentinel mode; so does Herald.
            "REDIS_USE_SSL": "true",
        ])
        guard case .sentinel(let sentinel) = s.redis.address else { return XCTFail("\(s.redis.address)") }
        XCTAssertEqual(
            sentinel.nodes,
            [.init(host: "s1", port: 26379), .init(host: "s2", port: 26380), .init(host: "::1", port: 26381)])
        XCTAssertEqual(sentinel.masterName, "mymaster")
        XCTAssertEqual(sentinel.password, "sentinel-secret")
        XCTAssertEqual(sentinel.socketTimeout, .milliseconds(500))
        XCTAssertEqual(s.redis.password, "master-secret")
        XCTAssertEqual(s.redis.database, 4)
        let shown = s.redactedSummary.map { $0.1 }.joined(separator: " ") + s.warnings.joined()
        XCTAssertTrue(shown.contains("sentinel://:***@s1:26379/4"), shown)
        XCTAssertTrue(shown.contains("(master mymaster)"), shown)
        XCTAssertFalse(shown.contains("secret"), shown)
        // Dify's default timeout is 0.1 s.
        let d = try Settings.load(from: [
            "REDIS_USE_SENTINEL": "1", "REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_SERVICE_NAME": "m",
        ])
        guard case .sentinel(let dflt) = d.redis.address else { return XCTFail() }
        XCTAssertEqual(dflt.socketTimeout, .milliseconds(100))
    }

    func testBrokerInCelerysSentinelForm() throws {
        let s = try Settings.load(from: [
            "CELERY_BROKER_URL": "sentinel://:master-pw@s1:26379/1;sentinel://:master-pw@s2/1",
            "CELERY_USE_SENTINEL": "true", "CELERY_SENTINEL_MASTER_NAME": "broker-master",
            "CELERY_SENTINEL_PASSWORD": "sentinel-pw",
        ])
        guard case .sentinel(let sentinel) = s.celeryBroker.address else { return XCTFail() }
        XCTAssertEqual(sentinel.nodes, [.init(host: "s1", port: 26379), .init(host: "s2", port: 26379)])
        XCTAssertEqual(sentinel.masterName, "broker-master")
        XCTAssertEqual(sentinel.password, "sentinel-pw")
        XCTAssertEqual(s.celeryBroker.password, "master-pw")
        XCTAssertEqual(s.celeryBroker.database, 1)
        XCTAssertFalse(s.redactedSummary.map { $0.1 }.joined().contains("pw"))
    }

    func testWhatCannotWorkIsRefusedNamingTheSetting() {
        let cases: [([String: String], String, String)] = [
            (["REDIS_USE_SENTINEL": "true"], "REDIS_SENTINELS", "must list the sentinels"),
            (
                ["REDIS_USE_SENTINEL": "true", "REDIS_SENTINELS": "s1:26379"], "REDIS_SENTINEL_SERVICE_NAME",
                "must name the master"
            ),
            (
                ["REDIS_USE_SENTINEL": "true", "REDIS_SENTINELS": "s1", "REDIS_SENTINEL_SERVICE_NAME": "m"],
                "REDIS_SENTINELS", "host:port"
            ),
            (["REDIS_USE_CLUSTERS": "true"], "REDIS_USE_CLUSTERS", "Redis Cluster is not supported"),
            (["REDIS_USE_SSL": "true", "REDIS_PASSWORD": "hunter2"], "REDIS_USE_SSL", "stunnel"),
            (["CELERY_BROKER_URL": "rediss://:hunter2@h:6380/1"], "CELERY_BROKER_URL", "no TLS"),
            (["CELERY_BROKER_URL": "sentinel://:hunter2@s1:26379/1"], "CELERY_SENTINEL_MASTER_NAME", "master"),
            (["DB_TYPE": "mysql"], "DB_TYPE", "PostgreSQL only"),
            (["REDIS_PORT": "0"], "REDIS_PORT", "1...65535"),
            (["DB_EXTRAS": "just-words"], "DB_EXTRAS", "key=value"),
            (["DB_EXTRAS": "nosuchparam=1"], "DB_EXTRAS", "not accepted by libpq"),
            (["HERALD_REDIS_USE_SSL": "yes"], "HERALD_REDIS_USE_SSL", "TLS"),
        ]
        for (env, key, reason) in cases {
            XCTAssertThrowsError(try Settings.load(from: env), "\(env)") {
                guard let e = $0 as? SettingsError else { return XCTFail("\($0)") }
                XCTAssertEqual(e.key, key, "\(env)")
                XCTAssertTrue(e.reason.contains(reason), "\(env): \(e.reason)")
                XCTAssertFalse(e.description.contains("hunter2"), e.description)
            }
        }
        XCTAssertNoThrow(try Settings.load(from: ["DB_TYPE": "postgresql"]))
    }

    func testDatabaseExtrasAndCharset() throws {
        let s = try Settings.load(from: [
            "DB_HOST": "db", "DB_EXTRAS": "options=-c search_path%3Ddify,public&application_name=herald+beat",
            "DB_CHARSET": "utf8",
        ])
        XCTAssertEqual(s.database["options"], "-c search_path=dify,public")
        XCTAssertEqual(s.database["application_name"], "herald beat")
        XCTAssertEqual(s.database["client_encoding"], "utf8")
        // Dify's documented form, with a raw space and '='.
        let raw = try Settings.load(from: ["DB_EXTRAS": "options=-c search_path=myschema"])
        XCTAssertEqual(raw.database["options"], "-c search_path=myschema")
    }

    func testKeyPrefixIsTrimmedAsDifyTrimsIt() throws {
        XCTAssertEqual(try Settings.load(from: ["REDIS_KEY_PREFIX": "  dify  "]).redisKeyPrefix, "dify")
        XCTAssertEqual(try Settings.load(from: ["REDIS_KEY_PREFIX": "   "]).redisKeyNamespace, "")
        // Only whitespace goes: a trailing colon stays, and keys get "dify::" as in Dify.
        XCTAssertEqual(try Settings.load(from: ["REDIS_KEY_PREFIX": "dify:"]).redisKeyNamespace, "dify::")
    }
}
