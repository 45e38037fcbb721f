// Settings: defaults, Dify's names, and that every bad value is refused with
// the key named and no secret echoed.

import HeraldCore
import HeraldRuntime
import Logging
import XCTest

final class SettingsTests: XCTestCase {
    func testDefaults() throws {
        let s = try Settings.load(from: [:], hostname: "box", pid: 42)
        // Dify's REDIS_HOST/REDIS_PORT defaults; no broker URL: the app Redis, with a warning.
        XCTAssertEqual(s.redis, RedisEndpoint(address: .tcp(host: "localhost", port: 6379)))
        XCTAssertEqual(s.celeryBroker, s.redis)
        XCTAssertEqual(s.warnings.count, 1)
        XCTAssertTrue(s.warnings[0].hasPrefix("CELERY_BROKER_URL is not set"), s.warnings[0])
        XCTAssertEqual(s.metricsAddress?.host, "127.0.0.1")
        XCTAssertEqual(s.metricsAddress?.port, 9464)
        XCTAssertEqual(s.instanceID, "box-42")
        XCTAssertEqual(s.logFormat, .logfmt)
        XCTAssertEqual(s.logLevel, .info)
        XCTAssertEqual(s.sweepInterval, .seconds(30))
        XCTAssertEqual(s.logTimeZone, "UTC")
        XCTAssertEqual(s.scheduleMaxDispatchPerTick, 0)
        XCTAssertEqual(s.database["dbname"], "dify")
        XCTAssertEqual(s.database["host"], "localhost")
    }

    func testDifyNamesHonoured() throws {
        let s = try Settings.load(from: [
            "DB_HOST": "db", "DB_PORT": "5433", "DB_USERNAME": "dify", "DB_PASSWORD": "it's secret",
            "DB_DATABASE": "app",
            "CELERY_BROKER_URL": "redis://:difyai123456@redis:6379/1", "REDIS_KEY_PREFIX": "p:",
            "LOG_TZ": "Asia/Shanghai",
            "WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK": "500",
        ])
        XCTAssertEqual(s.database["host"], "db")
        XCTAssertEqual(s.database["port"], "5433")
        XCTAssertEqual(s.database["user"], "dify")
        XCTAssertEqual(s.database["password"], "it's secret")
        XCTAssertEqual(s.database["dbname"], "app")
        XCTAssertEqual(s.celeryBroker.database, 1)
        XCTAssertEqual(s.celeryBroker.password, "difyai123456")
        XCTAssertEqual(s.redisKeyPrefix, "p:")
        XCTAssertEqual(s.logTimeZone, "Asia/Shanghai")
        XCTAssertEqual(s.scheduleMaxDispatchPerTick, 500)
        XCTAssertFalse(s.redactedSummary.map { $0.1 }.joined().contains("secret"))
        XCTAssertFalse(s.redactedSummary.map { $0.1 }.joined().contains("difyai123456"))
    }

    func testHeraldDatabaseURLWins() throws {
        let s = try Settings.load(from: ["HERALD_DATABASE_URL": "postgresql://u:pw@h:1/d", "DB_HOST": "ignored"])
        XCTAssertEqual(s.database["host"], "h")
        XCTAssertEqual(s.database["password"], "pw")
        XCTAssertFalse(s.database.redacted.contains("pw"))
    }

    func testMetricsAddr() throws {
        XCTAssertNil(try Settings.load(from: ["HERALD_METRICS_ADDR": "off"]).metricsAddress)
        let s = try Settings.load(from: ["HERALD_METRICS_ADDR": ":9999"])
        XCTAssertEqual(s.metricsAddress?.host, "0.0.0.0")
        XCTAssertEqual(s.metricsAddress?.port, 9999)
    }

    func testEncodeAheadDefaultsAndBounds() throws {
        XCTAssertEqual(try Settings.load(from: [:]).scheduleEncodeAhead, 20_000)
        XCTAssertEqual(try Settings.load(from: ["HERALD_SCHEDULE_ENCODE_AHEAD": "0"]).scheduleEncodeAhead, 0)
        XCTAssertEqual(try Settings.load(from: ["HERALD_SCHEDULE_ENCODE_AHEAD": "500000"]).scheduleEncodeAhead, 500_000)
    }

    func testBadValuesNameTheKey() {
        let cases: [(String, String)] = [
            ("HERALD_REDIS_URL", "http://nope"), ("CELERY_BROKER_URL", "redis://h:0"),
            ("HERALD_METRICS_ADDR", "nohost"),
            ("HERALD_LOG_FORMAT", "xml"), ("HERALD_LOG_LEVEL", "loud"), ("HERALD_SWEEP_INTERVAL", "-1"),
            ("HERALD_SWEEP_INTERVAL", "soon"), ("HERALD_DATABASE_URL", "postgresql://h:notaport/x?bogus=1"),
            ("WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK", "-5"), ("HERALD_INSTANCE_ID", "has space"),
            ("HERALD_DB_POOL_SIZE", "0"), ("LOG_TZ", "Mars/Base"), ("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", "maybe"),
            ("HERALD_SCHEDULE_HORIZON", "1"), ("HERALD_SCHEDULE_RESEND_AFTER", "0"),
            ("HERALD_SCHEDULE_ENCODE_AHEAD", "-1"), ("HERALD_SCHEDULE_ENCODE_AHEAD", "lots"),
            // A Dify name overridden for Herald alone is reported under the override's name.
            ("HERALD_LOG_TZ", "Mars/Base"), ("HERALD_ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", "maybe"),
            ("HERALD_CELERY_BROKER_URL", "http://nope"),
        ]
        for (key, value) in cases {
            XCTAssertThrowsError(try Settings.load(from: [key: value]), "\(key)=\(value)") { error in
                guard let e = error as? SettingsError else { return XCTFail("typed error expected") }
                XCTAssertEqual(e.key, key)
                XCTAssertTrue(e.description.contains(key))
            }
        }
    }

    func testSecretsAreNotEchoedInErrors() {
        XCTAssertThrowsError(try Settings.load(from: ["HERALD_DATABASE_URL": "postgresql://u:hunter2@h/d?bogus=1"])) {
            error in
            XCTAssertFalse("\(error)".contains("hunter2"))
        }
    }
}

final class LogFormatTests: XCTestCase {
    func testLogfmtAndJSONEscaping() {
        let meta: Logger.Metadata = ["source": "redis_subscriber", "reason": "a \"quoted\"\nline"]
        let l = HeraldLogHandler.render(
            format: .logfmt, level: .warning, message: "event rejected", metadata: meta, timestamp: "T")
        XCTAssertEqual(
            l, "ts=T level=warning msg=\"event rejected\" reason=\"a \\\"quoted\\\"\\nline\" source=redis_subscriber")
        let j = HeraldLogHandler.render(
            format: .json, level: .info, message: "x\u{1}", metadata: ["k": "v"], timestamp: "T")
        XCTAssertEqual(j, "{\"ts\":\"T\",\"level\":\"info\",\"msg\":\"x\\u0001\",\"k\":\"v\"}")
    }
}
