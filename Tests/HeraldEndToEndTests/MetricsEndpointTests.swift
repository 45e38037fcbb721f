// The metrics and health endpoint is bounded: a request with oversized headers is refused
// without being buffered and parsed at length, and when the process runs out of descriptors the
// listener pauses instead of spinning and flooding stderr with libevent's warnings.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class MetricsEndpointTests: XCTestCase {
    /// A TCP connection to 127.0.0.1:`port`, or nil.
    private func connect(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Starts `herald run` under `sh -c 'ulimit -n N; exec herald run'`; stderr to `log`.
    private func spawnLimited(files: Int, env extra: [String: String], log: String) throws -> pid_t {
        let bin = try Binary.path()
        var environment = ProcessInfo.processInfo.environment
        environment.merge(Binary.quietBeat) { _, new in new }
        environment.merge(extra) { _, new in new }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let shell: [String] = ["/bin/sh", "-c", "ulimit -n \(files) && exec \"$0\" run", bin]
        let argv = shell.map { strdup($0) } + [nil]
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
        guard posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp) == 0 else { throw XCTSkip("posix_spawn failed") }
        return pid
    }

    func testOversizedHeadersAreRefusedAndRunningOutOfDescriptorsPausesAccepting() throws {
        let (redisURL, dbURL) = try Binary.servers()
        let port = Binary.freePort()
        let log = NSTemporaryDirectory() + "herald-metrics-\(UUID()).log"
        defer {
            try? FileManager.default.removeItem(atPath: log)
            try? FileManager.default.removeItem(atPath: log + ".out")
        }
        let pid = try spawnLimited(
            files: 64,
            env: [
                "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": dbURL, "HERALD_METRICS_ADDR": "127.0.0.1:\(port)",
                "HERALD_LOG_LEVEL": "warning",
            ], log: log)
        defer {
            kill(pid, SIGKILL)
            _ = Binary.wait(pid, timeout: 5)
        }
        try eventually("the endpoint answers", timeout: 20) {
            (try? HTTPClient.get("http://127.0.0.1:\(port)/metrics").status) == 200
        }

        // 1. A 1 MiB header: a 431 the client reads (not a reset), and a metric.
        let fd = try XCTUnwrap(connect(port))
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let head = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".utf8)
        _ = head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 64 * 1024)
        for _ in 0..<16 {
            let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { break }  // the server closed it: refused
        }
        _ = Array("\r\n\r\n".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply = [UInt8](repeating: 0, count: 512)
        let got = recv(fd, &reply, reply.count, 0)
        close(fd)
        let status =
            got > 0 ? String(decoding: reply.prefix(got), as: UTF8.self).split(separator: "\r\n").first ?? "" : ""
        XCTAssertTrue(status.contains(" 431 "), "a 1 MiB header was not refused with 431: \(status)")
        let scrape = try HTTPClient.get("http://127.0.0.1:\(port)/metrics")
        XCTAssertEqual(scrape.status, 200, "still serving")
        XCTAssertTrue(
            String(decoding: scrape.body, as: UTF8.self).contains(
                "herald_http_rejected_total{reason=\"headers_too_large\"} 1"), "the refusal is counted")

        // 2. More connections than descriptors: accepting pauses; no spin, no flood of warnings.
        let before = (try? String(contentsOfFile: log, encoding: .utf8))?.count ?? 0
        let cpuBefore = Binary.cpuSeconds(pid)
        var clients: [Int32] = []
        for _ in 0..<120 { if let c = connect(port) { clients.append(c) } }
        Thread.sleep(forTimeInterval: 3)
        let cpu = Binary.cpuSeconds(pid) - cpuBefore
        let written = ((try? String(contentsOfFile: log, encoding: .utf8))?.count ?? 0) - before
        for c in clients { close(c) }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let acceptLines = text.split(separator: "\n").filter { $0.contains("accept") }.count
        XCTAssertLessThanOrEqual(acceptLines, 5, "accept failures are logged rate-limited: \(acceptLines) lines")
        XCTAssertLessThan(written, 20_000, "stderr grew by \(written) bytes in 3 s")
        XCTAssertTrue(text.contains("accepting paused"), text.suffix(2000).description)
        try eventually("the endpoint answers again once the clients are gone", timeout: 15) {
            (try? HTTPClient.get("http://127.0.0.1:\(port)/metrics").status) == 200
        }
        print(
            "metrics endpoint: 120 connections against 64 descriptors cost \(cpu) s of CPU in 3 s, \(written) bytes of log"
        )
    }
}
