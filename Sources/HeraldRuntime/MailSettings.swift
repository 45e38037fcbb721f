// Dify's mail settings (`MAIL_TYPE`, `MAIL_DEFAULT_SEND_FROM`, `SMTP_*`), typed and
// validated once at start with Dify's names, defaults and rules. Herald sends over SMTP
// only; `resend` and `sendgrid` load, but a task that needs mail reports them as
// unsupported. The SMTP password never appears in a message or a summary.

import HeraldIO

/// The mail transport settings Dify's `ext_mail` reads.
public struct MailSettings: Sendable {
    /// `MAIL_TYPE` values Dify knows.
    public enum MailType: String, Sendable, CaseIterable {
        case smtp, resend, sendgrid
    }

    /// What a mail-sending task gets: a client and the sender address.
    public struct Transport: Sendable {
        /// The SMTP client, for `MAIL_TYPE=smtp`.
        public var client: SMTPClient?
        /// The HTTP API client, for `MAIL_TYPE=resend` or `sendgrid`.
        public var api: HTTPMailAPI?
        /// `MAIL_DEFAULT_SEND_FROM`: the From header and the envelope sender.
        public var from: SMTPMessage.Address

        /// Sends `message` through whichever transport this is; returns once the server or the
        /// provider accepted it.
        public func send(_ message: SMTPMessage) throws {
            if let client {
                _ = try client.send(message)
            } else if let api {
                try api.send(message)
            }
        }
    }

    /// `MAIL_TYPE` (default unset): nil means mail is off, and mail tasks do nothing (Dify's `mail.is_inited()`).
    public var type: MailType?
    /// `MAIL_DEFAULT_SEND_FROM` (default unset): `addr` or `Name <addr>`.
    public var defaultSendFrom: SMTPMessage.Address?
    /// `RESEND_API_KEY`/`RESEND_API_URL` or `SENDGRID_API_KEY`, when `type` is `.resend`/`.sendgrid`.
    public var api: HTTPMailAPI?
    /// The `SMTP_*` settings, present when `type` is `.smtp`.
    public var smtp: SMTPClient.Configuration?

    /// True when `MAIL_TYPE` is set.
    public var isEnabled: Bool { type != nil }

    /// The SMTP port Dify uses when `SMTP_PORT` is unset (implicit TLS's port).
    public static let defaultSMTPPort = 465

    /// Reads and validates the mail settings from `env`.
    ///
    /// - `MAIL_TYPE`: `smtp`, `resend` or `sendgrid`; anything else is refused (as Dify refuses it).
    /// - With `smtp`: `SMTP_SERVER` is required; `SMTP_PORT` 1...65535 (default 465);
    ///   `SMTP_OPPORTUNISTIC_TLS` needs `SMTP_USE_TLS`; `SMTP_USE_TLS` alone means implicit TLS.
    /// - Herald's additions: `HERALD_SMTP_TLS_VERIFY` (default true) and `HERALD_SMTP_CA_FILE`.
    public static func load(from env: [String: String]) throws(SettingsError) -> MailSettings {
        func value(_ key: String) -> String? {
            guard let v = env[key]?.trimmed, !v.isEmpty else { return nil }
            return v
        }
        var settings = MailSettings(type: nil, defaultSendFrom: nil, smtp: nil)
        if let from = value("MAIL_DEFAULT_SEND_FROM") {
            do { settings.defaultSendFrom = try SMTPMessage.Address.parse(from) } catch {
                throw SettingsError(
                    key: "MAIL_DEFAULT_SEND_FROM", reason: "expected addr or Name <addr>: \(error.message)")
            }
        }
        guard let typeText = value("MAIL_TYPE") else { return settings }
        guard let type = MailType(rawValue: typeText.lowercased()) else {
            throw SettingsError(key: "MAIL_TYPE", reason: "expected smtp, resend or sendgrid, got \"\(typeText)\"")
        }
        settings.type = type
        switch type {
        case .resend:
            guard let key = env["RESEND_API_KEY"], !key.trimmed.isEmpty else {
                throw SettingsError(key: "RESEND_API_KEY", reason: "required when MAIL_TYPE=resend")
            }
            let url = value("RESEND_API_URL") ?? "https://api.resend.com"
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                throw SettingsError(key: "RESEND_API_URL", reason: "expected an http(s) URL, got \"\(url)\"")
            }
            settings.api = HTTPMailAPI(provider: .resend, baseURL: url, apiKey: key.trimmed)
            return settings
        case .sendgrid:
            guard let key = env["SENDGRID_API_KEY"], !key.trimmed.isEmpty else {
                throw SettingsError(key: "SENDGRID_API_KEY", reason: "required when MAIL_TYPE=sendgrid")
            }
            let url = value("HERALD_SENDGRID_API_URL") ?? "https://api.sendgrid.com"
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                throw SettingsError(key: "HERALD_SENDGRID_API_URL", reason: "expected an http(s) URL, got \"\(url)\"")
            }
            settings.api = HTTPMailAPI(provider: .sendgrid, baseURL: url, apiKey: key.trimmed)
            return settings
        case .smtp:
            break
        }

        guard let server = value("SMTP_SERVER") else {
            throw SettingsError(key: "SMTP_SERVER", reason: "required when MAIL_TYPE=smtp")
        }
        guard isHostName(server, allowColon: true) else {
            throw SettingsError(key: "SMTP_SERVER", reason: "expected a host name or IP address, got \"\(server)\"")
        }
        let port = try Settings.integer(
            value("SMTP_PORT"), key: "SMTP_PORT", default: defaultSMTPPort, range: 1...65535)
        let useTLS = try Settings.boolean(value("SMTP_USE_TLS"), key: "SMTP_USE_TLS", default: false)
        let opportunistic = try Settings.boolean(
            value("SMTP_OPPORTUNISTIC_TLS"), key: "SMTP_OPPORTUNISTIC_TLS", default: false)
        if opportunistic && !useTLS {
            throw SettingsError(
                key: "SMTP_OPPORTUNISTIC_TLS", reason: "needs SMTP_USE_TLS=true (STARTTLS is a TLS mode)")
        }
        let local = value("SMTP_LOCAL_HOSTNAME")
        if let local, !isHostName(local, allowColon: false) {
            throw SettingsError(key: "SMTP_LOCAL_HOSTNAME", reason: "expected a host name, got \"\(local)\"")
        }
        let verify = try Settings.boolean(value("HERALD_SMTP_TLS_VERIFY"), key: "HERALD_SMTP_TLS_VERIFY", default: true)
        let user = env["SMTP_USERNAME"]
        let password = env["SMTP_PASSWORD"]
        if let user, user.utf8.contains(where: { $0 < 32 }) {
            throw SettingsError(key: "SMTP_USERNAME", reason: "contains a control character")
        }
        if let password, password.utf8.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) {
            throw SettingsError(key: "SMTP_PASSWORD", reason: "contains a line break or NUL")
        }
        settings.smtp = SMTPClient.Configuration(
            host: server, port: port,
            security: useTLS ? (opportunistic ? .startTLS : .implicitTLS) : .none,
            username: user, password: password, localHostname: local,
            verifyPeer: verify, caFile: value("HERALD_SMTP_CA_FILE"))
        return settings
    }

    /// The transport for a task that sends mail (`task` names it in the error), checked at start
    /// when such a task is enabled. Nil when mail is off: the task then does nothing, as in Dify.
    /// Throws for a missing sender.
    public func transport(requiredBy task: String) throws(SettingsError) -> Transport? {
        guard let type else { return nil }
        guard let from = defaultSendFrom else {
            throw SettingsError(
                key: "MAIL_DEFAULT_SEND_FROM", reason: "required when MAIL_TYPE=\(type.rawValue) and \(task) is enabled"
            )
        }
        if let smtp { return Transport(client: SMTPClient(smtp), api: nil, from: from) }
        return Transport(client: nil, api: api, from: from)
    }

    /// What start-up logs; the password is never shown.
    public var redactedSummary: [(String, String)] {
        var out: [(String, String)] = [("mail_type", type?.rawValue ?? "off")]
        if let from = defaultSendFrom { out.append(("mail_from", from.description)) }
        if let smtp { out.append(("smtp", smtp.description)) }
        if let api { out.append(("mail_api", api.description)) }
        return out
    }

    /// Letters, digits, `.`, `-`, `_` (and `:`, `[`, `]` for IPv6 literals when allowed).
    static func isHostName(_ s: String, allowColon: Bool) -> Bool {
        s.utf8.count <= 253
            && s.utf8.allSatisfy { b in
                (b >= 48 && b <= 57) || (b | 0x20 >= 97 && b | 0x20 <= 122) || b == 46 || b == 45 || b == 95
                    || (allowColon && (b == 58 || b == 91 || b == 93))
            }
    }
}
