// A child process for the `retention` scenario's columns, started with posix_spawn
// and reaped with wait4, so that the kernel's rusage gives its peak resident set
// (ru_maxrss) over its whole life; stdout and stderr go to temporary files that are
// read back when it has exited.

import Foundation
import Glibc

/// A finished child process.
struct ChildResult: Sendable {
    /// The exit code, or nil when a signal ended the process.
    var exitCode: Int32?
    var signal: Int32?
    /// ru_maxrss of the child (KiB on Linux).
    var maxRSSKiB: Int
    /// posix_spawn → wait4 returned.
    var wallNs: Int64
    var stdout: String
    var stderr: String
    var timedOut = false

    var describeExit: String {
        if timedOut { return "killed after the time limit" }
        if let s = signal { return "killed by signal \(s)" }
        return "exit status \(exitCode ?? -1)"
    }
}

/// posix_spawn + wait4 (Foundation's Process hides the rusage).
enum ChildProcess {
    private final class Reaped: @unchecked Sendable {
        let lock = NSLock()
        var done = false
    }

    /// Runs `executable` with `arguments` and exactly `environment`, stdin from /dev/null, stdout and
    /// stderr into temporary files read back at the end. Killed (SIGKILL) after `limit`.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String],
                    limit: Duration = .seconds(1800)) throws -> ChildResult {
        let base = NSTemporaryDirectory() + "herald-bench-retention-\(getpid())-\(BenchClock.monotonicNs())"
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let started = BenchClock.monotonicNs()
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw BenchFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }

        let reaped = Reaped()
        let child = pid
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(limit.nanoseconds))) {
            reaped.lock.lock()
            defer { reaped.lock.unlock() }
            if !reaped.done {
                reaped.done = true
                kill(child, SIGKILL)
            }
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
        let wall = BenchClock.monotonicNs() - started
        reaped.lock.lock()
        let timedOut = reaped.done
        reaped.done = true
        reaped.lock.unlock()

        let termSignal = status & 0x7f
        var result = ChildResult(
            exitCode: termSignal == 0 ? (status >> 8) & 0xff : nil, signal: termSignal == 0 ? nil : termSignal,
            maxRSSKiB: usage.ru_maxrss, wallNs: wall,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
        result.timedOut = timedOut
        return result
    }
}
