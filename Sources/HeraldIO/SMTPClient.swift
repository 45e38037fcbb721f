// Sends mail over SMTP through libcurl, the way Dify's `MAIL_TYPE=smtp` does: plain,
// STARTTLS (opportunistic TLS) or implicit TLS (`smtps://`), login only when a user and
// a password are set. One blocking `curl_easy_perform` per message: callers run it off
// the event loop. Failures are typed and quote curl's message and the server's reply.

import CCurl
import CHeraldShim
import Foundation

/// How the connection is secured (Dify: `SMTP_USE_TLS`, `SMTP_OPPORTUNISTIC_TLS`).
public enum SMTPSecurity: String, Sendable, Equatable, CaseIterable {
    /// Plain SMTP; the session is never encrypted.
    case none
    /// Plain connect, then STARTTLS, which must succeed (`CURLUSESSL_ALL`).
    case startTLS = "starttls"
    /// TLS from the first byte (`smtps://`, usually port 465).
    case implicitTLS = "tls"
}

/// Why a message was not sent.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed, for callers that react differently (a refused recipient is not worth a retry).
    public enum Kind: String, Sendable, Equatable {
        /// The message or an address is malformed; nothing was sent.
        case invalidMessage
        /// The server could not be resolved or reached.
        case connect
        /// TLS could not be set up (handshake, certificate, STARTTLS refused or not offered).
        case tls
        /// The server refused the login.
        case loginDenied
        /// The server refused the sender (MAIL FROM).
        case senderRejected
        /// The server refused a recipient (RCPT TO).
        case recipientRejected
        /// The server refused the message (DATA or its end).
        case messageRejected
        /// The connect or the whole exchange took too long.
        case timeout
        /// Any other libcurl failure (see `curlCode`).
        case transfer
    }

    public var kind: Kind
    /// The failing call, e.g. `curl_easy_perform(smtp://mail.example.com:587)`.
    public var call: String
    /// curl's error text (or the validation message); never contains the password.
    public var message: String
    /// libcurl's `CURLcode`, 0 when curl was not involved.
    public var curlCode: Int
    /// The last SMTP reply code (`CURLINFO_RESPONSE_CODE`), 0 when none.
    public var responseCode: Int
    /// The server's refusal that ended the exchange, e.g. `550 5.1.1 <x@example.com>: Recipient
    /// address rejected`; "" when the last reply was not a 4xx/5xx (timeouts, TLS failures).
    public var serverReply: String

    static func invalid(field: String, reason: String) -> SMTPError {
        SMTPError(
            kind: .invalidMessage, call: "SMTPMessage(\(field))", message: reason, curlCode: 0, responseCode: 0,
            serverReply: "")
    }

    public var description: String {
        var s = "\(call): \(kind.rawValue): \(message)"
        if !serverReply.isEmpty {
            s += " (server: \(serverReply))"
        } else if responseCode != 0 {
            s += " (reply \(responseCode))"
        }
        return s
    }
}

/// A blocking SMTP client; one connection per `send`.
public struct SMTPClient: Sendable {
    /// Where and how to connect.
    public struct Configuration: Sendable, Equatable, CustomStringConvertible {
        /// The server's host name or IP address (`SMTP_SERVER`).
        public var host: String
        /// The server's port (`SMTP_PORT`).
        public var port: Int
        /// Plain, STARTTLS or implicit TLS.
        public var security: SMTPSecurity
        /// Login name; the client logs in only when it and `password` are both non-blank (as Dify does).
        public var username: String?
        /// Login password; never printed.
        public var password: String?
        /// The name sent in EHLO (`SMTP_LOCAL_HOSTNAME`); libcurl's default when nil.
        public var localHostname: String?
        /// Verify the server's certificate and host name (default true).
        public var verifyPeer: Bool
        /// A PEM file of trusted CA certificates instead of the system's.
        public var caFile: String?
        /// Bound on connecting, TLS included (Dify: 10 s).
        public var connectTimeout: Duration
        /// Bound on the whole exchange, connect included.
        public var timeout: Duration

        public init(
            host: String, port: Int, security: SMTPSecurity = .none, username: String? = nil, password: String? = nil,
            localHostname: String? = nil, verifyPeer: Bool = true, caFile: String? = nil,
            connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(60)
        ) {
            self.host = host
            self.port = port
            self.security = security
            self.username = username
            self.password = password
            self.localHostname = localHostname
            self.verifyPeer = verifyPeer
            self.caFile = caFile
            self.connectTimeout = connectTimeout
            self.timeout = timeout
        }

        /// `smtp://host:port[/ehlo-name]` or `smtps://…` (the URL path is libcurl's EHLO name).
        public var url: String {
            let scheme = security == .implicitTLS ? "smtps" : "smtp"
            let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            return "\(scheme)://\(h):\(port)" + (localHostname.map { "/" + $0 } ?? "")
        }

        /// True when both a user name and a password are set (not blank).
        public var logsIn: Bool {
            func blank(_ s: String?) -> Bool { s.map { $0.allSatisfy(\.isWhitespace) } ?? true }
            return !blank(username) && !blank(password)
        }

        /// The URL, security and user; the password is never shown.
        public var description: String {
            "\(url) security=\(security.rawValue) user=\(logsIn ? username ?? "" : "-") password=\(logsIn ? "***" : "-")"
                + (verifyPeer ? "" : " verify=off")
        }
    }

    /// What the server said when it accepted a message.
    public struct Receipt: Sendable, Equatable {
        /// The final reply code (250).
        public var responseCode: Int
        /// The final reply line, often with the server's queue id.
        public var serverReply: String
    }

    public let configuration: Configuration

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Sends `message` from `message.from` to every `message.to` address. Blocks until the
    /// server accepted it or the exchange failed; call it off the event loop.
    @discardableResult
    public func send(_ message: SMTPMessage) throws(SMTPError) -> Receipt {
        _ = curlGlobalInit
        let call = "curl_easy_perform(\(configuration.url))"
        guard let h = curl_easy_init() else {
            throw SMTPError(
                kind: .transfer, call: "curl_easy_init", message: "out of memory", curlCode: 0, responseCode: 0,
                serverReply: "")
        }
        let state = Transfer(bytes: message.rendered())
        var recipients: UnsafeMutablePointer<curl_slist>?
        defer {
            withExtendedLifetime(state) { curl_easy_cleanup(h) }
            curl_slist_free_all(recipients)
        }
        for rcpt in message.to {
            guard let list = curl_slist_append(recipients, "<\(rcpt.address)>") else {
                throw SMTPError(
                    kind: .transfer, call: "curl_slist_append", message: "out of memory", curlCode: 0, responseCode: 0,
                    serverReply: "")
            }
            recipients = list
        }
        try configure(h, state: state, from: message.from.address, recipients: recipients)

        let rc = curl_easy_perform(h)
        var code = 0
        _ = herald_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &code)
        guard rc == CURLE_OK else {
            let detail = String(cString: state.errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(rc)) : detail
            let (user, password) = (configuration.username, configuration.password)
            throw SMTPError(
                kind: Self.classify(rc, detail: detail, responseCode: code), call: call,
                message: Self.redactingCredentials(text, username: user, password: password),
                curlCode: Int(rc.rawValue), responseCode: code,
                serverReply: Self.redactingCredentials(state.errorReply, username: user, password: password))
        }
        return Receipt(responseCode: code, serverReply: state.lastReply)
    }

    /// `text` without the credentials in any form a server could quote back: the password, and the
    /// base64 of the AUTH PLAIN line, of the password and of the login (AUTH LOGIN), each as `***`.
    /// A server that echoes what the client sent then cannot put it in a task error or a log.
    public static func redactingCredentials(_ text: String, username: String?, password: String?) -> String {
        guard let password, !password.isEmpty, !text.isEmpty else { return text }
        let user = username ?? ""
        var secrets = [
            Data("\0\(user)\0\(password)".utf8).base64EncodedString(),
            Data("\(user)\0\(user)\0\(password)".utf8).base64EncodedString(),
            Data(password.utf8).base64EncodedString(), password,
        ]
        if !user.isEmpty { secrets.append(Data(user.utf8).base64EncodedString()) }
        var out = text
        for s in secrets where !s.isEmpty { out = out.replacingOccurrences(of: s, with: "***") }
        return out
    }

    private func configure(
        _ h: UnsafeMutableRawPointer, state: Transfer, from: String,
        recipients: UnsafeMutablePointer<curl_slist>?
    ) throws(SMTPError) {
        let c = configuration
        let ctx = Unmanaged.passUnretained(state).toOpaque()
        func check(_ rc: CURLcode, _ option: String) throws(SMTPError) {
            guard rc == CURLE_OK else {
                throw SMTPError(
                    kind: .transfer, call: "curl_easy_setopt(\(option))",
                    message: String(cString: curl_easy_strerror(rc)),
                    curlCode: Int(rc.rawValue), responseCode: 0, serverReply: "")
            }
        }
        try check(herald_curl_setopt_string(h, CURLOPT_URL, c.url), "URL")
        try check(herald_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(herald_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, state.errorBuffer), "ERRORBUFFER")
        try check(herald_curl_setopt_string(h, CURLOPT_MAIL_FROM, "<\(from)>"), "MAIL_FROM")
        try check(herald_curl_setopt_pointer(h, CURLOPT_MAIL_RCPT, recipients), "MAIL_RCPT")
        try check(herald_curl_setopt_long(h, CURLOPT_UPLOAD, 1), "UPLOAD")
        try check(herald_curl_setopt_pointer(h, CURLOPT_READDATA, ctx), "READDATA")
        try check(
            herald_curl_setopt_readfunction(h) { buffer, size, count, user in
                guard let buffer, let user else { return 0 }
                return Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue().read(into: buffer, max: size * count)
            }, "READFUNCTION")
        try check(herald_curl_setopt_long(h, CURLOPT_VERBOSE, 1), "VERBOSE")
        try check(herald_curl_setopt_pointer(h, CURLOPT_DEBUGDATA, ctx), "DEBUGDATA")
        try check(
            herald_curl_setopt_debugfunction(h) { _, type, data, size, user in
                // Only the server's lines: what the client sends (AUTH included) is never kept.
                guard type == CURLINFO_HEADER_IN, let data, let user else { return 0 }
                let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
                Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue().reply(text)
                return 0
            }, "DEBUGFUNCTION")
        let useSSL = c.security == .none ? CURLUSESSL_NONE : CURLUSESSL_ALL
        try check(herald_curl_setopt_long(h, CURLOPT_USE_SSL, Int(useSSL.rawValue)), "USE_SSL")
        try check(herald_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, c.verifyPeer ? 1 : 0), "SSL_VERIFYPEER")
        try check(herald_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, c.verifyPeer ? 2 : 0), "SSL_VERIFYHOST")
        if let ca = c.caFile { try check(herald_curl_setopt_string(h, CURLOPT_CAINFO, ca), "CAINFO") }
        if c.logsIn {
            try check(herald_curl_setopt_string(h, CURLOPT_USERNAME, c.username ?? ""), "USERNAME")
            try check(herald_curl_setopt_string(h, CURLOPT_PASSWORD, c.password ?? ""), "PASSWORD")
        }
        try check(
            herald_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(c.connectTimeout.milliseconds))),
            "CONNECTTIMEOUT_MS")
        try check(herald_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(c.timeout.milliseconds))), "TIMEOUT_MS")
    }

    /// Maps a libcurl failure to a kind; SMTP command failures are told apart by curl's message.
    static func classify(_ rc: CURLcode, detail: String, responseCode: Int) -> SMTPError.Kind {
        switch rc {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_PROXY: return .connect
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_LOGIN_DENIED: return .loginDenied
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_USE_SSL_FAILED, CURLE_SSL_CACERT_BADFILE,
            CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ISSUER_ERROR:
            return .tls
        default:
            if detail.hasPrefix("MAIL failed") { return .senderRejected }
            if detail.hasPrefix("RCPT failed") { return .recipientRejected }
            if detail.hasPrefix("DATA failed") { return .messageRejected }
            if rc == CURLE_WEIRD_SERVER_REPLY, responseCode >= 400 { return .messageRejected }
            return .transfer
        }
    }
}

/// libcurl's process-wide setup, done once before the first handle.
private let curlGlobalInit: Void = {
    curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

/// The state one transfer's callbacks reach through their user pointer.
private final class Transfer {
    let bytes: [UInt8]
    var offset = 0
    let errorBuffer: UnsafeMutablePointer<CChar>
    var lastReply = ""

    init(bytes: [UInt8]) {
        self.bytes = bytes
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit { errorBuffer.deallocate() }

    func read(into buffer: UnsafeMutablePointer<CChar>, max: Int) -> Int {
        let n = min(max, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBufferPointer { src in
            UnsafeMutableRawPointer(buffer).copyMemory(from: src.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }

    /// The latest reply when it is a refusal (4xx or 5xx), else "".
    var errorReply: String { lastReply.first == "4" || lastReply.first == "5" ? lastReply : "" }

    /// Keeps the server's latest reply line, except the 221 that answers the QUIT curl sends
    /// after a failure, so an error quotes the reply that caused it.
    func reply(_ text: String) {
        let line = text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        if !line.isEmpty, !line.hasPrefix("221") { lastReply = line }
    }
}
