// Where the benchmark finds its servers and helpers: the test harness'
// variables (HERALD_TEST_*, as services.sh writes them) or the daemon's own
// (HERALD_REDIS_URL, HERALD_DATABASE_URL), the Python peer, the herald binary,
// and a description of the machine for the report.

import Foundation
import HeraldCore
import HeraldIO

/// Everything a scenario needs from outside the process.
struct BenchEnvironment: Sendable {
    var redisURL: String
    var redis: RedisEndpoint
    var databaseURL: String
    var database: PostgresConnInfo
    /// A Python with redis-py (and psycopg for the NOTIFY peer); nil skips the peer.
    var python: String?
    /// Tests/Support/bench_redis_subscriber.py.
    var peerScript: String?
    /// The herald binary for the idle-RSS probe.
    var heraldBinary: String

    /// Dify's beat entries that are on by default and that Herald enqueues as `celery` tasks,
    /// switched off for Herald in every daemon the benchmark starts, so that no beat message
    /// lands on a queue a scenario counts (human_input_form_timeout goes to schedule_executor).
    static let quietBeat = [
        "HERALD_ENABLE_HUMAN_INPUT_TIMEOUT_TASK": "false", "HERALD_ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "false",
        "HERALD_ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK": "false", "HERALD_ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false",
        "HERALD_ENABLE_CLEAN_OAUTH_ACCESS_TOKENS_TASK": "false",
    ]

    /// Connection settings for database `name` on the benchmark's server.
    func database(named name: String) -> PostgresConnInfo {
        var i = database
        i["dbname"] = name
        return i
    }

    /// `key='value' …` for database `name`, as HERALD_DATABASE_URL and psycopg accept it.
    func databaseURL(named name: String) -> String { IdleRSSProbe.conninfo(database(named: name)) }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    static func load() throws -> BenchEnvironment {
        let env = ProcessInfo.processInfo.environment
        func first(_ keys: String...) -> String? {
            for k in keys { if let v = env[k], !v.isEmpty { return v } }
            return nil
        }
        guard let redisURL = first("HERALD_TEST_REDIS_URL", "HERALD_REDIS_URL") else {
            throw Missing(description: "set HERALD_TEST_REDIS_URL or HERALD_REDIS_URL (make bench does)")
        }
        guard let dbURL = first("HERALD_TEST_DATABASE_URL", "HERALD_DATABASE_URL") else {
            throw Missing(description: "set HERALD_TEST_DATABASE_URL or HERALD_DATABASE_URL (make bench does)")
        }
        let redis: RedisEndpoint
        do { redis = try RedisEndpoint.parse(redisURL) } catch {
            throw Missing(description: "bad Redis URL: \(error)")
        }
        let db: PostgresConnInfo
        do { db = try PostgresConnInfo(dbURL) } catch {
            throw Missing(description: "bad database URL: \(error)")
        }
        let root = repositoryRoot()
        var python = first("HERALD_TEST_PYTHON")
        if python == nil, let r = root, FileManager.default.isExecutableFile(atPath: r + "/.run/venv/bin/python") {
            python = r + "/.run/venv/bin/python"
        }
        if let p = python, !FileManager.default.isExecutableFile(atPath: p) { python = nil }
        var script = first("HERALD_BENCH_PEER")
        if script == nil, let r = root { script = r + "/Tests/Support/bench_redis_subscriber.py" }
        if let s = script, !FileManager.default.fileExists(atPath: s) { script = nil }
        let bin = first("HERALD_BIN") ?? ((root ?? ".") + "/.build/release/herald")
        return BenchEnvironment(
            redisURL: redisURL, redis: redis, databaseURL: dbURL, database: db, python: python,
            peerScript: script, heraldBinary: bin)
    }

    /// Herald's repository root, the directory with Package.swift and Tests/Support (the Python
    /// peers): the working directory or its parent (when run from Benchmarks/), else the nearest
    /// directory above this executable (Benchmarks/.build/<triple>/<config>/herald-bench).
    static func repositoryRoot() -> String? {
        let fm = FileManager.default
        func isRoot(_ url: URL) -> Bool {
            fm.fileExists(atPath: url.path + "/Package.swift") && fm.fileExists(atPath: url.path + "/Tests/Support")
        }
        let cwd = URL(fileURLWithPath: fm.currentDirectoryPath)
        for candidate in [cwd, cwd.deletingLastPathComponent()] where isRoot(candidate) { return candidate.path }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<6 {
            url.deleteLastPathComponent()
            if isRoot(url) { return url.path }
        }
        return nil
    }

    /// nproc, CPU model and kernel, for the report header.
    static func machine() -> (cpus: Int, model: String, kernel: String) {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        var model = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return (cpus, model, kernel)
    }
}
