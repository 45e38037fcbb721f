// A small, strict JSON reader for event payloads. Events arrive at hundreds of
// thousands per second from clients we do not control, so the reader works on
// raw UTF-8 bytes, bounds nesting depth, and never traps on any input.

/// A parsed JSON value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value under `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}

/// Why a payload is not acceptable JSON.
public enum JSONError: Error, Sendable, Equatable {
    case empty
    case unexpectedByte(offset: Int)
    case unexpectedEnd
    case tooDeep(limit: Int)
    case invalidUTF8(offset: Int)
    case invalidEscape(offset: Int)
    case invalidNumber(offset: Int)
    case trailingData(offset: Int)
}

/// Parses UTF-8 JSON bytes. Depth beyond `maxDepth` is an error, not a recursion risk.
public struct JSONReader {
    public static let defaultMaxDepth = 32

    public static func parse<C: Collection>(_ bytes: C, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue
    where C.Element == UInt8 {
        // Parse in place when the bytes are contiguous (the common case), else copy once.
        var outcome: Result<JSONValue, JSONError>?
        _ = bytes.withContiguousStorageIfAvailable { buf in
            var reader = Cursor(buf: buf, maxDepth: maxDepth)
            outcome = Result { () throws(JSONError) -> JSONValue in try reader.document() }
        }
        if outcome == nil {
            let array = Array(bytes)
            array.withUnsafeBufferPointer { buf in
                var reader = Cursor(buf: buf, maxDepth: maxDepth)
                outcome = Result { () throws(JSONError) -> JSONValue in try reader.document() }
            }
        }
        return try outcome!.get()
    }

    struct Cursor {
        let buf: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var pos = 0

        init(buf: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.buf = buf
            self.maxDepth = maxDepth
        }

        mutating func document() throws(JSONError) -> JSONValue {
            skipSpace()
            if pos >= buf.count { throw .empty }
            let v = try value(depth: 0)
            skipSpace()
            if pos != buf.count { throw .trailingData(offset: pos) }
            return v
        }

        mutating func skipSpace() {
            while pos < buf.count {
                switch buf[pos] {
                case 0x20, 0x09, 0x0A, 0x0D: pos += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(JSONError) -> JSONValue {
            guard pos < buf.count else { throw .unexpectedEnd }
            switch buf[pos] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw .unexpectedByte(offset: pos)
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONError) {
            let n = word.utf8CodeUnitCount
            guard pos + n <= buf.count else { throw .unexpectedEnd }
            let w = word.utf8Start
            for i in 0..<n where buf[pos + i] != w[i] { throw .unexpectedByte(offset: pos + i) }
            pos += n
        }

        mutating func object(depth: Int) throws(JSONError) -> JSONValue {
            if depth > maxDepth { throw .tooDeep(limit: maxDepth) }
            pos += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            while true {
                skipSpace()
                guard pos < buf.count else { throw .unexpectedEnd }
                guard buf[pos] == UInt8(ascii: "\"") else { throw .unexpectedByte(offset: pos) }
                let key = try string()
                skipSpace()
                guard pos < buf.count else { throw .unexpectedEnd }
                guard buf[pos] == UInt8(ascii: ":") else { throw .unexpectedByte(offset: pos) }
                pos += 1
                skipSpace()
                members[key] = try value(depth: depth)
                skipSpace()
                guard pos < buf.count else { throw .unexpectedEnd }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
                throw .unexpectedByte(offset: pos)
            }
        }

        mutating func array(depth: Int) throws(JSONError) -> JSONValue {
            if depth > maxDepth { throw .tooDeep(limit: maxDepth) }
            pos += 1
            var items: [JSONValue] = []
            skipSpace()
            if pos < buf.count, buf[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth))
                skipSpace()
                guard pos < buf.count else { throw .unexpectedEnd }
                if buf[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if buf[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw .unexpectedByte(offset: pos)
            }
        }

        mutating func number() throws(JSONError) -> Double {
            let start = pos
            if buf[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < buf.count else { throw .unexpectedEnd }
            if buf[pos] == UInt8(ascii: "0") {
                pos += 1
            } else if isDigit(buf[pos]) {
                while pos < buf.count, isDigit(buf[pos]) { pos += 1 }
            } else {
                throw .invalidNumber(offset: start)
            }
            if pos < buf.count, buf[pos] == UInt8(ascii: ".") {
                pos += 1
                guard pos < buf.count, isDigit(buf[pos]) else { throw .invalidNumber(offset: start) }
                while pos < buf.count, isDigit(buf[pos]) { pos += 1 }
            }
            if pos < buf.count, buf[pos] == UInt8(ascii: "e") || buf[pos] == UInt8(ascii: "E") {
                pos += 1
                if pos < buf.count, buf[pos] == UInt8(ascii: "+") || buf[pos] == UInt8(ascii: "-") { pos += 1 }
                guard pos < buf.count, isDigit(buf[pos]) else { throw .invalidNumber(offset: start) }
                while pos < buf.count, isDigit(buf[pos]) { pos += 1 }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
            guard let d = Double(text) else { throw .invalidNumber(offset: start) }
            return d
        }

        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

        mutating func string() throws(JSONError) -> String {
            pos += 1  // opening quote
            let start = pos
            // Fast path: no escapes, ASCII only.
            while pos < buf.count {
                let b = buf[pos]
                if b == UInt8(ascii: "\"") {
                    let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
                    pos += 1
                    return s
                }
                if b == UInt8(ascii: "\\") || b >= 0x80 || b < 0x20 { break }
                pos += 1
            }
            pos = start
            var out: [UInt8] = []
            while true {
                guard pos < buf.count else { throw .unexpectedEnd }
                let b = buf[pos]
                switch b {
                case UInt8(ascii: "\""):
                    pos += 1
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try escape(into: &out)
                case 0..<0x20:
                    throw .unexpectedByte(offset: pos)
                case 0x80...:
                    try utf8Sequence(into: &out)
                default:
                    out.append(b)
                    pos += 1
                }
            }
        }

        mutating func escape(into out: inout [UInt8]) throws(JSONError) {
            let at = pos
            pos += 1
            guard pos < buf.count else { throw .unexpectedEnd }
            let c = buf[pos]
            pos += 1
            switch c {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: at)
                if (0xD800...0xDBFF).contains(scalar) {
                    guard pos + 1 < buf.count, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") else {
                        throw .invalidEscape(offset: at)
                    }
                    pos += 2
                    let low = try hex4(at: at)
                    guard (0xDC00...0xDFFF).contains(low) else { throw .invalidEscape(offset: at) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw .invalidEscape(offset: at)
                }
                guard let u = Unicode.Scalar(scalar) else { throw .invalidEscape(offset: at) }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw .invalidEscape(offset: at)
            }
        }

        mutating func hex4(at: Int) throws(JSONError) -> UInt32 {
            guard pos + 4 <= buf.count else { throw .unexpectedEnd }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = buf[pos]
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw .invalidEscape(offset: at)
                }
                v = v << 4 | d
                pos += 1
            }
            return v
        }

        /// Copies one well-formed UTF-8 sequence (no overlongs, no surrogates).
        mutating func utf8Sequence(into out: inout [UInt8]) throws(JSONError) {
            let at = pos
            let b0 = buf[pos]
            let n: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: n = 1
            case 0xE0: n = 2; lowerBound = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: n = 2
            case 0xED: n = 2; upperBound = 0x9F
            case 0xF0: n = 3; lowerBound = 0x90
            case 0xF1...0xF3: n = 3
            case 0xF4: n = 3; upperBound = 0x8F
            default: throw .invalidUTF8(offset: at)
            }
            guard pos + n < buf.count else { throw .invalidUTF8(offset: at) }
            for i in 1...n {
                let b = buf[pos + i]
                let lo: UInt8 = i == 1 ? lowerBound : 0x80
                let hi: UInt8 = i == 1 ? upperBound : 0xBF
                guard b >= lo && b <= hi else { throw .invalidUTF8(offset: at) }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[pos...(pos + n)]))
            pos += n + 1
        }
    }
}

/// Writing JSON text: the one string escaper every Herald writer uses.
public enum JSONText {
    /// A JSON string literal with every control character escaped.
    public static func quote(_ v: String) -> String {
        var out = "\""
        for u in v.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
