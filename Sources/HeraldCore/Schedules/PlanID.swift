// A workflow schedule plan's id as 16 bytes instead of a 36-character String,
// so that the timer heap stays small when hundreds of thousands of plans are
// armed at once.

/// A UUID held inline (two words), parsed from and printed as canonical text.
public struct PlanID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses canonical 8-4-4-4-12 hex text (either case).
    public init?(_ text: String) {
        guard UUIDText.isValid(text) else { return nil }
        var words: [UInt64] = [0, 0]
        var nibbles = 0
        for b in text.utf8 where b != UInt8(ascii: "-") {
            let v: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = b - UInt8(ascii: "a") + 10
            default: v = b - UInt8(ascii: "A") + 10
            }
            words[nibbles / 16] = words[nibbles / 16] << 4 | UInt64(v)
            nibbles += 1
        }
        high = words[0]
        low = words[1]
    }

    public static func < (a: PlanID, b: PlanID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// Canonical lower-case text.
    public var description: String {
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, word) in [high, low].enumerated() {
            for n in 0..<16 {
                let pos = i * 16 + n
                if pos == 8 || pos == 12 || pos == 16 || pos == 20 { out.append(UInt8(ascii: "-")) }
                out.append(hex[Int((word >> UInt64(60 - n * 4)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
