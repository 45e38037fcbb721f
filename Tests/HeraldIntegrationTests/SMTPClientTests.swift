// The SMTP client against a real server: Tests/Support/smtp_sink.py (aiosmtpd) started
// per test on a free port, configured through MailSettings as an operator would. Asserts
// on what the server received (envelope, headers decoded by Python's email package, both
// MIME parts) and on the typed errors for refused logins and recipients, TLS and timeouts.

import Foundation
import HeraldIO
import HeraldRuntime
import XCTest

/// smtp_sink.py as a child process: started by `init`, stopped by `stop` (and by EOF on
/// its stdin if the test process dies). Waited for with waitpid, never Process.
final class SMTPSink {
    struct Part: Decodable {
        var contentType: String
        var charset: String
        var transferEncoding: String
        var body: String
        var defects: [String]
    }

    /// One message as the server stored it.
    struct Received: Decodable {
        var mailFrom: String
        var rcptTos: [String]
        var tls: Bool
        var authenticated: Bool
        var login: String
        var helo: String
        var headers: [String: String]
        var contentType: String
        var parts: [Part]
        var defects: [String]
        var raw: String
    }

    enum TLS: String { case none, starttls, implicit }

    let dir: URL
    private(set) var port = 0
    private let pid: pid_t
    private var stdinWrite: Int32
    private var stopped = false

    var caFile: String { dir.appendingPathComponent("cert.pem").path }

    /// The venv Python (`HERALD_TEST_PYTHON`), or a skip; a failure when the harness promised it.
    static func python() throws -> String {
        let env = ProcessInfo.processInfo.environment
        guard let py = env["HERALD_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: py) else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail(
                    "HERALD_TEST_PYTHON (the venv Python with aiosmtpd) is missing although HERALD_TEST_REQUIRE_SERVERS=1"
                )
            }
            throw XCTSkip("HERALD_TEST_PYTHON not set (run through make test, or export it to .run/venv/bin/python)")
        }
        return py
    }

    init(
        user: String? = nil, password: String? = nil, refuse: [String] = [], tls: TLS = .none, echoAuth: Bool = false
    ) throws {
        let python = try Self.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Support/smtp_sink.py").standardizedFileURL.path
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var argv = [
            python, script, "--out", dir.appendingPathComponent("messages.jsonl").path,
            "--ready", dir.appendingPathComponent("ready.json").path, "--tls", tls.rawValue, "--tls-dir", dir.path,
        ]
        if let user { argv += ["--user", user, "--password", password ?? ""] }
        for r in refuse { argv += ["--refuse", r] }
        if echoAuth { argv.append("--echo-auth") }

        // stdin is a pipe whose write end only this process holds: if the test dies, the sink sees EOF.
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw XCTSkip("pipe failed: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addopen(
            &actions, 1, dir.appendingPathComponent("sink.log").path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var child: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = posix_spawn(&child, python, &actions, nil, cArgs, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw XCTSkip("posix_spawn \(python) failed: \(rc)")
        }
        pid = child
        stdinWrite = fds[1]

        var found: Int?
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, found == nil {
            if let data = try? Data(contentsOf: dir.appendingPathComponent("ready.json")),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                found = obj["port"] as? Int
                break
            }
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                stopped = true
                close(stdinWrite)
                throw SinkError.exited(log: Self.log(dir))
            }
            usleep(20_000)
        }
        guard let p = found else {
            stop()
            throw SinkError.notReady(log: Self.log(dir))
        }
        port = p
    }

    enum SinkError: Error, CustomStringConvertible {
        case exited(log: String), notReady(log: String)
        var description: String {
            switch self {
            case .exited(let log): return "smtp_sink.py exited before listening:\n\(log)"
            case .notReady(let log): return "smtp_sink.py did not listen within 20 s:\n\(log)"
            }
        }
    }

    static func log(_ dir: URL) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("sink.log"), encoding: .utf8)) ?? "(no log)"
    }

    /// Every message stored so far (the sink writes before it answers 250, so no wait is needed).
    func messages() throws -> [Received] {
        guard let text = try? String(contentsOf: dir.appendingPathComponent("messages.jsonl"), encoding: .utf8) else {
            return []
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try text.split(separator: "\n").map { try decoder.decode(Received.self, from: Data($0.utf8)) }
    }

    /// Stops the sink: SIGTERM, then SIGKILL after 5 s; always reaps it.
    func stop() {
        guard !stopped else { return }
        stopped = true
        close(stdinWrite)
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(5)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(10_000)
        }
        try? FileManager.default.removeItem(at: dir)
    }

    deinit { stop() }
}

final class SMTPClientTests: XCTestCase {
    let from = "Herald Test <herald@example.com>"

    func sink(
        user: String? = nil, password: String? = nil, refuse: [String] = [], tls: SMTPSink.TLS = .none,
        echoAuth: Bool = false
    ) throws -> SMTPSink {
        let s = try SMTPSink(user: user, password: password, refuse: refuse, tls: tls, echoAuth: echoAuth)
        addTeardownBlock { s.stop() }
        return s
    }

    /// The transport MailSettings builds from Dify's variables for `sink`.
    func transport(_ sink: SMTPSink, _ extra: [String: String] = [:]) throws -> MailSettings.Transport {
        var env = [
            "MAIL_TYPE": "smtp", "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": "\(sink.port)",
            "MAIL_DEFAULT_SEND_FROM": from, "HERALD_SMTP_CA_FILE": sink.caFile,
        ]
        env.merge(extra) { _, new in new }
        return try XCTUnwrap(MailSettings.load(from: env).transport(requiredBy: "test"))
    }

    func message(
        _ t: MailSettings.Transport, to: [String] = ["owner@example.com"], subject: String = "Hello",
        text: String = "text body", html: String = "<p>html body</p>"
    ) throws -> SMTPMessage {
        try SMTPMessage(
            from: t.from, to: to.map { try SMTPMessage.Address.parse($0) }, subject: subject, text: text, html: html)
    }

    func assertError(
        _ kind: SMTPError.Kind, code: Int? = nil, _ body: () throws -> Void,
        file: StaticString = #filePath, line: UInt = #line
    ) -> SMTPError? {
        do {
            try body()
            XCTFail("expected an SMTPError \(kind), but the send succeeded", file: file, line: line)
        } catch let e as SMTPError {
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            if let code { XCTAssertEqual(e.responseCode, code, "\(e)", file: file, line: line) }
            return e
        } catch {
            XCTFail("expected an SMTPError, got \(error)", file: file, line: line)
        }
        return nil
    }

    func testPlainDeliveryEncodesHeadersAndBothParts() throws {
        let sink = try sink()
        let t = try transport(sink, ["SMTP_LOCAL_HOSTNAME": "herald.test"])
        XCTAssertEqual(t.client!.configuration.security, .none)
        let subject = "Dify 知识库自动禁用通知 — ünïcödé 🚀 and a tail long enough to need more than one encoded word"
        let text =
            "Hello,\n.\n..two dots\ntrailing space \nline with = sign and a very long tail that has to be soft-wrapped by quoted-printable because it exceeds 76\nend"
        let html = "<p>知识库 <b>Docs</b>: 3 个文档 &amp; more</p>\n<p>" + String(repeating: "é", count: 60) + "</p>"
        let msg = try message(
            t, to: ["Zoë Owner <owner@example.com>", "second@example.com"], subject: subject, text: text, html: html)
        let receipt = try t.client!.send(msg)
        XCTAssertEqual(receipt.responseCode, 250)
        XCTAssertTrue(receipt.serverReply.contains("queued as sink-1"), receipt.serverReply)

        let got = try XCTUnwrap(sink.messages().first)
        XCTAssertEqual(got.mailFrom, "herald@example.com")
        XCTAssertEqual(got.rcptTos, ["owner@example.com", "second@example.com"])
        XCTAssertEqual(got.helo, "herald.test")
        XCTAssertFalse(got.tls)
        XCTAssertFalse(got.authenticated)
        XCTAssertEqual(got.headers["Subject"], subject)
        XCTAssertEqual(got.headers["From"], from)
        XCTAssertEqual(got.headers["To"], "Zoë Owner <owner@example.com>, second@example.com")
        XCTAssertEqual(got.headers["MIME-Version"], "1.0")
        XCTAssertNotNil(
            got.headers["Date"].flatMap { Self.rfc5322.date(from: $0) }, "Date: \(got.headers["Date"] ?? "-")")
        let id = try XCTUnwrap(got.headers["Message-ID"])
        XCTAssertTrue(id.hasPrefix("<") && id.hasSuffix("@example.com>"), id)
        XCTAssertEqual(got.contentType, "multipart/alternative")
        XCTAssertEqual(got.defects, [])
        XCTAssertEqual(got.parts.map(\.contentType), ["text/plain", "text/html"])
        for part in got.parts {
            XCTAssertEqual(part.charset, "utf-8")
            XCTAssertEqual(part.transferEncoding, "quoted-printable")
            XCTAssertEqual(part.defects, [])
        }
        XCTAssertEqual(Self.lf(got.parts[0].body), text)
        XCTAssertEqual(Self.lf(got.parts[1].body), html)
        // On the wire: CRLF only, no line longer than 78, the subject as RFC 2047 words.
        XCTAssertFalse(got.raw.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "bare LF in the message")
        for line in got.raw.components(separatedBy: "\r\n") {
            XCTAssertLessThanOrEqual(line.utf8.count, 78, line)
        }
        XCTAssertTrue(got.raw.contains("Subject: =?UTF-8?B?"), "subject not encoded")
    }

    func testLoginIsUsedAndARefusedLoginIsATypedError() throws {
        let sink = try sink(user: "mailer", password: "s3cret-pw")
        let good = try transport(sink, ["SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "s3cret-pw"])
        try good.client!.send(message(good))
        let got = try XCTUnwrap(sink.messages().first)
        XCTAssertTrue(got.authenticated)
        XCTAssertEqual(got.login, "mailer")

        let bad = try transport(sink, ["SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "wrong-pw-123"])
        let e = assertError(.loginDenied, code: 535) { try bad.client!.send(message(bad)) }
        XCTAssertFalse("\(String(describing: e))".contains("wrong-pw-123"), "the password leaked into the error")
        XCTAssertEqual(e?.serverReply.hasPrefix("535 "), true, "\(String(describing: e))")
        XCTAssertFalse(bad.client!.configuration.description.contains("wrong-pw-123"))

        // Dify logs in only when both are set: without a password the server's 530 refuses MAIL FROM.
        let none = try transport(sink, ["SMTP_USERNAME": "mailer"])
        XCTAssertFalse(none.client!.configuration.logsIn)
        _ = assertError(.senderRejected, code: 530) { try none.client!.send(message(none)) }
        XCTAssertEqual(try sink.messages().count, 1)
    }

    func testAServerThatEchoesTheAuthLineDoesNotGetTheCredentialsIntoTheError() throws {
        let sink = try sink(user: "mailer", password: "s3cret-pw", echoAuth: true)
        let bad = try transport(sink, ["SMTP_USERNAME": "mailuser", "SMTP_PASSWORD": "SmtpS3cret_3"])
        let e = assertError(.loginDenied, code: 535) { try bad.client!.send(message(bad)) }
        let text = "\(String(describing: e))"
        let plain = Data("\0mailuser\0SmtpS3cret_3".utf8).base64EncodedString()
        XCTAssertTrue(text.contains("535 5.7.8 rejected credentials: AUTH PLAIN ***"), text)
        for secret in ["SmtpS3cret_3", plain, Data("SmtpS3cret_3".utf8).base64EncodedString()] {
            XCTAssertFalse(text.contains(secret), "credentials leaked into the error: \(text)")
        }
    }

    func testARefusedRecipientFailsTheMessage() throws {
        let sink = try sink(refuse: ["nobody@example.com"])
        let t = try transport(sink)
        let e = assertError(.recipientRejected, code: 550) {
            try t.client!.send(message(t, to: ["owner@example.com", "nobody@example.com"]))
        }
        XCTAssertEqual(e?.serverReply, "550 5.1.1 <nobody@example.com>: Recipient address rejected")
        XCTAssertEqual(try sink.messages().count, 0)
    }

    func testStartTLSUpgradesBeforeLoginAndVerifiesTheCertificate() throws {
        let sink = try sink(user: "mailer", password: "pw", tls: .starttls)
        let tlsEnv = [
            "SMTP_USE_TLS": "true", "SMTP_OPPORTUNISTIC_TLS": "true", "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "pw",
        ]
        let t = try transport(sink, tlsEnv)
        XCTAssertEqual(t.client!.configuration.security, .startTLS)
        XCTAssertTrue(t.client!.configuration.url.hasPrefix("smtp://"))
        try t.client!.send(message(t))
        let got = try XCTUnwrap(sink.messages().first)
        XCTAssertTrue(got.tls)
        XCTAssertTrue(got.authenticated)

        // The self-signed certificate is refused unless trusted or verification is off.
        var untrusted = tlsEnv
        untrusted["HERALD_SMTP_CA_FILE"] = ""
        let strict = try transport(sink, untrusted)
        _ = assertError(.tls) { try strict.client!.send(message(strict)) }
        untrusted["HERALD_SMTP_TLS_VERIFY"] = "false"
        let lax = try transport(sink, untrusted)
        try lax.client!.send(message(lax))
        XCTAssertEqual(try sink.messages().count, 2)
    }

    func testImplicitTLS() throws {
        let sink = try sink(tls: .implicit)
        let t = try transport(sink, ["SMTP_USE_TLS": "true"])
        XCTAssertEqual(t.client!.configuration.security, .implicitTLS)
        XCTAssertTrue(t.client!.configuration.url.hasPrefix("smtps://"))
        try t.client!.send(message(t))
        XCTAssertEqual(try sink.messages().first?.tls, true)
    }

    func testStartTLSIsRequiredWhenConfigured() throws {
        let sink = try sink()
        let t = try transport(sink, ["SMTP_USE_TLS": "true", "SMTP_OPPORTUNISTIC_TLS": "true"])
        _ = assertError(.tls) { try t.client!.send(message(t)) }
        XCTAssertEqual(try sink.messages().count, 0)
    }

    func testUnreachableAndSilentServers() throws {
        // A port nobody listens on: refused at once.
        let closed = try Self.listeningSocket()
        close(closed.fd)
        let from = try SMTPMessage.Address.parse(from)
        let msg = try SMTPMessage(
            from: from, to: [SMTPMessage.Address("a@example.com")], subject: "s", text: "t", html: "h")
        let refused = SMTPClient(
            .init(host: "127.0.0.1", port: closed.port, connectTimeout: .seconds(2), timeout: .seconds(3)))
        _ = assertError(.connect) { try refused.send(msg) }

        // A server that accepts the connection and never greets: the timeout ends it.
        let silent = try Self.listeningSocket()
        defer { close(silent.fd) }
        let started = Date()
        let mute = SMTPClient(
            .init(host: "127.0.0.1", port: silent.port, connectTimeout: .seconds(1), timeout: .milliseconds(800)))
        _ = assertError(.timeout) { try mute.send(msg) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    // MARK: helpers

    static let rfc5322: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "EEE, d MMM yyyy HH:mm:ss Z"
        return f
    }()

    static func lf(_ s: String) -> String { s.replacingOccurrences(of: "\r\n", with: "\n") }

    /// A TCP socket listening on a free port of 127.0.0.1 that never accepts.
    static func listeningSocket() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard fd >= 0, ok else { throw XCTSkip("could not open a listening socket: errno \(errno)") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}
