// The document clean notify mail: the pure rendering (Dify's subjects, language choice,
// HTML escaping of every field, the console URL) and both language variants delivered
// through the real SMTP sink and decoded by Python's email package.

import Foundation
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

final class DocumentCleanMailTests: XCTestCase {
    let fields = DocumentCleanMail.Fields(
        userName: "owner@example.com",
        datasets: [.init(name: "Product docs", disabledDocuments: 3), .init(name: "FAQ", disabledDocuments: 1)],
        consoleWebURL: "https://console.example.com")

    func testDifySubjectsAndLanguageChoice() {
        XCTAssertEqual(DocumentCleanMail.subject(.enUS), "Dify Knowledge base auto disable notification")
        XCTAssertEqual(DocumentCleanMail.subject(.zhHans), "Dify 知识库自动禁用通知")
        XCTAssertEqual(DocumentCleanMail.Language(interfaceLanguage: "zh-Hans"), .zhHans)
        for other in ["en-US", "zh-Hant", "ja-JP", "", nil] as [String?] {
            XCTAssertEqual(DocumentCleanMail.Language(interfaceLanguage: other), .enUS, "\(String(describing: other))")
        }
    }

    func testBothVariantsCarryEveryField() {
        let en = DocumentCleanMail.render(.enUS, fields)
        XCTAssertTrue(en.text.contains("Hello owner@example.com,"), en.text)
        XCTAssertTrue(en.text.contains("Knowledge base Product docs: 3 documents"), en.text)
        XCTAssertTrue(en.text.contains("Knowledge base FAQ: 1 document\n"), en.text)
        XCTAssertTrue(en.text.contains("https://console.example.com/datasets"), en.text)
        XCTAssertTrue(en.text.contains("30 days"), en.text)
        XCTAssertTrue(
            en.html.contains("<li style=\"margin:0 0 4px 0;\">Knowledge base Product docs: 3 documents</li>"), en.html)
        XCTAssertTrue(en.html.contains("href=\"https://console.example.com/datasets\""), en.html)
        XCTAssertTrue(en.html.contains("<html lang=\"en-US\">"))

        let zh = DocumentCleanMail.render(.zhHans, fields)
        XCTAssertTrue(zh.text.contains("owner@example.com，您好："), zh.text)
        XCTAssertTrue(zh.text.contains("知识库 Product docs：3 个文档"), zh.text)
        XCTAssertTrue(zh.text.contains("知识库 FAQ：1 个文档"), zh.text)
        XCTAssertTrue(zh.text.contains("30 天"), zh.text)
        XCTAssertTrue(zh.html.contains("href=\"https://console.example.com/datasets\""), zh.html)
        XCTAssertTrue(zh.html.contains("在 Dify 中重新启用"), zh.html)
    }

    func testEveryFieldIsEscapedInHTML() {
        let hostile = DocumentCleanMail.Fields(
            userName: "<b>boss</b> & \"co\"",
            datasets: [.init(name: "<script>alert('x')</script>", disabledDocuments: 2)],
            consoleWebURL: "https://c.example.com/?a=1&b=\"2\"/")
        for language in DocumentCleanMail.Language.allCases {
            let html = DocumentCleanMail.render(language, hostile).html
            XCTAssertFalse(html.contains("<script>"), html)
            XCTAssertFalse(html.contains("<b>boss"), html)
            XCTAssertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), html)
            XCTAssertTrue(html.contains("&lt;b&gt;boss&lt;/b&gt; &amp; &quot;co&quot;"), html)
            XCTAssertTrue(html.contains("href=\"https://c.example.com/?a=1&amp;b=&quot;2&quot;/datasets\""), html)
            // The text part is not HTML: it keeps the fields as they are.
            XCTAssertTrue(DocumentCleanMail.render(language, hostile).text.contains("<script>alert('x')</script>"))
        }
    }

    func testConsoleURLWithoutDoubledSlash() {
        XCTAssertEqual(
            DocumentCleanMail.Fields(userName: "u", datasets: [], consoleWebURL: "https://c.example.com/").url,
            "https://c.example.com/datasets")
        XCTAssertEqual(DocumentCleanMail.Fields(userName: "u", datasets: [], consoleWebURL: "").url, "/datasets")
    }

    /// Both variants through a real SMTP server: subjects decode to Dify's, parts to the rendering.
    func testBothLanguagesArriveIntact() throws {
        let sink = try SMTPSink()
        addTeardownBlock { sink.stop() }
        let env = [
            "MAIL_TYPE": "smtp", "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": "\(sink.port)",
            "MAIL_DEFAULT_SEND_FROM": "Dify <no-reply@example.com>",
        ]
        let transport = try XCTUnwrap(
            MailSettings.load(from: env).transport(requiredBy: "mail_clean_document_notify_task"))
        var fields = self.fields
        fields.datasets.append(.init(name: "Ünïcode 知识库 & <tags>", disabledDocuments: 7))
        for language in DocumentCleanMail.Language.allCases {
            let content = DocumentCleanMail.render(language, fields)
            let message = try SMTPMessage(
                from: transport.from, to: [SMTPMessage.Address(fields.userName)],
                subject: content.subject, text: content.text, html: content.html)
            try transport.client!.send(message)
        }
        let got = try sink.messages()
        XCTAssertEqual(got.count, 2)
        for (language, mail) in zip(DocumentCleanMail.Language.allCases, got) {
            let content = DocumentCleanMail.render(language, fields)
            XCTAssertEqual(mail.rcptTos, ["owner@example.com"])
            XCTAssertEqual(mail.mailFrom, "no-reply@example.com")
            XCTAssertEqual(mail.headers["From"], "Dify <no-reply@example.com>")
            XCTAssertEqual(mail.headers["Subject"], DocumentCleanMail.subject(language))
            XCTAssertEqual(mail.parts.map(\.contentType), ["text/plain", "text/html"])
            XCTAssertEqual(SMTPClientTests.lf(mail.parts[0].body), content.text)
            XCTAssertEqual(SMTPClientTests.lf(mail.parts[1].body), content.html)
            XCTAssertTrue(mail.parts[1].body.contains("Ünïcode 知识库 &amp; &lt;tags&gt;"), mail.parts[1].body)
        }
    }
}

final class MailSettingsTests: XCTestCase {
    func load(_ env: [String: String]) throws -> MailSettings { try MailSettings.load(from: env) }

    func assertRefused(_ env: [String: String], key: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(env), file: file, line: line) { error in
            XCTAssertEqual((error as? SettingsError)?.key, key, "\(error)", file: file, line: line)
        }
    }

    func testDefaultsAndTLSModes() throws {
        XCTAssertFalse(try load([:]).isEnabled)
        XCTAssertNil(try load([:]).transport(requiredBy: "t"), "mail off: the task does nothing")
        let base = ["MAIL_TYPE": "smtp", "SMTP_SERVER": "mail.example.com", "MAIL_DEFAULT_SEND_FROM": "a@example.com"]
        let plain = try XCTUnwrap(load(base).smtp)
        XCTAssertEqual(plain.port, 465)
        XCTAssertEqual(plain.security, .none)
        XCTAssertTrue(plain.verifyPeer)
        XCTAssertEqual(plain.url, "smtp://mail.example.com:465")
        var env = base
        env["SMTP_USE_TLS"] = "true"
        XCTAssertEqual(try load(env).smtp?.security, .implicitTLS)
        env["SMTP_OPPORTUNISTIC_TLS"] = "true"
        env["SMTP_PORT"] = "587"
        let starttls = try XCTUnwrap(load(env).smtp)
        XCTAssertEqual(starttls.security, .startTLS)
        XCTAssertEqual(starttls.url, "smtp://mail.example.com:587")
    }

    func testBadValuesNameTheirKey() {
        let base = ["MAIL_TYPE": "smtp", "SMTP_SERVER": "mail.example.com"]
        assertRefused(["MAIL_TYPE": "pigeon"], key: "MAIL_TYPE")
        assertRefused(["MAIL_TYPE": "smtp"], key: "SMTP_SERVER")
        assertRefused(base.merging(["SMTP_PORT": "70000"]) { $1 }, key: "SMTP_PORT")
        assertRefused(base.merging(["SMTP_USE_TLS": "maybe"]) { $1 }, key: "SMTP_USE_TLS")
        assertRefused(base.merging(["SMTP_OPPORTUNISTIC_TLS": "true"]) { $1 }, key: "SMTP_OPPORTUNISTIC_TLS")
        assertRefused(base.merging(["SMTP_SERVER": "mail example"]) { $1 }, key: "SMTP_SERVER")
        assertRefused(base.merging(["MAIL_DEFAULT_SEND_FROM": "Name <broken"]) { $1 }, key: "MAIL_DEFAULT_SEND_FROM")
        assertRefused(base.merging(["SMTP_PASSWORD": "a\nb"]) { $1 }, key: "SMTP_PASSWORD")
    }

    func testHTTPTransportsNeedTheirKeyAndAMissingSenderFailsAMailTask() throws {
        for (type, key) in [("resend", "RESEND_API_KEY"), ("sendgrid", "SENDGRID_API_KEY")] {
            assertRefused(["MAIL_TYPE": type, "MAIL_DEFAULT_SEND_FROM": "a@example.com"], key: key)
            let s = try load(["MAIL_TYPE": type, "MAIL_DEFAULT_SEND_FROM": "a@example.com", key: "re_k3y"])
            XCTAssertTrue(s.isEnabled)
            let t = try XCTUnwrap(try s.transport(requiredBy: "mail_clean_document_notify_task"))
            XCTAssertNil(t.client)
            XCTAssertEqual(t.api?.provider.rawValue, type)
            XCTAssertFalse(s.redactedSummary.map(\.1).joined().contains("re_k3y"), "the key is never shown")
        }
        let resend = try load([
            "MAIL_TYPE": "resend", "MAIL_DEFAULT_SEND_FROM": "a@example.com", "RESEND_API_KEY": "k",
            "RESEND_API_URL": "http://127.0.0.1:9/",
        ])
        XCTAssertEqual(resend.api?.baseURL, "http://127.0.0.1:9")
        let noSender = try load(["MAIL_TYPE": "smtp", "SMTP_SERVER": "mail.example.com"])
        XCTAssertThrowsError(try noSender.transport(requiredBy: "t")) { error in
            XCTAssertEqual((error as? SettingsError)?.key, "MAIL_DEFAULT_SEND_FROM")
        }
    }

    /// Resend and SendGrid against a local stand-in of their APIs: the request Dify's SDKs send, the
    /// key as a bearer token, success only on the provider's acceptance, and the key never in an error.
    func testResendAndSendGridDeliverThroughTheirAPIs() throws {
        let python = try FakeBillingServer.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_mail_api.py").path
        let dir = NSTemporaryDirectory() + "herald-mail-api-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var pid: pid_t = 0
        let argv = [
            python, script, "--key", "re_s3cret", "--out", dir + "/requests.jsonl", "--port-file", dir + "/port",
        ]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, python, nil, nil, cArgs, environ), 0)
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        var port = ""
        try waitUntil("the stand-in listens") {
            port = (try? String(contentsOfFile: dir + "/port", encoding: .utf8)) ?? ""
            return !port.isEmpty
        }
        let message = try SMTPMessage(
            from: SMTPMessage.Address.parse("Dify <no-reply@example.com>"),
            to: [SMTPMessage.Address("owner@example.com")],
            subject: "Dify Knowledge base auto disable notification", text: "text body", html: "<p>html body</p>")
        for provider in [HTTPMailAPI.Provider.resend, .sendgrid] {
            let api = HTTPMailAPI(provider: provider, baseURL: "http://127.0.0.1:\(port)/", apiKey: "re_s3cret")
            try api.send(message)
            let wrong = HTTPMailAPI(provider: provider, baseURL: "http://127.0.0.1:\(port)", apiKey: "re_wrong_key")
            XCTAssertThrowsError(try wrong.send(message)) { error in
                XCTAssertEqual((error as? MailAPIError)?.kind, .unauthorized, "\(error)")
                XCTAssertFalse("\(error)".contains("re_wrong_key"))
            }
        }
        let lines = try String(contentsOfFile: dir + "/requests.jsonl", encoding: .utf8).split(separator: "\n")
        let requests = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(requests.count, 4)
        let resend = try XCTUnwrap(requests.first { $0["path"] as? String == "/emails" })
        XCTAssertEqual(resend["authorization"] as? String, "Bearer re_s3cret")
        let rb = try XCTUnwrap(resend["body"] as? [String: Any])
        XCTAssertEqual(rb["from"] as? String, "Dify <no-reply@example.com>")
        XCTAssertEqual(rb["to"] as? [String], ["owner@example.com"])
        XCTAssertEqual(rb["subject"] as? String, "Dify Knowledge base auto disable notification")
        XCTAssertEqual(rb["html"] as? String, "<p>html body</p>")
        let sendgrid = try XCTUnwrap(requests.first { $0["path"] as? String == "/v3/mail/send" })
        let sb = try XCTUnwrap(sendgrid["body"] as? [String: Any])
        XCTAssertEqual((sb["from"] as? [String: Any])?["email"] as? String, "no-reply@example.com")
        XCTAssertEqual((sb["from"] as? [String: Any])?["name"] as? String, "Dify")
        let to = ((sb["personalizations"] as? [[String: Any]])?.first?["to"] as? [[String: Any]])?.first?["email"]
        XCTAssertEqual(to as? String, "owner@example.com")
        // Unreachable: a transport error (the mail breaker counts it; the logs stay unnotified).
        let down = HTTPMailAPI(provider: .resend, baseURL: "http://127.0.0.1:1", apiKey: "re_s3cret")
        XCTAssertThrowsError(try down.send(message)) { XCTAssertEqual(($0 as? MailAPIError)?.kind, .transport) }
    }

    func testThePasswordIsNeverShown() throws {
        let s = try load([
            "MAIL_TYPE": "smtp", "SMTP_SERVER": "mail.example.com", "SMTP_USERNAME": "u",
            "SMTP_PASSWORD": "hunter2-secret", "MAIL_DEFAULT_SEND_FROM": "Dify <a@example.com>",
        ])
        XCTAssertEqual(s.smtp?.logsIn, true)
        let summary = s.redactedSummary.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        XCTAssertFalse(summary.contains("hunter2"), summary)
        XCTAssertTrue(summary.contains("user=u"), summary)
        XCTAssertFalse("\(String(describing: s.smtp))".contains("hunter2"))
    }
}
