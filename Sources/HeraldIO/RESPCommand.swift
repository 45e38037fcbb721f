// A Redis command in its wire form (RESP array of bulk strings), built ahead of
// time so that sending it later is a copy into the socket buffer.

/// Builds one command's RESP bytes argument by argument.
public struct RESPCommand: Sendable {
    public private(set) var bytes: [UInt8]

    /// - Parameters:
    ///   - count: the number of arguments that will be appended (the array header).
    ///   - capacity: bytes to reserve.
    public init(count: Int, capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity + 16)
        bytes.append(UInt8(ascii: "*"))
        Self.appendDecimal(count, to: &bytes)
        bytes.append(13)
        bytes.append(10)
    }

    /// Appends one bulk-string argument.
    public mutating func append<C: Collection>(_ arg: C) where C.Element == UInt8 {
        bytes.append(UInt8(ascii: "$"))
        Self.appendDecimal(arg.count, to: &bytes)
        bytes.append(13)
        bytes.append(10)
        bytes.append(contentsOf: arg)
        bytes.append(13)
        bytes.append(10)
    }

    public mutating func append(_ arg: String) { append(arg.utf8) }

    /// The wire size of a bulk string of `n` bytes.
    public static func bulkSize(_ n: Int) -> Int { n + 5 + decimalDigits(n) }

    static func decimalDigits(_ n: Int) -> Int {
        var d = 1, v = n
        while v >= 10 {
            v /= 10
            d += 1
        }
        return d
    }

    static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        precondition(n >= 0)
        let start = out.count
        var v = n
        repeat {
            out.append(UInt8(48 + v % 10))
            v /= 10
        } while v > 0
        out[start...].reverse()
    }
}
