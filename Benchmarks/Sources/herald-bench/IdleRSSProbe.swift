// The idle-memory figure: the real `herald run` binary as a child process with
// every source connected and the schedules running on a migrated, empty
// database of its own, its /healthz answering 200, then left alone for a few
// seconds; VmRSS is read from /proc and the daemon is stopped with SIGTERM
// (a clean exit is part of the result).

import Foundation
import Glibc
import HeraldIO

/// Runs the herald binary and reads its resident memory while idle.
struct IdleRSSProbe {
    let environment: BenchEnvironment
    let settle: Duration

    struct Result: Sendable {
        var rssKiB: Int?
        var hwmKiB: Int?
        /// VmRSS split: private anonymous memory vs pages of mapped files (mostly shared libraries).
        var anonKiB: Int?
        var fileKiB: Int?
        /// Proportional set size: shared pages divided among the processes mapping them.
        var pssKiB: Int?
        /// From spawn to the first /healthz 200.
        var readyNs: Int64?
        var exitStatus: Int32?
        var threads: Int?
        /// Which database the daemon ran against and whether its schedules could start.
        var database: String?
        var error: String?

        var json: BenchJSON {
            .object([
                ("rss_kib", rssKiB.map(BenchJSON.int) ?? .null), ("hwm_kib", hwmKiB.map(BenchJSON.int) ?? .null),
                ("rss_anon_kib", anonKiB.map(BenchJSON.int) ?? .null),
                ("rss_file_kib", fileKiB.map(BenchJSON.int) ?? .null),
                ("pss_kib", pssKiB.map(BenchJSON.int) ?? .null),
                ("ready_ns", readyNs.map(BenchJSON.int) ?? .null),
                ("exit_status", exitStatus.map { .int(Int64($0)) } ?? .null),
                ("threads", threads.map(BenchJSON.int) ?? .null), ("database", database.map(BenchJSON.string) ?? .null),
                ("error", error.map(BenchJSON.string) ?? .null),
            ])
        }
    }

    func measure() -> Result {
        var result = Result()
        guard FileManager.default.isExecutableFile(atPath: environment.heraldBinary) else {
            result.error = "no herald binary at \(environment.heraldBinary) (set HERALD_BIN)"
            return result
        }
        guard let port = Self.freePort() else {
            result.error = "no free TCP port for HERALD_METRICS_ADDR"
            return result
        }
        let databaseURL = migratedDatabase(&result)
        let logPath = NSTemporaryDirectory() + "herald-bench-rss-\(getpid()).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: environment.heraldBinary)
        p.arguments = ["run"]
        var env = ProcessInfo.processInfo.environment
        env["HERALD_REDIS_URL"] = environment.redisURL
        env["HERALD_DATABASE_URL"] = databaseURL
        env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(port)"
        env["HERALD_LOG_LEVEL"] = "warning"
        env["HERALD_INSTANCE_ID"] = "herald-bench-rss"
        for (k, v) in BenchEnvironment.quietBeat { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: logPath)
        let spawned = BenchClock.monotonicNs()
        do { try p.run() } catch {
            result.error = "cannot start \(environment.heraldBinary): \(error)"
            return result
        }
        let url = "http://127.0.0.1:\(port)/healthz"
        let healthy = BenchClock.wait(timeout: .seconds(20), every: .milliseconds(20)) {
            guard p.isRunning else { return true }
            return (try? HTTPClient.get(url, timeout: .milliseconds(500)).status) == 200
        }
        if healthy, p.isRunning {
            result.readyNs = BenchClock.monotonicNs() - spawned
            BenchClock.sleep(settle)
            let status = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8)
            result.rssKiB = status.flatMap { Self.field("VmRSS", in: $0) }
            result.hwmKiB = status.flatMap { Self.field("VmHWM", in: $0) }
            result.anonKiB = status.flatMap { Self.field("RssAnon", in: $0) }
            result.fileKiB = status.flatMap { Self.field("RssFile", in: $0) }
            let rollup = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/smaps_rollup", encoding: .utf8)
            result.pssKiB = rollup.flatMap { Self.field("Pss", in: $0) }
            result.threads = status.flatMap { Self.field("Threads", in: $0) }
        } else if p.isRunning {
            result.error = "/healthz did not answer 200 within 20 s"
        }
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        let exited = BenchClock.wait(timeout: .seconds(10), every: .milliseconds(10)) { !p.isRunning }
        if !exited {
            kill(p.processIdentifier, SIGKILL)
            result.error = (result.error.map { $0 + "; " } ?? "") + "did not exit within 10 s of SIGTERM"
        }
        p.waitUntilExit()
        result.exitStatus = p.terminationStatus
        if result.rssKiB == nil, result.error == nil {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            result.error = "herald exited early (status \(p.terminationStatus)): \(log.suffix(300))"
        }
        return result
    }

    /// A database of the probe's own (`herald_bench_rss`, created when missing) with Herald's schema
    /// applied by `herald migrate`, so the daemon runs its schedules as in production. Falls back to the
    /// benchmark database (schedules then wait for a migration) when that is not possible.
    private func migratedDatabase(_ result: inout Result) -> String {
        let name = "herald_bench_rss"
        var info = environment.database
        do {
            let admin = try PostgresConnection(connInfo: environment.database)
            let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rows.count == 1
            if !exists { try admin.execute(script: "CREATE DATABASE \(name)") }
        } catch {
            result.database = "benchmark database, schedules waiting for a migration (cannot create \(name): \(error))"
            return environment.databaseURL
        }
        info["dbname"] = name
        let url = Self.conninfo(info)
        let migrate = Process()
        migrate.executableURL = URL(fileURLWithPath: environment.heraldBinary)
        migrate.arguments = ["migrate", "--create-dify-tables"]
        var env = ProcessInfo.processInfo.environment
        env["HERALD_REDIS_URL"] = environment.redisURL
        env["HERALD_DATABASE_URL"] = url
        migrate.environment = env
        migrate.standardOutput = FileHandle.nullDevice
        do {
            try migrate.run()
            migrate.waitUntilExit()
        } catch {
            result.database =
                "benchmark database, schedules waiting for a migration (cannot run `herald migrate`: \(error))"
            return environment.databaseURL
        }
        guard migrate.terminationReason == .exit, migrate.terminationStatus == 0 else {
            result.database = "benchmark database, schedules waiting for a migration (`herald migrate` failed)"
            return environment.databaseURL
        }
        result.database = "\(name), migrated and empty: schedules running"
        return url
    }

    /// `key='value' ...`, quoted as libpq expects.
    static func conninfo(_ info: PostgresConnInfo) -> String {
        info.pairs.map { key, value in
            let quoted = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "\(key)='\(quoted)'"
        }.joined(separator: " ")
    }

    /// "VmRSS:    21480 kB" -> 21480 (also the smaps_rollup format).
    static func field(_ name: String, in status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        }
        return nil
    }

    /// A TCP port nothing listens on right now.
    static func freePort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
    }
}
