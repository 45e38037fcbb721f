// The "document clean notify" mail that Dify's `mail_clean_document_notify_task` sends
// to a workspace owner when documents of unused knowledge bases were disabled: a pure
// function from (language, fields) to (subject, text, HTML). Every field is HTML-escaped;
// the wording lives in DocumentCleanMailTemplates.swift.

/// Dify's `DOCUMENT_CLEAN_NOTIFY` mail.
public enum DocumentCleanMail {
    /// The two languages Dify has mail templates in.
    public enum Language: String, Sendable, Equatable, CaseIterable {
        case enUS = "en-US"
        case zhHans = "zh-Hans"

        /// Dify's `EmailLanguage.from_language_code`: `zh-Hans` picks Chinese, anything else
        /// (nil, `ja-JP`, `zh-Hant` …) falls back to English.
        public init(interfaceLanguage: String?) {
            self = interfaceLanguage == "zh-Hans" ? .zhHans : .enUS
        }
    }

    /// One knowledge base and how many of its documents were disabled.
    public struct Dataset: Sendable, Equatable {
        public var name: String
        public var disabledDocuments: Int

        public init(name: String, disabledDocuments: Int) {
            self.name = name
            self.disabledDocuments = disabledDocuments
        }
    }

    /// What Dify's template is filled with.
    public struct Fields: Sendable, Equatable {
        /// The greeting's name (`userName`); Dify passes the owner's e-mail address.
        public var userName: String
        /// The disabled-document counts per knowledge base (`knowledge_details`).
        public var datasets: [Dataset]
        /// `CONSOLE_WEB_URL`, the console's base URL.
        public var consoleWebURL: String

        public init(userName: String, datasets: [Dataset], consoleWebURL: String) {
            self.userName = userName
            self.datasets = datasets
            self.consoleWebURL = consoleWebURL
        }

        /// The button's target (`url`): `CONSOLE_WEB_URL + "/datasets"`, without a doubled slash.
        public var url: String {
            var base = Substring(consoleWebURL)
            while base.hasSuffix("/") { base.removeLast() }
            return base + "/datasets"
        }
    }

    /// A rendered mail.
    public struct Content: Sendable, Equatable {
        public var subject: String
        public var text: String
        public var html: String
    }

    /// Dify's subject line for `language` (its exact wording, so filters keep working).
    public static func subject(_ language: Language) -> String {
        DocumentCleanMailTemplates.strings(language).subject
    }

    /// One line of the list, e.g. `Knowledge base Docs: 3 documents`, unescaped.
    public static func detailLine(_ language: Language, _ dataset: Dataset) -> String {
        DocumentCleanMailTemplates.strings(language).detail(dataset.name, dataset.disabledDocuments)
    }

    /// Renders the mail; text and HTML carry the same content.
    public static func render(_ language: Language, _ fields: Fields) -> Content {
        let s = DocumentCleanMailTemplates.strings(language)
        let lines = fields.datasets.map { detailLine(language, $0) }
        let url = fields.url

        var text = s.greeting(fields.userName) + "\n\n" + s.intro + "\n\n"
        for line in lines { text += "- " + line + "\n" }
        text += "\n" + s.reenable + "\n" + s.button + ": " + url + "\n\n" + s.closing + "\n" + s.signature + "\n"

        let e = htmlEscape
        var items = ""
        for line in lines {
            items += "        <li style=\"margin:0 0 4px 0;\">\(e(line))</li>\n"
        }
        let html = """
            <!DOCTYPE html>
            <html lang="\(language.rawValue)">
            <head>
              <meta charset="utf-8">
              <meta name="viewport" content="width=device-width, initial-scale=1.0">
              <title>\(e(s.title))</title>
            </head>
            <body style="margin:0;padding:0;background:#eef0f3;font-family:Arial,Helvetica,sans-serif;color:#354052;">
              <div style="max-width:504px;margin:32px auto;padding:32px 40px;background:#ffffff;border-radius:12px;">
                <h1 style="margin:0 0 16px 0;font-size:22px;color:#101828;">\(e(s.title))</h1>
                <p style="margin:0 0 12px 0;font-weight:bold;">\(e(s.greeting(fields.userName)))</p>
                <p style="margin:0 0 12px 0;">\(e(s.intro))</p>
                <ul style="margin:0 0 20px 0;padding:16px 24px;background:#f2f4f7;border-radius:12px;list-style:none;">
            \(items)    </ul>
                <p style="margin:0 0 12px 0;">\(e(s.reenable))</p>
                <p style="margin:0 0 32px 0;text-align:center;">
                  <a href="\(e(url))" style="display:inline-block;padding:8px 16px;background:#155aef;color:#ffffff;text-decoration:none;border-radius:8px;">\(e(s.button))</a>
                </p>
                <p style="margin:0 0 4px 0;">\(e(s.closing))</p>
                <p style="margin:0;">\(e(s.signature))</p>
              </div>
            </body>
            </html>

            """
        return Content(subject: s.subject, text: text, html: html)
    }

    /// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
    public static func htmlEscape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
