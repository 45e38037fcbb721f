// The wording of the document clean notify mail in Dify's two mail languages. The
// subjects are Dify's own (mail filters match them); the body is Herald's text with the
// meaning of Dify's template: which knowledge bases lost how many documents, that
// documents unused for 30 days are disabled, and a link to re-enable them.

/// The localized strings of `DocumentCleanMail`; kept apart from the markup.
enum DocumentCleanMailTemplates {
    struct Strings: Sendable {
        var subject: String
        var title: String
        var greeting: @Sendable (String) -> String
        var intro: String
        var detail: @Sendable (String, Int) -> String
        var reenable: String
        var button: String
        var closing: String
        var signature: String
    }

    static func strings(_ language: DocumentCleanMail.Language) -> Strings {
        switch language {
        case .enUS: return english
        case .zhHans: return chinese
        }
    }

    static let english = Strings(
        subject: "Dify Knowledge base auto disable notification",
        title: "Some documents in your knowledge bases were disabled",
        greeting: { name in "Hello \(name)," },
        intro: "To keep your knowledge bases fast, documents that have not been updated or used "
            + "in the past 30 days were disabled in these knowledge bases:",
        detail: { name, count in "Knowledge base \(name): \(count) \(count == 1 ? "document" : "documents")" },
        reenable: "Nothing was deleted: you can enable them again at any time.",
        button: "Re-enable in Dify",
        closing: "Best regards,",
        signature: "The Dify team"
    )

    static let chinese = Strings(
        subject: "Dify 知识库自动禁用通知",
        title: "您知识库中的部分文档已被禁用",
        greeting: { name in "\(name)，您好：" },
        intro: "为保证知识库的性能，以下知识库中过去 30 天内未更新或未使用的文档已被禁用：",
        detail: { name, count in "知识库 \(name)：\(count) 个文档" },
        reenable: "文档并未被删除，您可以随时重新启用它们。",
        button: "在 Dify 中重新启用",
        closing: "此致",
        signature: "Dify 团队"
    )
}
