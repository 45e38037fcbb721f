// Runs the built `herald` binary as an operator would: as a child process with
// its own environment, output captured to files, stopped with signals.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

struct BinaryResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Binary {
    static var env: [String: String] { ProcessInfo.processInfo.environment }

    /// The built binary (HERALD_BIN from the harness, else .build/debug/herald).
    static func path() throws -> String {
        if let p = env["HERALD_BIN"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/herald"
        if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
        if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_BIN is not set and no .build/debug/herald") }
        throw XCTSkip("no herald binary")
    }

    static func servers() throws -> (redis: String, database: String) {
        guard let r = env["HERALD_TEST_REDIS_URL"], let d = env["HERALD_TEST_DATABASE_URL"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail("test servers missing although the harness should have started them")
            }
            throw XCTSkip("no test servers (run through `make test`)")
        }
        return (r, d)
    }

    /// The test venv's Python (`HERALD_TEST_PYTHON`, a venv folder or its interpreter), or skip.
    static func python() throws -> String {
        guard var python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON must be set") }
            throw XCTSkip("HERALD_TEST_PYTHON not set (run through `make test`)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: python, isDirectory: &isDirectory), isDirectory.boolValue {
            python += "/bin/python"
        }
        return python
    }

    /// A TCP port that was free a moment ago.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Dify's beat entries that are on by default and run as `celery` tasks: off in tests
    /// unless a test turns them on, so that no test's queues receive another's beat messages.
    static let quietBeat = [
        "ENABLE_HUMAN_INPUT_TIMEOUT_TASK": "false", "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "false",
        "ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK": "false", "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false",
        "ENABLE_CLEAN_OAUTH_ACCESS_TOKENS_TASK": "false",
    ]

    /// User plus system CPU seconds `pid` has used so far (from /proc; 0 when unreadable).
    static func cpuSeconds(_ pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Deletes every key under `prefix` (a test's own namespace), ignoring errors.
    static func deleteKeys(_ redis: RedisClient, prefix: String) {
        guard case .array(let keys)? = try? redis.command(["KEYS", prefix + "*"]) else { return }
        for k in keys { if case .string(let b) = k { _ = try? redis.command([Array("DEL".utf8), b]) } }
    }

    /// Starts the binary; output goes to `log`. Returns its pid.
    static func spawn(_ args: [String], env extra: [String: String], log: String) throws -> pid_t {
        let bin = try path()
        var environment = ProcessInfo.processInfo.environment
        environment.merge(quietBeat) { _, new in new }
        environment.merge(extra) { _, new in new }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let argv = ([bin] + args).map { strdup($0) } + [nil]
        defer {
            envp.forEach { free($0) }
            argv.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, bin, &actions, nil, argv, envp)
        guard rc == 0 else { throw XCTSkip("posix_spawn failed: \(rc)") }
        return pid
    }

    /// Waits for `pid` to exit (bounded); returns its exit status, or nil on timeout.
    static func wait(_ pid: pid_t, timeout: Double = 15) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while Date() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                if (status & 0x7F) == 0 { return (status >> 8) & 0xFF }
                return 128 + (status & 0x7F)
            }
            usleep(10_000)
        }
        return nil
    }

    /// Runs the binary to completion.
    static func run(_ args: [String], env extra: [String: String] = [:]) throws -> BinaryResult {
        let log = NSTemporaryDirectory() + "herald-e2e-\(UUID().uuidString)"
        let pid = try spawn(args, env: extra, log: log)
        guard let status = wait(pid, timeout: 30) else {
            kill(pid, SIGKILL)
            _ = wait(pid)
            XCTFail("herald \(args.joined(separator: " ")) did not finish")
            return BinaryResult(status: -1, stdout: "", stderr: "")
        }
        let out = (try? String(contentsOfFile: log + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: log)
        try? FileManager.default.removeItem(atPath: log + ".out")
        return BinaryResult(status: status, stdout: out, stderr: err)
    }
}

/// Polls until `condition` holds or the deadline passes.
func eventually(
    _ what: String, timeout: Double = 15, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if (try? condition()) == true { return }
        usleep(20_000)
    }
    XCTFail("timed out after \(timeout)s waiting for: \(what)", file: file, line: line)
}

/// One sample of a Prometheus text exposition (summed over matching label sets).
func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double {
    var total = 0.0
    for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
        let matches = labels.allSatisfy { line.contains("\($0.key)=\"\($0.value)\"") }
        if matches, let v = line.split(separator: " ").last.flatMap({ Double($0) }) { total += v }
    }
    return total
}

/// A database of its own on the test server, dropped by `drop()` (call it in a defer): empty, or a
/// copy of Dify's real schema in the test pass on it (Tests/Support/run-tests.sh, pass 2).
struct PrivateDatabase {
    let name: String
    /// Connection parameters of the private database.
    let info: PostgresConnInfo
    private let admin: PostgresConnection

    /// Creates `<prefix>_<random>`.
    init(prefix: String) throws {
        let (_, dbURL) = try Binary.servers()
        var info = try PostgresConnInfo(dbURL)
        info["dbname"] = "postgres"
        admin = try PostgresConnection(connInfo: info)
        name = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(10)
        if Binary.env["HERALD_TEST_SCHEMA"] == "dify", let template = Binary.env["HERALD_TEST_DIFY_TEMPLATE"] {
            try admin.query("CREATE DATABASE \(name) TEMPLATE \(template)")
        } else {
            try admin.query("CREATE DATABASE \(name)")
        }
        info["dbname"] = name
        self.info = info
    }

    /// The `HERALD_DATABASE_URL` value (libpq key/value form).
    var url: String { info.pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ") }

    func drop() {
        _ = try? admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name])
        _ = try? admin.query("DROP DATABASE IF EXISTS \(name)")
    }
}

/// The real Celery worker of Tests/Support/celery_worker.py (Dify's task names), as a child process.
final class CeleryWorkerProcess {
    let output: URL
    let log: URL
    private let dir: URL
    private let process = Process()
    private let logHandle: FileHandle

    init(python: String, broker: String, keyPrefix: String, queues: [String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/celery_worker.py").path
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-e2e-worker-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        output = dir.appendingPathComponent("ran.jsonl")
        log = dir.appendingPathComponent("worker.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        logHandle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            script, "--broker", broker, "--key-prefix", keyPrefix, "--output", output.path,
            "--queues", queues.joined(separator: ","),
        ]
        process.standardOutput = logHandle
        process.standardError = logHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    func records() -> [[String: Any]] {
        guard let data = try? Data(contentsOf: output) else { return [] }
        return data.split(separator: 0x0A).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func stop() {
        process.terminate()
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? logHandle.close()
        try? FileManager.default.removeItem(at: dir)
    }
}
