// Mail through the HTTP APIs Dify's `MAIL_TYPE` offers besides SMTP: Resend (Dify's docker
// default; `RESEND_API_KEY`, `RESEND_API_URL`) and SendGrid (`SENDGRID_API_KEY`). One POST per
// message with the key as a bearer token; a mail counts as sent only when the provider accepted
// it (Resend 200 with an id, SendGrid 202). The key never appears in an error or a log.

import Foundation
import HeraldIO

/// Why the provider did not take a message.
public struct MailAPIError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The provider could not be reached, or timed out (worth a retry later).
        case transport
        /// The provider refused the key (401/403).
        case unauthorized
        /// The provider refused the message (4xx other than auth): retrying will not help.
        case rejected
        /// The provider failed (5xx, or an unexpected answer).
        case server
    }
    public var kind: Kind
    public var provider: String
    public var message: String
    public var description: String { "\(provider): \(kind.rawValue): \(message)" }
}

/// A Resend or SendGrid client.
public struct HTTPMailAPI: Sendable, CustomStringConvertible {
    public enum Provider: String, Sendable { case resend, sendgrid }

    public var provider: Provider
    /// The API's base URL (`RESEND_API_URL`, default https://api.resend.com;
    /// `HERALD_SENDGRID_API_URL`, default https://api.sendgrid.com).
    public var baseURL: String
    /// The API key; a secret.
    public var apiKey: String
    public var timeout: Duration = .seconds(10)

    public init(provider: Provider, baseURL: String, apiKey: String) {
        self.provider = provider
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.apiKey = apiKey
    }

    /// Without the key.
    public var description: String { "\(provider.rawValue) \(baseURL)" }

    /// The request for `message`: URL, JSON body, and the status that means accepted.
    func request(_ message: SMTPMessage) -> (url: String, body: [UInt8], accepted: Int) {
        switch provider {
        case .resend:
            // Resend's /emails, as Dify's resend SDK calls it: from, to, subject, html (and text).
            let body: [String: Any] = [
                "from": message.from.description, "to": message.to.map(\.address), "subject": message.subject,
                "html": message.html, "text": message.text,
            ]
            return (baseURL + "/emails", Self.json(body), 200)
        case .sendgrid:
            // SendGrid's v3 mail/send, as Dify's sendgrid SDK builds it.
            var from: [String: Any] = ["email": message.from.address]
            if let name = message.from.displayName { from["name"] = name }
            let body: [String: Any] = [
                "personalizations": [["to": message.to.map { ["email": $0.address] }]],
                "from": from, "subject": message.subject,
                "content": [
                    ["type": "text/plain", "value": message.text], ["type": "text/html", "value": message.html],
                ],
            ]
            return (baseURL + "/v3/mail/send", Self.json(body), 202)
        }
    }

    /// Sends `message`; returns when the provider accepted it.
    public func send(_ message: SMTPMessage) throws(MailAPIError) {
        let (url, body, accepted) = request(message)
        let headers = ["Authorization: Bearer \(apiKey)", "Content-Type: application/json"]
        let response: (status: Int, body: [UInt8])
        do { response = try HTTPClient.post(url, body: body, headers: headers, timeout: timeout) } catch {
            throw MailAPIError(kind: .transport, provider: provider.rawValue, message: redacted("\(error)"))
        }
        let answer = redacted(String(decoding: response.body.prefix(300), as: UTF8.self))
        switch response.status {
        case accepted:
            return
        case 401, 403:
            throw MailAPIError(
                kind: .unauthorized, provider: provider.rawValue, message: "HTTP \(response.status): \(answer)")
        case 400..<500:
            throw MailAPIError(
                kind: .rejected, provider: provider.rawValue, message: "HTTP \(response.status): \(answer)")
        default:
            throw MailAPIError(
                kind: .server, provider: provider.rawValue, message: "HTTP \(response.status): \(answer)")
        }
    }

    private func redacted(_ text: String) -> String {
        apiKey.isEmpty ? text : text.replacingOccurrences(of: apiKey, with: "***")
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }
}
