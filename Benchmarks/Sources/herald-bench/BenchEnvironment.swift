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

    /// The package root: the working directory when it holds Package.swift, else the
    /// directory three levels above this executable (.build/<config>/herald-bench).
    static func repositoryRoot() -> String? {
        let fm = FileManager.default
        let cwd = fm.currentDirectoryPath
        if fm.fileExists(atPath: cwd + "/Package.swift") { return cwd }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            if fm.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        return nil
    }

    /// nproc, CPU model and kernel, for the report header.
    static func machine() -> (cpus: Int, model: String, kernel: String) {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        var model = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return (cpus, model, kernel)
    }
}
