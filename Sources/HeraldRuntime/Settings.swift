// Every setting, typed, defaulted and validated once at start. A bad value
// stops start-up with exit code 2 and a message naming the key; a secret's
// value never appears in a message or a log. Dify's names are honoured with
// Dify's defaults, and HERALD_<NAME> overrides a Dify name for Herald alone
// (docs/configuration.md).

import HeraldCore
import HeraldIO
import Logging

/// Why a setting was refused. The value is never echoed for secrets.
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var description: String { "invalid setting \(key): \(reason)" }
}

/// The log line format.
public enum LogFormat: String, Sendable, CaseIterable {
    case logfmt, json
}

/// Herald's configuration.
public struct Settings: Sendable {
    /// The app Redis (events, locks, caches, status): `HERALD_REDIS_URL`, else Dify's `REDIS_*`
    /// settings (standalone or through Sentinel; default `localhost:6379`, db 0).
    public var redis: RedisEndpoint
    /// `CELERY_BROKER_URL` (also Celery's `sentinel://` form): where Celery messages go. Unset,
    /// the app Redis, with a warning (Dify has no default; its docker `.env` sets db 1).
    public var celeryBroker: RedisEndpoint
    /// `HERALD_DATABASE_URL`, else built from Dify's `DB_*` names.
    public var database: PostgresConnInfo
    /// `HERALD_METRICS_ADDR` (`host:port`, default `127.0.0.1:9464`); nil when `off`.
    public var metricsAddress: (host: String, port: Int)?
    /// `HERALD_TOPOLOGY` (default `topology/default.json`).
    public var topologyPath: String
    /// `HERALD_INSTANCE_ID` (default hostname-pid).
    public var instanceID: String
    /// `HERALD_LOG_FORMAT` (`logfmt` | `json`, default logfmt).
    public var logFormat: LogFormat
    /// `HERALD_LOG_LEVEL` (default info).
    public var logLevel: Logger.Level
    /// `HERALD_SWEEP_INTERVAL` seconds while every source is up (default 30).
    public var sweepInterval: Duration
    /// `REDIS_KEY_PREFIX` (Dify; default empty), without surrounding whitespace as Dify trims it:
    /// prefixes Herald's Redis keys and Celery's list keys (`<prefix>:`).
    public var redisKeyPrefix: String
    /// `LOG_TZ` (Dify; default UTC): the zone periodic tasks' crontabs are evaluated in.
    public var logTimeZone: String
    /// `WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK` (Dify; default 0 = unlimited).
    public var scheduleMaxDispatchPerTick: Int
    /// `WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE` (Dify; default 100): rows per sweep batch.
    public var schedulePollerBatchSize: Int
    /// `HERALD_DB_POOL_SIZE` (default 4): ordinary PostgreSQL connections for off-loop work.
    public var databasePoolSize: Int
    /// `ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK` (Dify; default true): run workflow schedules.
    public var schedulesEnabled: Bool = true
    /// `HERALD_SCHEDULE_HORIZON` seconds (default 300): plans due this soon are armed as timers.
    public var scheduleHorizonSeconds: Int = 300
    /// `HERALD_SCHEDULE_RESEND_AFTER` seconds (default 10): a claimed fire not marked enqueued
    /// after this long is re-sent by the sweep (the broker drops the duplicate if it was queued).
    public var scheduleResendAfterSeconds: Int = 10
    /// `HERALD_SCHEDULE_LEAD` seconds (default 2): fires are claimed this long before their time
    /// and pushed at it, so thousands of simultaneous fires reach the queue on time.
    public var scheduleLead: Duration = .seconds(2)
    /// `HERALD_SCHEDULE_ENCODE_AHEAD` (default 20,000): at most this many pre-claimed fires are held
    /// with their Celery messages already encoded; the rest of a larger burst is encoded as it is pushed.
    public var scheduleEncodeAhead: Int = 20_000
    /// `ENABLE_TRIGGER_PROVIDER_REFRESH_TASK` (Dify; default true): refresh trigger credentials.
    public var triggerRefreshEnabled: Bool = true
    /// `TRIGGER_PROVIDER_CREDENTIAL_THRESHOLD_SECONDS` (Dify; default 3600).
    public var triggerCredentialThreshold: Int = 3600
    /// `TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS` (Dify; default 3600).
    public var triggerSubscriptionThreshold: Int = 3600
    /// `MARKETPLACE_API_URL` (Dify; default https://marketplace.dify.ai).
    public var marketplaceURL: String = "https://marketplace.dify.ai"
    /// `HERALD_DIFY_VERSION` (default 1.14.2): the `X-Dify-Version` Herald sends the marketplace.
    public var difyVersion: String = "1.14.2"
    /// The queue monitor's thresholds, recipients and cadence (QueueMonitor.swift).
    public var queueMonitor = QueueMonitorSettings()
    /// What start-up should warn about (a setting that works, but probably not as meant).
    public var warnings: [String] = []

    /// Redis keys Herald writes start with this (`REDIS_KEY_PREFIX` plus ":" when set, as Dify does).
    public var redisKeyNamespace: String { redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":" }

    /// Reads and validates every setting from `env`.
    /// `HERALD_<NAME>` overrides Dify's `<NAME>` (``TaskSettings/applyingHeraldOverrides(_:)``).
    public static func load(
        from environment: [String: String], hostname: String = "localhost", pid: Int32 = 0
    ) throws(SettingsError) -> Settings {
        let env = TaskSettings.applyingHeraldOverrides(environment)
        // A Dify name's bad value is reported under the name that set it (HERALD_<NAME> when overridden).
        func named(_ key: String) -> String {
            let override = TaskSettings.overridePrefix + key
            return (environment[override]?.trimmed.isEmpty == false) ? override : key
        }
        func value(_ key: String) -> String? {
            guard let v = env[key]?.trimmed, !v.isEmpty else { return nil }
            return v
        }
        func redisURL(_ key: String, _ text: String) throws(SettingsError) -> RedisEndpoint {
            do { return try RedisEndpoint.parse(text) } catch {
                throw SettingsError(key: key, reason: error.description)
            }
        }

        let dify = DifyConnections(env: env, named: named)
        var warnings = SettingNames.warnings(environment)
        let redis: RedisEndpoint
        if let u = value("HERALD_REDIS_URL") {
            redis = try redisURL("HERALD_REDIS_URL", u)
        } else {
            redis = try dify.appRedis()
        }
        let broker: RedisEndpoint
        if let b = try dify.broker() {
            broker = b
        } else {
            broker = redis
            warnings.append(
                "CELERY_BROKER_URL is not set: Celery messages go to the app Redis (\(redis.redacted)); "
                    + "Dify's workers read CELERY_BROKER_URL (db 1 in Dify's docker .env), so set it to the same URL")
        }

        if let type = value("DB_TYPE"), type.lowercased() != "postgresql" {
            throw SettingsError(
                key: named("DB_TYPE"),
                reason: "Herald runs on PostgreSQL only (DB_TYPE=postgresql); got \"\(type)\"")
        }
        let database: PostgresConnInfo
        if let u = value("HERALD_DATABASE_URL") {
            do { database = try PostgresConnInfo(u) } catch {
                throw SettingsError(key: "HERALD_DATABASE_URL", reason: "not a valid libpq connection string or URL")
            }
        } else {
            database = try dify.database()
        }

        var metrics: (host: String, port: Int)? = ("127.0.0.1", 9464)
        if let m = value("HERALD_METRICS_ADDR") {
            if m.lowercased() == "off" {
                metrics = nil
            } else {
                guard let colon = m.lastIndex(of: ":"), let port = Int(m[m.index(after: colon)...]),
                    (0...65535).contains(port)
                else {
                    throw SettingsError(key: "HERALD_METRICS_ADDR", reason: "expected host:port or off, got \"\(m)\"")
                }
                var host = String(m[..<colon])
                if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                if host.isEmpty { host = "0.0.0.0" }
                metrics = (host, port)
            }
        }

        let format: LogFormat
        if let f = value("HERALD_LOG_FORMAT") {
            guard let v = LogFormat(rawValue: f.lowercased()) else {
                throw SettingsError(key: "HERALD_LOG_FORMAT", reason: "expected logfmt or json, got \"\(f)\"")
            }
            format = v
        } else {
            format = .logfmt
        }
        let level: Logger.Level
        if let l = value("HERALD_LOG_LEVEL") {
            let aliases: [String: Logger.Level] = ["warn": .warning, "fatal": .critical]
            guard let v = Logger.Level(rawValue: l.lowercased()) ?? aliases[l.lowercased()] else {
                throw SettingsError(
                    key: "HERALD_LOG_LEVEL",
                    reason: "expected trace, debug, info, notice, warning, error or critical, got \"\(l)\"")
            }
            level = v
        } else {
            level = .info
        }

        let sweep = try seconds(
            value("HERALD_SWEEP_INTERVAL"), key: "HERALD_SWEEP_INTERVAL", default: 30, range: 0.05...86_400)
        let instance = value("HERALD_INSTANCE_ID") ?? "\(hostname)-\(pid)"
        guard instance.utf8.count <= 128, !instance.contains(where: { $0.isWhitespace }) else {
            throw SettingsError(key: "HERALD_INSTANCE_ID", reason: "must be at most 128 characters without spaces")
        }
        let maxDispatch = try integer(
            value("WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK"), key: named("WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK"),
            default: 0, range: 0...10_000_000)
        let batch = try integer(
            value("WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE"), key: named("WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE"),
            default: 100,
            range: 1...100_000)
        let pool = try integer(value("HERALD_DB_POOL_SIZE"), key: "HERALD_DB_POOL_SIZE", default: 4, range: 1...64)

        let logTZ = value("LOG_TZ") ?? "UTC"
        do { _ = try CronZone(identifier: logTZ) } catch {
            throw SettingsError(
                key: named("LOG_TZ"),
                reason: "unknown time zone \"\(logTZ)\" (expected an IANA name such as Asia/Shanghai)")
        }
        let schedulesEnabled = try boolean(
            value("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK"), key: named("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK"),
            default: true)
        let horizon = try integer(
            value("HERALD_SCHEDULE_HORIZON"), key: "HERALD_SCHEDULE_HORIZON", default: 300, range: 5...86_400)
        let lead = try seconds(value("HERALD_SCHEDULE_LEAD"), key: "HERALD_SCHEDULE_LEAD", default: 2, range: 0...60)
        let resend = try integer(
            value("HERALD_SCHEDULE_RESEND_AFTER"), key: "HERALD_SCHEDULE_RESEND_AFTER", default: 10, range: 1...86_400)
        let encodeAhead = try integer(
            value("HERALD_SCHEDULE_ENCODE_AHEAD"), key: "HERALD_SCHEDULE_ENCODE_AHEAD", default: 20_000,
            range: 0...10_000_000)
        let triggerEnabled = try boolean(
            value("ENABLE_TRIGGER_PROVIDER_REFRESH_TASK"), key: named("ENABLE_TRIGGER_PROVIDER_REFRESH_TASK"),
            default: true)
        let credentialThreshold = try integer(
            value("TRIGGER_PROVIDER_CREDENTIAL_THRESHOLD_SECONDS"),
            key: named("TRIGGER_PROVIDER_CREDENTIAL_THRESHOLD_SECONDS"), default: 3600, range: 0...31_536_000)
        let subscriptionThreshold = try integer(
            value("TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS"),
            key: named("TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS"), default: 3600, range: 0...31_536_000)
        let marketplace = value("MARKETPLACE_API_URL") ?? "https://marketplace.dify.ai"
        guard marketplace.hasPrefix("http://") || marketplace.hasPrefix("https://") else {
            throw SettingsError(
                key: named("MARKETPLACE_API_URL"), reason: "expected an http(s) URL, got \"\(marketplace)\"")
        }
        let difyVersion = value("HERALD_DIFY_VERSION") ?? "1.14.2"
        guard !difyVersion.isEmpty, difyVersion.utf8.count <= 64,
            difyVersion.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 })
        else {
            throw SettingsError(key: "HERALD_DIFY_VERSION", reason: "expected a version such as 1.14.2")
        }
        let queueMonitor = try QueueMonitorSettings.load(value, named: named)
        return Settings(
            redis: redis, celeryBroker: broker, database: database, metricsAddress: metrics,
            topologyPath: value("HERALD_TOPOLOGY") ?? "topology/default.json", instanceID: instance,
            logFormat: format, logLevel: level, sweepInterval: sweep,
            redisKeyPrefix: (env["REDIS_KEY_PREFIX"] ?? "").trimmed, logTimeZone: logTZ,
            scheduleMaxDispatchPerTick: maxDispatch, schedulePollerBatchSize: batch, databasePoolSize: pool,
            schedulesEnabled: schedulesEnabled, scheduleHorizonSeconds: horizon, scheduleResendAfterSeconds: resend,
            scheduleLead: lead, scheduleEncodeAhead: encodeAhead, triggerRefreshEnabled: triggerEnabled,
            triggerCredentialThreshold: credentialThreshold, triggerSubscriptionThreshold: subscriptionThreshold,
            marketplaceURL: marketplace, difyVersion: difyVersion, queueMonitor: queueMonitor, warnings: warnings
        )
    }

    static func seconds(
        _ text: String?, key: String, default d: Double, range: ClosedRange<Double>
    ) throws(SettingsError) -> Duration {
        guard let text else { return .nanoseconds(Int64(d * 1e9)) }
        guard let v = Double(text), v.isFinite, range.contains(v) else {
            throw SettingsError(
                key: key,
                reason: "expected a number of seconds in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return .nanoseconds(Int64(v * 1e9))
    }

    static func integer(
        _ text: String?, key: String, default d: Int, range: ClosedRange<Int>
    ) throws(SettingsError) -> Int {
        guard let text else { return d }
        guard let v = Int(text), range.contains(v) else {
            throw SettingsError(
                key: key, reason: "expected an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return v
    }

    static func boolean(_ text: String?, key: String, default d: Bool) throws(SettingsError) -> Bool {
        guard let text else { return d }
        switch text.lowercased() {
        case "1", "true", "yes", "on", "t", "y": return true
        case "0", "false", "no", "off", "f", "n": return false
        default: throw SettingsError(key: key, reason: "expected true or false, got \"\(text)\"")
        }
    }

    static func quoteConnValue(_ v: String) -> String {
        var out = "'"
        for ch in v {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "'"
    }

    /// What start-up logs: every setting, with secrets redacted.
    public var redactedSummary: [(String, String)] {
        [
            ("redis", redis.redacted), ("celery_broker", celeryBroker.redacted), ("database", database.redacted),
            ("metrics_addr", metricsAddress.map { "\($0.host):\($0.port)" } ?? "off"), ("topology", topologyPath),
            ("instance", instanceID), ("sweep_interval_s", String(sweepInterval.seconds)),
            ("redis_key_prefix", redisKeyPrefix), ("log_tz", logTimeZone),
        ]
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
