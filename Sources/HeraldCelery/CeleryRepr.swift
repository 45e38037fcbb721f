// Celery puts `argsrepr`/`kwargsrepr` headers on every message: the arguments as
// `celery.utils.saferepr.saferepr(args, 1024, maxlevels=3)` renders them. Flower
// and worker logs show them. This is a port of that streaming, truncating repr
// for the values a Celery JSON message can hold, so the headers match Python's.

/// Renders task arguments as Celery's `saferepr` does (strings are quoted, not escaped).
public enum CeleryRepr {
    /// `amqp.argsrepr_maxsize` and `amqp.kwargsrepr_maxsize` in Celery 5.
    public static let defaultMaxLength = 1024
    /// `task_repr_maxlevels` default in Celery 5.
    public static let defaultMaxLevels = 3

    /// The `argsrepr` header: the positional arguments as a Python tuple, e.g. `('a',)`.
    public static func args(
        _ args: [CeleryValue], maxLength: Int = defaultMaxLength,
        maxLevels: Int = defaultMaxLevels
    ) -> String {
        var tokens: [Token] = []
        appendSequence(
            args, open: "(", close: args.count == 1 ? ",)" : ")", level: 0,
            maxLevels: maxLevels, into: &tokens)
        return render(tokens, maxLength: maxLength)
    }

    /// The `kwargsrepr` header: the keyword arguments as a Python dict, e.g. `{'k': 'v'}`.
    public static func kwargs(
        _ kwargs: [CeleryMember], maxLength: Int = defaultMaxLength,
        maxLevels: Int = defaultMaxLevels
    ) -> String {
        var tokens: [Token] = []
        append(.object(kwargs), level: 0, maxLevels: maxLevels, into: &tokens)
        return render(tokens, maxLength: maxLength)
    }

    /// What `reprstream` yields: literal punctuation, quoted text, or plain text.
    enum Token {
        /// `truncatable` false marks brackets that survive truncation; `direction` is +1 open, -1 close.
        case literal(String, truncatable: Bool, direction: Int)
        case quoted(String)
        case text(String)
    }

    static func append(_ value: CeleryValue, level: Int, maxLevels: Int, into tokens: inout [Token]) {
        switch value {
        case .null: tokens.append(.text("None"))
        case .bool(let b): tokens.append(.text(b ? "True" : "False"))
        case .int(let i): tokens.append(.text(String(i)))
        case .double(let d): tokens.append(.text(PythonFloat.repr(d)))
        case .string(let s): tokens.append(.quoted(s))
        case .array(let items):
            appendSequence(items, open: "[", close: "]", level: level, maxLevels: maxLevels, into: &tokens)
        case .object(let members):
            if maxLevels > 0 && level >= maxLevels {
                tokens.append(.literal("{...}", truncatable: false, direction: 0))
                return
            }
            tokens.append(.literal("{", truncatable: false, direction: 1))
            for (i, member) in members.enumerated() {
                tokens.append(.quoted(member.key))
                tokens.append(.literal(": ", truncatable: true, direction: 0))
                append(member.value, level: level + 1, maxLevels: maxLevels, into: &tokens)
                if i < members.count - 1 { tokens.append(.literal(", ", truncatable: true, direction: 0)) }
            }
            tokens.append(.literal("}", truncatable: false, direction: -1))
        }
    }

    static func appendSequence(
        _ items: [CeleryValue], open: String, close: String, level: Int,
        maxLevels: Int, into tokens: inout [Token]
    ) {
        if maxLevels > 0 && level >= maxLevels {
            tokens.append(.literal(open + "..." + close, truncatable: false, direction: 0))
            return
        }
        tokens.append(.literal(open, truncatable: false, direction: 1))
        for (i, item) in items.enumerated() {
            append(item, level: level + 1, maxLevels: maxLevels, into: &tokens)
            if i < items.count - 1 { tokens.append(.literal(", ", truncatable: true, direction: 0)) }
        }
        tokens.append(.literal(close, truncatable: false, direction: -1))
    }

    /// `_saferepr`'s loop: spend `maxLength` characters (Unicode code points, as Python
    /// counts), then write `, ...` and close only the brackets already opened.
    static func render(_ tokens: [Token], maxLength: Int) -> String {
        var out = ""
        var budget = maxLength
        var index = 0
        while index < tokens.count {
            let token = tokens[index]
            if budget <= 0 {
                if case .literal(let text, _, let direction) = token, direction < 0 {
                    out += text
                    index += 1
                    continue
                }
                out += ", ..."
                break
            }
            let piece: String
            switch token {
            case .literal(let text, _, _): piece = text
            case .quoted(let text): piece = "'" + truncate(text, budget).replacingAll("'", with: "\\'") + "'"
            case .text(let text): piece = truncate(text, budget)
            }
            out += piece
            budget -= piece.unicodeScalars.count
            index += 1
        }
        if index < tokens.count {
            // Dangling brackets: only closers of containers opened before the cut.
            var depth = 0
            for token in tokens[index...] {
                guard case .literal(let text, let truncatable, let direction) = token, !truncatable else { continue }
                depth += direction
                if depth < 0 {
                    depth = 0
                    out += text
                }
            }
        }
        return out
    }

    /// `celery.utils.text.truncate`: at `maxLength` or more code points, cut, drop the
    /// last partial word, and append `...`.
    static func truncate(_ text: String, _ maxLength: Int) -> String {
        guard maxLength > 0 else { return text }
        let scalars = text.unicodeScalars
        guard scalars.count >= maxLength else { return text }
        var head = String(String.UnicodeScalarView(scalars.prefix(maxLength)))
        if let space = head.unicodeScalars.lastIndex(of: " ") {
            head = String(head.unicodeScalars[..<space])
        }
        return head + "..."
    }
}

extension String {
    /// Replaces every occurrence of one code point, as Python's `str.replace` does.
    fileprivate func replacingAll(_ needle: Unicode.Scalar, with replacement: String) -> String {
        guard unicodeScalars.contains(needle) else { return self }
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if scalar == needle { out.append(contentsOf: replacement.unicodeScalars) } else { out.append(scalar) }
        }
        return String(out)
    }
}
