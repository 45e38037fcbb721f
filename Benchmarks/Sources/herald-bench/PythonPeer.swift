// Column "python peer": Tests/Support/bench_redis_subscriber.py, a redis-py
// subscriber (psycopg LISTEN for NOTIFY) that applies the same decode rules as
// EventDecoder. It runs as a child process; this type speaks its protocol
// (a ready line, an optional go line, one JSON result) and turns the result
// into a `ConsumerRun` like the in-process consumers'.

import Foundation
import HeraldCore

/// The Python reference consumer.
final class PythonPeer: BenchConsumer {
    let kind = ConsumerKind.peer
    private let python: String
    private let script: String
    private let environment: BenchEnvironment
    private let source: BenchSource
    private var process: Process?
    private var stdinPipe: Pipe?
    private var reader: LineReader?
    private var expected = 0
    private var mode = ConsumeMode.latency
    /// The peer's idle timeout; it exits on its own after this long without a message.
    private let idleSeconds = 4

    init(python: String, script: String, environment: BenchEnvironment, source: BenchSource) {
        self.python = python
        self.script = script
        self.environment = environment
        self.source = source
    }

    func start(expected: Int, mode: ConsumeMode, paused: Bool) throws {
        self.expected = expected
        self.mode = mode
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        var args = [
            script, "--channel", source == .redis ? Channels.scheduleEvents : Channels.postgresEvents,
            "--expect", String(expected), "--mode", mode.rawValue, "--idle", String(idleSeconds),
        ]
        args += source == .redis ? ["--url", environment.redisURL] : ["--postgres", environment.databaseURL]
        if paused { args.append("--pause") }
        p.arguments = args
        let out = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardInput = inp
        p.standardError = FileHandle.standardError
        try p.run()
        process = p
        stdinPipe = inp
        let r = LineReader(fd: out.fileHandleForReading.fileDescriptor)
        reader = r
        guard let line = r.line(), line.contains("\"ready\"") else {
            p.terminate()
            p.waitUntilExit()
            throw BenchFailure("python peer did not start (exit \(p.terminationStatus))")
        }
    }

    func resume() {
        stdinPipe?.fileHandleForWriting.write(Data("go\n".utf8))
    }

    func finish(idle: Duration) -> ConsumerRun {
        guard let p = process, let r = reader else { return .failed("python peer not started") }
        defer {
            process = nil
            reader = nil
            stdinPipe = nil
        }
        resume()  // harmless when not paused: the peer reads stdin only with --pause
        let text = r.rest()
        p.waitUntilExit()
        guard let line = text.split(separator: "\n").last,
            let value = try? JSONReader.parse(Array(line.utf8), maxDepth: 8)
        else { return .failed("python peer printed no result (exit \(p.terminationStatus))") }
        return convert(value)
    }

    private func convert(_ v: JSONValue) -> ConsumerRun {
        func int(_ key: String) -> Int64 {
            if case .number(let d)? = v[key] { return Int64(d) }
            return 0
        }
        var run = ConsumerRun(
            arrivals: [], accepted: Int(int("accepted")), rejected: Int(int("rejected")), duplicates: 0,
            firstNs: int("first_ns"), lastNs: int("last_ns"), disconnects: Int(int("disconnects")), error: nil,
            note: nil)
        if case .string(let e)? = v["error"] { run.error = e }
        if case .string(let client)? = v["client"], case .string(let parser)? = v["parser"] {
            run.note = "\(client), \(parser) parser"
        }
        if mode == .latency, case .array(let seqs)? = v["seq"], case .array(let stamps)? = v["recv_ns"] {
            var arrivals = [Int64](repeating: 0, count: expected)
            var distinct = 0
            for (s, t) in zip(seqs, stamps) {
                guard case .number(let sd) = s, case .number(let td) = t else { continue }
                let seq = Int(sd)
                guard seq >= 0, seq < expected else { continue }
                if arrivals[seq] == 0 { distinct += 1 } else { run.duplicates += 1 }
                arrivals[seq] = Int64(td)
            }
            run.arrivals = arrivals
            run.accepted = distinct
        }
        return run
    }
}

/// Reads lines from a pipe with read(2), so a child's output can be taken line by line, then to EOF.
final class LineReader {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    /// The next line without its newline; nil at EOF.
    func line() -> String? {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let l = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeSubrange(...i)
                return l
            }
            guard fill() else {
                if buffer.isEmpty { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
        }
    }

    /// Everything until EOF.
    func rest() -> String {
        while fill() {}
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n > 0 {
                buffer.append(contentsOf: chunk[..<n])
                return true
            }
            if n < 0, errno == EINTR { continue }
            return false
        }
    }
}
