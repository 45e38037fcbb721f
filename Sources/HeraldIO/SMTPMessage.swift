// One mail as the bytes an SMTP server receives after DATA: RFC 5322 headers
// (non-ASCII subjects and names as RFC 2047 encoded-words), MIME
// multipart/alternative with a text and an HTML part in UTF-8 quoted-printable,
// CRLF line endings. Dot-stuffing is libcurl's job, not this file's.

import Glibc

/// A mail message: what `SMTPClient.send` delivers.
public struct SMTPMessage: Sendable, Equatable {
    /// A mailbox: an ASCII address with an optional display name.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        /// The addr-spec (`user@example.com`), used in the envelope and the header.
        public var address: String
        /// The display name (`Dify`), encoded as RFC 2047 when it is not ASCII.
        public var displayName: String?

        /// Validates `address`: ASCII, no spaces, no control characters, no `<>(),;"`.
        public init(_ address: String, displayName: String? = nil) throws(SMTPError) {
            let bytes = Array(address.utf8)
            guard !bytes.isEmpty, bytes.count <= 254 else {
                throw SMTPError.invalid(field: "address", reason: "must be 1 to 254 characters")
            }
            let forbidden = Set("<>(),;:\"\\[]".utf8)
            guard bytes.allSatisfy({ $0 > 32 && $0 < 127 && !forbidden.contains($0) }) else {
                throw SMTPError.invalid(field: "address", reason: "\"\(address)\" is not a plain ASCII address")
            }
            if let name = displayName, name.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                throw SMTPError.invalid(field: "display name", reason: "contains a line break")
            }
            self.address = address
            let trimmed = displayName.map(Self.trim)
            self.displayName = trimmed?.isEmpty == false ? trimmed : nil
        }

        /// Parses `user@example.com`, `Name <user@example.com>` or `"Name, Inc." <user@example.com>`,
        /// the forms `MAIL_DEFAULT_SEND_FROM` takes.
        public static func parse(_ text: String) throws(SMTPError) -> Address {
            let t = trim(text)
            guard let open = t.lastIndex(of: "<") else { return try Address(t) }
            guard t.hasSuffix(">") else {
                throw SMTPError.invalid(field: "address", reason: "\"\(text)\" has a \"<\" without a closing \">\"")
            }
            let addr = String(t[t.index(after: open)..<t.index(before: t.endIndex)])
            var name = trim(String(t[..<open]))
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
                var unquoted = ""
                var escaped = false
                for ch in name.dropFirst().dropLast() {
                    if !escaped && ch == "\\" { escaped = true; continue }
                    escaped = false
                    unquoted.append(ch)
                }
                name = unquoted
            }
            return try Address(addr, displayName: name)
        }

        /// The header form: `Name <addr>`, quoted or encoded as needed, or the bare address.
        var headerValue: String {
            guard let name = displayName else { return address }
            return "\(SMTPMessage.phrase(name)) <\(address)>"
        }

        /// The domain after `@` (for Message-ID), or nil.
        var domain: String? {
            guard let at = address.lastIndex(of: "@") else { return nil }
            let d = address[address.index(after: at)...]
            return d.isEmpty ? nil : String(d)
        }

        public var description: String { headerValue }

        static func trim(_ s: String) -> String {
            var sub = Substring(s)
            while let f = sub.first, f.isWhitespace { sub.removeFirst() }
            while let l = sub.last, l.isWhitespace { sub.removeLast() }
            return String(sub)
        }
    }

    /// The sender: the From header and the envelope's MAIL FROM.
    public var from: Address
    /// The recipients: the To header and the envelope's RCPT TO.
    public var to: [Address]
    /// The subject, any Unicode text without line breaks.
    public var subject: String
    /// The text/plain alternative.
    public var text: String
    /// The text/html alternative.
    public var html: String
    /// Seconds since the epoch for the Date header.
    public var date: Int
    /// The Message-ID header, including the angle brackets.
    public var messageID: String

    /// A message; `date` defaults to now, `messageID` to a random id at the sender's domain.
    public init(
        from: Address, to: [Address], subject: String, text: String, html: String,
        date: Int? = nil, messageID: String? = nil
    ) throws(SMTPError) {
        guard !to.isEmpty else { throw SMTPError.invalid(field: "to", reason: "no recipient") }
        guard !subject.utf8.contains(where: { $0 == 13 || $0 == 10 }) else {
            throw SMTPError.invalid(field: "subject", reason: "contains a line break")
        }
        if let id = messageID {
            guard id.hasPrefix("<"), id.hasSuffix(">"), id.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                throw SMTPError.invalid(field: "message id", reason: "expected <id@domain> in ASCII")
            }
        }
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.date = date ?? Int(time(nil))
        self.messageID = messageID ?? "<\(Self.randomHex(16)).\(self.date)@\(from.domain ?? "herald.invalid")>"
    }

    /// The message as sent after DATA: headers, a blank line, the MIME body, CRLF everywhere.
    public func rendered() -> [UInt8] {
        let boundary = "=_herald_" + Self.randomHex(12)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 2 + html.utf8.count * 2 + 1024)
        func line(_ s: String) { out.append(contentsOf: s.utf8); out.append(contentsOf: [13, 10]) }
        line(Self.fold("From", [from.headerValue]))
        line(Self.fold("To", to.map(\.headerValue), separator: ","))
        line(Self.fold("Subject", Self.unstructured(subject)))
        line("Date: " + Self.rfc5322Date(date))
        line("Message-ID: " + messageID)
        line("MIME-Version: 1.0")
        line("Auto-Submitted: auto-generated")
        line("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
        line("")
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            line("--" + boundary)
            line("Content-Type: \(type); charset=utf-8")
            line("Content-Transfer-Encoding: quoted-printable")
            line("")
            Self.quotedPrintable(Array(body.utf8), into: &out)
            line("")
        }
        line("--" + boundary + "--")
        return out
    }
}

extension SMTPMessage {
    /// A header line: `words` joined by `separator` and a space, folded (CRLF SP in place of
    /// the space) where a line would pass 78 characters.
    static func fold(_ name: String, _ words: [String], separator: String = "") -> String {
        var result = name + ":"
        var width = result.utf8.count
        for (i, word) in words.enumerated() {
            if i > 0 {
                result += separator
                width += separator.utf8.count
            }
            if i > 0, !word.isEmpty, width + 1 + word.utf8.count > 78 {
                result += "\r\n "
                width = 1
            } else {
                result += " "
                width += 1
            }
            result += word
            width += word.utf8.count
        }
        return result
    }

    /// Unstructured header text as foldable words: ASCII words as they are, otherwise
    /// RFC 2047 `=?UTF-8?B?…?=` words of at most 64 characters, split between characters.
    static func unstructured(_ text: String) -> [String] {
        let plain = text.utf8.allSatisfy { ($0 >= 32 && $0 < 127) || $0 == 9 } && !text.contains("=?")
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        // A word too long to fold is encoded instead, which splits it, so no line passes 78.
        if plain && words.allSatisfy({ $0.utf8.count <= 64 }) { return words.map(String.init) }
        return encodedWords(text)
    }

    /// A display name: an atom phrase as is, other ASCII quoted, anything else encoded.
    static func phrase(_ name: String) -> String {
        let atext = Set("!#$%&'*+-/=?^_`{|}~ ".utf8)
        let bytes = Array(name.utf8)
        if bytes.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || atext.contains($0) }),
            !name.contains("=?")
        {
            return name
        }
        if bytes.allSatisfy({ $0 >= 32 && $0 < 127 }) {
            var q = "\""
            for ch in name {
                if ch == "\"" || ch == "\\" { q.append("\\") }
                q.append(ch)
            }
            return q + "\""
        }
        return encodedWords(name).joined(separator: " ")
    }

    /// RFC 2047 B-encoded words, each holding whole characters and at most 39 bytes (a 64-character
    /// word), so even the first one fits a 78-character line after `Subject: `.
    static func encodedWords(_ text: String) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        for ch in text {
            let bytes = Array(String(ch).utf8)
            if !chunk.isEmpty && chunk.count + bytes.count > 39 {
                words.append("=?UTF-8?B?" + base64(chunk) + "?=")
                chunk.removeAll()
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + base64(chunk) + "?=") }
        return words
    }

    /// Quoted-printable (RFC 2045 §6.7): lines of at most 76 characters, CRLF hard breaks
    /// (any of CRLF, LF or CR in the input), trailing spaces and tabs encoded.
    static func quotedPrintable(_ input: [UInt8], into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < input.count {
            if input[i] == 13 || input[i] == 10 {
                lines.append(input[start..<i])
                if input[i] == 13, i + 1 < input.count, input[i + 1] == 10 { i += 1 }
                start = i + 1
            }
            i += 1
        }
        lines.append(input[start..<input.count])
        for (n, lineBytes) in lines.enumerated() {
            if n > 0 { out.append(contentsOf: [13, 10]) }
            var column = 0
            for j in lineBytes.indices {
                let b = lineBytes[j]
                let last = j == lineBytes.index(before: lineBytes.endIndex)
                let literal = (b >= 33 && b <= 126 && b != 61) || ((b == 32 || b == 9) && !last)
                let width = literal ? 1 : 3
                if column + width > 75 {
                    out.append(contentsOf: [61, 13, 10])
                    column = 0
                }
                if literal {
                    out.append(b)
                } else {
                    out.append(contentsOf: [61, hex[Int(b >> 4)], hex[Int(b & 15)]])
                }
                column += width
            }
        }
    }

    /// `Thu, 12 Jun 2026 10:00:00 +0000`.
    static func rfc5322Date(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(tm.tm_mday) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) "
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
    }

    static func base64(_ input: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < input.count {
            let n = min(3, input.count - i)
            var v = UInt32(input[i]) << 16
            if n > 1 { v |= UInt32(input[i + 1]) << 8 }
            if n > 2 { v |= UInt32(input[i + 2]) }
            out.append(table[Int(v >> 18)])
            out.append(table[Int((v >> 12) & 63)])
            out.append(n > 1 ? table[Int((v >> 6) & 63)] : 61)
            out.append(n > 2 ? table[Int(v & 63)] : 61)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func randomHex(_ bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        var s = ""
        for _ in 0..<bytes {
            let b = UInt8.random(in: 0...255, using: &rng)
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return s
    }
}
