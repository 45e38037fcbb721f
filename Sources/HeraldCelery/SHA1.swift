// SHA-1 (FIPS 180-4), only so that task ids can be RFC 4122 version-5 UUIDs.
// HeraldCelery stays free of crypto packages; SHA-1 is used here as a naming
// function, never for security, and is checked against the FIPS vectors.

/// A small streaming SHA-1. Not for security: Herald uses it to derive name-based UUIDs.
public struct SHA1: Sendable {
    private var h0: UInt32 = 0x6745_2301
    private var h1: UInt32 = 0xEFCD_AB89
    private var h2: UInt32 = 0x98BA_DCFE
    private var h3: UInt32 = 0x1032_5476
    private var h4: UInt32 = 0xC3D2_E1F0
    private var block = [UInt8](repeating: 0, count: 64)
    private var blockCount = 0
    private var totalBytes: UInt64 = 0

    /// A hasher in the initial state.
    public init() {}

    /// Feeds more bytes.
    public mutating func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for byte in bytes {
            block[blockCount] = byte
            blockCount += 1
            totalBytes &+= 1
            if blockCount == 64 {
                compress()
                blockCount = 0
            }
        }
    }

    /// Pads, finishes and returns the 20-byte digest. Call it once.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        block[blockCount] = 0x80
        blockCount += 1
        if blockCount > 56 {
            for i in blockCount..<64 { block[i] = 0 }
            compress()
            blockCount = 0
        }
        for i in blockCount..<56 { block[i] = 0 }
        for i in 0..<8 { block[56 + i] = UInt8(truncatingIfNeeded: bitLength >> (56 - 8 * UInt64(i))) }
        compress()
        blockCount = 0
        var digest: [UInt8] = []
        digest.reserveCapacity(20)
        for word in [h0, h1, h2, h3, h4] {
            digest.append(UInt8(truncatingIfNeeded: word >> 24))
            digest.append(UInt8(truncatingIfNeeded: word >> 16))
            digest.append(UInt8(truncatingIfNeeded: word >> 8))
            digest.append(UInt8(truncatingIfNeeded: word))
        }
        return digest
    }

    /// The digest of `bytes` in one call.
    public static func hash<S: Sequence>(_ bytes: S) -> [UInt8] where S.Element == UInt8 {
        var hasher = SHA1()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// One 64-byte block through the 80 rounds.
    private mutating func compress() {
        var a = h0, b = h1, c = h2, d = h3, e = h4
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            block.withUnsafeBufferPointer { bytes in
                for t in 0..<16 {
                    w[t] =
                        UInt32(bytes[4 * t]) << 24 | UInt32(bytes[4 * t + 1]) << 16
                        | UInt32(bytes[4 * t + 2]) << 8 | UInt32(bytes[4 * t + 3])
                }
            }
            for t in 16..<80 {
                w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1)
            }
            for t in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch t {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = rotl(a, 5) &+ f &+ e &+ k &+ w[t]
                e = d
                d = c
                c = rotl(b, 30)
                b = a
                a = temp
            }
        }
        h0 &+= a
        h1 &+= b
        h2 &+= c
        h3 &+= d
        h4 &+= e
    }

    private func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
}
