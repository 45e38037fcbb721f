// A child process for the `retention` scenario's columns, started with posix_spawn,
// its peak resident set read from /proc/<pid>/status (VmHWM) every 20 ms until it
// exits; stdout and stderr go to temporary files that are read back when it has exited.
// Not wait4's ru_maxrss: Linux records, at exec, the high-water mark of the memory the
// process had before it, and with posix_spawn (vfork) that is the parent's, so a child
// spawned by a herald-bench that grew to 89 MB in an earlier scenario "peaks" at 89 MB.

import Foundation
import Glibc

/// A finished child process.
struct ChildResult: Sendable {
    /// The exit code, or nil when a signal ended the process.
    var exitCode: Int32?
    var signal: Int32?
    /// The child's peak resident set (VmHWM, KiB), as last sampled before it exited.
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

/// posix_spawn + a VmHWM sampler + wait4.
enum ChildProcess {
    private final class Reaped: @unchecked Sendable {
        let lock = NSLock()
        var done = false
    }

    /// Runs `executable` with `arguments` and exactly `environment`, stdin from /dev/null, stdout and
    /// stderr into temporary files read back at the end. Killed (SIGKILL) after `limit`.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String],
        limit: Duration = .seconds(1800)
    ) throws -> ChildResult {
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
        var peakKiB = 0
        while true {
            let r = wait4(pid, &status, WNOHANG, &usage)
            if r == pid { break }
            if r < 0, errno != EINTR { break }
            if let hwm = vmHWMKiB(pid) { peakKiB = max(peakKiB, hwm) }
            usleep(20_000)
        }
        let wall = BenchClock.monotonicNs() - started
        reaped.lock.lock()
        let timedOut = reaped.done
        reaped.done = true
        reaped.lock.unlock()

        let termSignal = status & 0x7f
        var result = ChildResult(
            exitCode: termSignal == 0 ? (status >> 8) & 0xff : nil, signal: termSignal == 0 ? nil : termSignal,
            maxRSSKiB: peakKiB, wallNs: wall,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
        result.timedOut = timedOut
        return result
    }

    /// `VmHWM` of a live process, in KiB; nil once it is gone.
    static func vmHWMKiB(_ pid: pid_t) -> Int? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/status"),
            let text = String(data: data, encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        // "VmHWM:\t   31234 kB"
        return line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
    }
}
