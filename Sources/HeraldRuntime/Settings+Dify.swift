// The connections as Dify's own settings describe them, for a Herald that reads Dify's
// `.env` unchanged: the app Redis from `REDIS_HOST/PORT/USERNAME/PASSWORD/DB` or through
// Sentinel (`REDIS_USE_SENTINEL`, `REDIS_SENTINELS`, …), the Celery broker from
// `CELERY_BROKER_URL` (with Celery's `sentinel://…;sentinel://…` form and the
// `CELERY_SENTINEL_*` names), and PostgreSQL from `DB_*` with `DB_EXTRAS`. What this
// build cannot do (TLS, Redis Cluster, a database other than PostgreSQL) is refused at
// start, naming the setting and the way round.

import HeraldCore
import HeraldIO

extension Settings {
    /// Reads `env` (already with `HERALD_<NAME>` overrides applied); `named` gives the name a
    /// value came from, for errors.
    struct DifyConnections {
        let env: [String: String]
        let named: (String) -> String

        func value(_ key: String) -> String? {
            guard let v = env[key]?.trimmed, !v.isEmpty else { return nil }
            return v
        }

        func flag(_ key: String) throws(SettingsError) -> Bool {
            try Settings.boolean(value(key), key: named(key), default: false)
        }

        func timeout(_ key: String) throws(SettingsError) -> Duration {
            try Settings.seconds(value(key), key: named(key), default: 0.1, range: 0.001...60)
        }

        /// The app Redis (events, locks, caches, status) from Dify's `REDIS_*` names, in Dify's
        /// order: Sentinel, else Cluster (refused), else one server (TLS refused).
        func appRedis() throws(SettingsError) -> RedisEndpoint {
            let username = value("REDIS_USERNAME")
            let password = env["REDIS_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
            let db = try Settings.integer(
                value("REDIS_DB"), key: named("REDIS_DB"), default: 0, range: 0...1_000_000)
            if try flag("REDIS_USE_SENTINEL") {
                guard let text = value("REDIS_SENTINELS") else {
                    throw SettingsError(
                        key: named("REDIS_SENTINELS"),
                        reason: "must list the sentinels (host:port,host:port) when REDIS_USE_SENTINEL is true")
                }
                let nodes: [RedisSentinel.Node]
                do { nodes = try RedisSentinel.parseNodes(text) } catch {
                    throw SettingsError(
                        key: named("REDIS_SENTINELS"), reason: "expected host:port,host:port (\(error.description))")
                }
                guard let master = value("REDIS_SENTINEL_SERVICE_NAME") else {
                    throw SettingsError(
                        key: named("REDIS_SENTINEL_SERVICE_NAME"),
                        reason: "must name the master when REDIS_USE_SENTINEL is true")
                }
                let sentinel = RedisSentinel(
                    nodes: nodes, masterName: master, username: value("REDIS_SENTINEL_USERNAME"),
                    password: env["REDIS_SENTINEL_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 },
                    socketTimeout: try timeout("REDIS_SENTINEL_SOCKET_TIMEOUT"))
                return RedisEndpoint(address: .sentinel(sentinel), username: username, password: password, database: db)
            }
            if try flag("REDIS_USE_CLUSTERS") {
                throw SettingsError(
                    key: named("REDIS_USE_CLUSTERS"),
                    reason: "Redis Cluster is not supported (Herald's key-expiry events and locks need one keyspace): "
                        + "give Herald a standalone or Sentinel-managed Redis with HERALD_REDIS_URL or REDIS_USE_SENTINEL"
                )
            }
            if try flag("REDIS_USE_SSL") {
                throw SettingsError(
                    key: named("REDIS_USE_SSL"),
                    reason: "TLS is not supported: the hiredis of Debian 12 (0.14) has no TLS; reach Redis over a "
                        + "private network or a local TLS tunnel (stunnel, spiped) and set HERALD_REDIS_URL=redis://…")
            }
            let host = value("REDIS_HOST") ?? "localhost"
            let port = try Settings.integer(
                value("REDIS_PORT"), key: named("REDIS_PORT"), default: 6379, range: 1...65535)
            return RedisEndpoint(
                address: .tcp(host: host, port: port), username: username, password: password, database: db)
        }

        /// `CELERY_BROKER_URL`, or nil when unset. A `sentinel://` URL (several joined by `;`, as
        /// Celery writes them) takes the master's name from `CELERY_SENTINEL_MASTER_NAME` and the
        /// sentinels' password from `CELERY_SENTINEL_PASSWORD`, as Dify's Celery does.
        func broker() throws(SettingsError) -> RedisEndpoint? {
            guard let url = value("CELERY_BROKER_URL") else { return nil }
            let key = named("CELERY_BROKER_URL")
            var sentinel: RedisSentinel?
            if url.lowercased().hasPrefix("sentinel://") {
                guard let master = value("CELERY_SENTINEL_MASTER_NAME") else {
                    throw SettingsError(
                        key: named("CELERY_SENTINEL_MASTER_NAME"),
                        reason: "must name the master when CELERY_BROKER_URL is a sentinel:// URL")
                }
                sentinel = RedisSentinel(
                    nodes: [], masterName: master,
                    password: env["CELERY_SENTINEL_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 },
                    socketTimeout: try timeout("CELERY_SENTINEL_SOCKET_TIMEOUT"))
            }
            do { return try RedisEndpoint.parse(url, sentinel: sentinel) } catch {
                throw SettingsError(key: key, reason: error.description)
            }
        }

        /// libpq parameters from Dify's `DB_*`: host, port, user, password, database, then
        /// `DB_CHARSET` (client_encoding) and `DB_EXTRAS` (`key=value&key=value`, as Dify appends
        /// it to its URL's query: `options=-c search_path=myschema`).
        func database() throws(SettingsError) -> PostgresConnInfo {
            var parts = [
                "host=\(Settings.quoteConnValue(value("DB_HOST") ?? "localhost"))",
                "port=\(Settings.quoteConnValue(value("DB_PORT") ?? "5432"))",
                "user=\(Settings.quoteConnValue(value("DB_USERNAME") ?? "postgres"))",
                "dbname=\(Settings.quoteConnValue(value("DB_DATABASE") ?? "dify"))",
            ]
            if let pw = env["DB_PASSWORD"], !pw.isEmpty { parts.append("password=\(Settings.quoteConnValue(pw))") }
            do { _ = try PostgresConnInfo(parts.joined(separator: " ")) } catch {
                throw SettingsError(key: named("DB_HOST"), reason: "the DB_* settings do not make a valid connection")
            }
            if let charset = value("DB_CHARSET") { parts.append("client_encoding=\(Settings.quoteConnValue(charset))") }
            if let extras = value("DB_EXTRAS") {
                for (k, v) in try Self.queryPairs(extras, key: named("DB_EXTRAS")) {
                    parts.append("\(k)=\(Settings.quoteConnValue(v))")
                }
            }
            do { return try PostgresConnInfo(parts.joined(separator: " ")) } catch {
                throw SettingsError(
                    key: named(value("DB_EXTRAS") != nil ? "DB_EXTRAS" : "DB_CHARSET"),
                    reason: "not accepted by libpq: \(error)")
            }
        }

        /// A URL query as Python's `parse_qsl` reads it: `&`-separated `key=value`, `+` a space,
        /// `%XX` decoded. Keys must look like libpq parameter names (letters and `_`); libpq checks the rest.
        static func queryPairs(_ text: String, key: String) throws(SettingsError) -> [(String, String)] {
            var out: [(String, String)] = []
            for item in text.split(separator: "&") where !item.isEmpty {
                guard let eq = item.firstIndex(of: "=") else {
                    throw SettingsError(key: key, reason: "expected key=value pairs joined by &, got \"\(item)\"")
                }
                let k = formDecoded(item[..<eq])
                let v = formDecoded(item[item.index(after: eq)...])
                guard !k.isEmpty,
                    k.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 })
                else {
                    throw SettingsError(key: key, reason: "\"\(k)\" is not a libpq connection parameter name")
                }
                out.append((k, v))
            }
            return out
        }

        static func formDecoded(_ s: Substring) -> String {
            RedisEndpoint.percentDecoded(String(s.map { $0 == "+" ? " " : $0 }))
        }
    }
}
