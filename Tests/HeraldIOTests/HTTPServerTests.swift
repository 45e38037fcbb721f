// The metrics endpoint's own HTTP server, over real sockets: what it answers, and its bounds.
// A peer that trickles its request is cut off when the connection's time runs out, headers
// over 16 KiB get a 431 the client can read, and connections past the cap wait in the
// backlog until one closes. (Nothing here asserts a duration: waits only bound the test.)

import Foundation
import Glibc
import HeraldIO
import XCTest

final class HTTPServerTests: XCTestCase {
    private var loop: EventLoop!
    private var server: HTTPServer!
    private var rejected: [HTTPServer.Rejection] = []

    override func tearDown() {
        if let loop {
            loop.sync { self.server?.close() }
            server = nil
            loop.stop()
            loop.waitUntilStopped()
        }
        loop = nil
        super.tearDown()
    }

    private func start(maxConnections: Int = 64, requestTimeout: Duration = .seconds(10)) throws {
        loop = try EventLoop()
        loop.start(name: "http-test")
        let made: Result<HTTPServer, IOError> = loop.sync {
            Result { () throws(IOError) -> HTTPServer in
                let s = try HTTPServer(
                    loop: self.loop, host: "127.0.0.1", port: 0, maxConnections: maxConnections,
                    requestTimeout: requestTimeout
                ) { method, path in
                    HTTPResponse(status: 200, contentType: "text/plain", text: "\(method) \(path)\n")
                }
                s.onRejected = { reason, _ in self.rejected.append(reason) }
                return s
            }
        }
        server = try made.get()
    }

    private func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(server.port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw XCTSkip("cannot connect") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    @discardableResult
    private func send(_ fd: Int32, _ text: String) -> Int {
        Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes (or the receive timeout), as text.
    private func readAll(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf.prefix(n)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func exchange(_ request: String) throws -> String {
        let fd = try connect()
        defer { close(fd) }
        send(fd, request)
        return readAll(fd)
    }

    func testAnswersGETAndHEADAndRefusesTheRest() throws {
        try start()
        let get = try exchange("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertTrue(get.hasPrefix("HTTP/1.1 200 OK\r\n"), get)
        XCTAssertTrue(get.contains("Connection: close\r\n"), get)
        XCTAssertTrue(get.contains("Content-Length: 13\r\n"), get)
        XCTAssertTrue(get.hasSuffix("\r\n\r\nGET /metrics\n"), get)
        let head = try exchange("HEAD /healthz HTTP/1.0\n\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"), head)
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), "HEAD has no body: \(head)")
        let absolute = try exchange("GET http://h:1/healthz HTTP/1.1\r\n\r\n")
        XCTAssertTrue(absolute.hasSuffix("GET /healthz\n"), absolute)
        let post = try exchange("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertTrue(post.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"), post)
        XCTAssertTrue(post.contains("Allow: GET, HEAD\r\n"), post)
        let garbage = try exchange("\u{16}\u{3}\u{1}hello\r\n\r\n")
        XCTAssertTrue(garbage.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), garbage)
        // A request split over many writes is put together.
        let fd = try connect()
        for part in ["GE", "T /a", " HTTP/1.1\r", "\nHost: x\r\n", "\r", "\n"] {
            send(fd, part)
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertTrue(readAll(fd).hasSuffix("GET /a\n"))
        close(fd)
        XCTAssertEqual(loop.sync { self.rejected }, [.method, .badRequest])
    }

    func testHeadersOver16KiBGetA431TheClientCanRead() throws {
        try start()
        let fd = try connect()
        defer { close(fd) }
        send(fd, "GET /healthz HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 64 * 1024))
        let reply = readAll(fd)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply)
        XCTAssertEqual(loop.sync { self.rejected }, [.headersTooLarge])
        // A head of exactly the limit is still served.
        let line = "GET /x HTTP/1.1\r\nX: "
        let fill = String(repeating: "b", count: HTTPServer.maxHeadersSize - line.utf8.count - 4)
        XCTAssertTrue(try exchange(line + fill + "\r\n\r\n").hasPrefix("HTTP/1.1 200 OK"))
    }

    func testATricklingPeerIsCutOffWhenItsTimeRunsOut() throws {
        try start(requestTimeout: .seconds(1))
        let fd = try connect()
        defer { close(fd) }
        send(fd, "GET /metrics HTTP/1.1\r\nX-Slow: ")
        // One byte every 100 ms would keep an idle timeout at bay for ever; the total time does not.
        var cutOff = false
        for _ in 0..<100 {
            Thread.sleep(forTimeInterval: 0.1)
            if send(fd, "a") < 0 {
                cutOff = true
                break
            }
            var b: UInt8 = 0
            if recv(fd, &b, 1, Int32(MSG_DONTWAIT)) == 0 {
                cutOff = true
                break
            }
        }
        XCTAssertTrue(cutOff, "a peer sending one byte per 100 ms for 10 s was not cut off after 1 s")
        XCTAssertEqual(loop.sync { self.server.timedOut }, 1)
        XCTAssertEqual(loop.sync { self.rejected }, [.timeout])
        XCTAssertEqual(loop.sync { self.server.openConnections }, 0)
    }

    func testConnectionsPastTheCapWaitUntilOneCloses() throws {
        try start(maxConnections: 4, requestTimeout: .seconds(60))
        var idle: [Int32] = []
        for _ in 0..<4 { idle.append(try connect()) }
        try eventually("4 connections open", timeout: 10) { self.loop.sync { self.server.openConnections } == 4 }
        // The fifth completes its TCP handshake (the backlog) but is not taken while 4 are open.
        let fifth = try connect()
        defer { close(fifth) }
        send(fifth, "GET /fifth HTTP/1.1\r\n\r\n")
        var short = timeval(tv_sec: 0, tv_usec: 500_000)
        setsockopt(fifth, SOL_SOCKET, SO_RCVTIMEO, &short, socklen_t(MemoryLayout<timeval>.size))
        var b: UInt8 = 0
        XCTAssertLessThan(recv(fifth, &b, 1, 0), 0, "answered past the cap")
        XCTAssertEqual(loop.sync { self.server.openConnections }, 4)
        XCTAssertEqual(loop.sync { self.server.limitPauses }, 1)
        // One idle peer goes away: the fifth is taken and answered.
        close(idle.removeFirst())
        var long = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fifth, SOL_SOCKET, SO_RCVTIMEO, &long, socklen_t(MemoryLayout<timeval>.size))
        XCTAssertTrue(readAll(fifth).hasSuffix("GET /fifth\n"))
        for fd in idle { close(fd) }
        try eventually("all closed", timeout: 10) { self.loop.sync { self.server.openConnections } == 0 }
        // The fifth filled the fourth place again: the cap paused accepting a second time.
        XCTAssertEqual(loop.sync { self.rejected }, [.connectionLimit, .connectionLimit])
    }

    private func eventually(_ what: String, timeout: TimeInterval, _ check: () -> Bool) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if check() { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("timed out waiting for: \(what)")
    }
}
