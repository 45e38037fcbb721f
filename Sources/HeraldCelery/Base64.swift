// Standard base64 (RFC 4648 §4, with `=` padding, no line breaks), which is what
// kombu's `body_encoding: "base64"` means. Written here so the encoder can append
// straight into the message buffer instead of going through Foundation's Data.

/// RFC 4648 base64 with padding.
public enum Base64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends the base64 form of `input` to `out`.
    public static func encode(_ input: [UInt8], into out: inout [UInt8]) {
        let start = out.count
        let produced = (input.count + 2) / 3 * 4
        out.append(contentsOf: repeatElement(UInt8(ascii: "="), count: produced))
        alphabet.withUnsafeBufferPointer { table in
            input.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    var i = 0
                    var o = start
                    let n = src.count
                    while i + 3 <= n {
                        let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2])
                        dst[o] = table[Int(v >> 18)]
                        dst[o + 1] = table[Int((v >> 12) & 0x3F)]
                        dst[o + 2] = table[Int((v >> 6) & 0x3F)]
                        dst[o + 3] = table[Int(v & 0x3F)]
                        i += 3
                        o += 4
                    }
                    // The tail: one or two bytes left; the `=` padding is already in place.
                    if n - i == 1 {
                        let v = UInt32(src[i]) << 16
                        dst[o] = table[Int(v >> 18)]
                        dst[o + 1] = table[Int((v >> 12) & 0x3F)]
                    } else if n - i == 2 {
                        let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8
                        dst[o] = table[Int(v >> 18)]
                        dst[o + 1] = table[Int((v >> 12) & 0x3F)]
                        dst[o + 2] = table[Int((v >> 6) & 0x3F)]
                    }
                }
            }
        }
    }

    /// The base64 form of `input` as a String.
    public static func encode(_ input: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(input, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded base64; nil on any character outside the alphabet or a bad length.
    public static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            var v: UInt32 = 0
            var padding = 0
            for j in 0..<4 {
                let c = input[i + j]
                if c == UInt8(ascii: "=") {
                    // Padding only in the last group, only at its end.
                    guard i + 4 == input.count, j >= 2 else { return nil }
                    padding += 1
                    v <<= 6
                    continue
                }
                guard padding == 0, let d = value(of: c) else { return nil }
                v = v << 6 | UInt32(d)
            }
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: v >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: v)) }
            i += 4
        }
        return out
    }

    private static func value(of c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
}
