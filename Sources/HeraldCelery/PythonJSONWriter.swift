// A JSON writer that produces the bytes of Python's `json.dumps(obj)` with its
// defaults (what kombu uses): `", "` and `": "` separators, `ensure_ascii=True`
// (every byte outside 0x20...0x7E escaped, astral characters as surrogate pairs,
// lower-case hex). It appends to a byte buffer with no Foundation on the hot path.

/// Appends Python-`json.dumps`-identical JSON to a byte buffer.
public struct PythonJSONWriter: Sendable {
    /// The bytes written so far.
    public var bytes: [UInt8]

    /// A writer with an empty buffer that reserves `capacity` bytes.
    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Appends `text` verbatim (for structure the caller knows is valid).
    @inlinable
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends bytes verbatim.
    @inlinable
    public mutating func raw<C: Collection>(bytes more: C) where C.Element == UInt8 {
        bytes.append(contentsOf: more)
    }

    /// Appends a decimal integer.
    public mutating func int(_ value: Int64) {
        if value >= 0 && value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        bytes.append(contentsOf: String(value).utf8)
    }

    /// Appends a quoted, escaped JSON string.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { appendEscaped($0) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends any value: objects keep their member order.
    public mutating func value(_ value: CeleryValue) {
        switch value {
        case .null: raw("null")
        case .bool(let b): if b { raw("true") } else { raw("false") }
        case .int(let i): int(i)
        case .double(let d): bytes.append(contentsOf: PythonFloat.json(d).utf8)
        case .string(let s): string(s)
        case .array(let items): array(items)
        case .object(let members): object(members)
        }
    }

    /// Appends `[a, b, …]`.
    public mutating func array(_ items: [CeleryValue]) {
        bytes.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { raw(", ") }
            value(item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Appends `{"k": v, …}` in member order.
    public mutating func object(_ members: [CeleryMember]) {
        bytes.append(UInt8(ascii: "{"))
        for (i, member) in members.enumerated() {
            if i > 0 { raw(", ") }
            string(member.key)
            raw(": ")
            value(member.value)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Escapes valid UTF-8 the way `json.dumps(..., ensure_ascii=True)` does.
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        var i = 0
        let n = utf8.count
        while i < n {
            // Copy the longest run that needs no escaping in one go.
            var j = i
            while j < n {
                let b = utf8[j]
                if b < 0x20 || b >= 0x7F || b == 0x22 || b == 0x5C { break }
                j += 1
            }
            if j > i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[i..<j])) }
            i = j
            guard i < n else { return }
            let b = utf8[i]
            switch b {
            case 0x22: raw("\\\"")
            case 0x5C: raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            case 0..<0x80: unicodeEscape(UInt32(b))
            default:
                let (scalar, length) = decodeScalar(utf8, at: i)
                if scalar >= 0x10000 {
                    let v = scalar - 0x10000
                    unicodeEscape(0xD800 | (v >> 10))
                    unicodeEscape(0xDC00 | (v & 0x3FF))
                } else {
                    unicodeEscape(scalar)
                }
                i += length
                continue
            }
            i += 1
        }
    }

    /// Decodes one multi-byte scalar of (known valid) UTF-8.
    private func decodeScalar(_ utf8: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let b0 = UInt32(utf8[i])
        if b0 < 0xE0 {
            return ((b0 & 0x1F) << 6 | UInt32(utf8[i + 1] & 0x3F), 2)
        }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(utf8[i + 1] & 0x3F) << 6 | UInt32(utf8[i + 2] & 0x3F), 3)
        }
        let s =
            (b0 & 0x07) << 18 | UInt32(utf8[i + 1] & 0x3F) << 12
            | UInt32(utf8[i + 2] & 0x3F) << 6 | UInt32(utf8[i + 3] & 0x3F)
        return (s, 4)
    }

    /// Appends `\uXXXX` with lower-case hex, as CPython does.
    private mutating func unicodeEscape(_ unit: UInt32) {
        raw("\\u")
        for shift in stride(from: 12, through: 0, by: -4) {
            bytes.append(PythonJSONWriter.hex[Int((unit >> UInt32(shift)) & 0xF)])
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)
}
