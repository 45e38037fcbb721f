// The UUIDs a Celery message carries: task ids (here name-based, RFC 4122
// version 5, so a re-send after a crash carries the same id) and delivery tags
// (random, version 4, as kombu makes them). Formatting is lower-case with dashes,
// which is what Python's `str(uuid.UUID)` prints and what Celery expects.

/// A 128-bit UUID with the RFC 4122 helpers Herald needs.
public struct CeleryUUID: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes in network order.
    public let bytes: [UInt8]

    /// Wraps 16 bytes; returns nil for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses the canonical `8-4-4-4-12` hexadecimal form (either case).
    public init?(_ text: String) {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var high: UInt8? = nil
        var index = 0
        for byte in text.utf8 {
            defer { index += 1 }
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let nibble = CeleryUUID.nibble(byte) else { return nil }
            if let h = high {
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard index == 36, out.count == 16 else { return nil }
        self.bytes = out
    }

    /// RFC 4122 §4.3: SHA-1 of namespace bytes then name bytes, version 5, variant 10.
    /// Equal to Python's `uuid.uuid5(namespace, name)`.
    public static func v5(namespace: CeleryUUID, name: String) -> CeleryUUID {
        var hasher = SHA1()
        hasher.update(namespace.bytes)
        hasher.update(name.utf8)
        var digest = Array(hasher.finalize().prefix(16))
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        return CeleryUUID(uncheckedBytes: digest)
    }

    /// RFC 4122 §4.4: a random UUID, version 4, as kombu uses for delivery tags.
    public static func v4() -> CeleryUUID {
        var generator = SystemRandomNumberGenerator()
        return v4(using: &generator)
    }

    /// A version-4 UUID from the given generator (tests pass a seeded one).
    public static func v4<G: RandomNumberGenerator>(using generator: inout G) -> CeleryUUID {
        var out = [UInt8](repeating: 0, count: 16)
        let a = generator.next() as UInt64
        let b = generator.next() as UInt64
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i)))
            out[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i)))
        }
        out[6] = (out[6] & 0x0F) | 0x40
        out[8] = (out[8] & 0x3F) | 0x80
        return CeleryUUID(uncheckedBytes: out)
    }

    /// RFC 4122 Appendix C: the DNS namespace `6ba7b810-9dad-11d1-80b4-00c04fd430c8`.
    public static let dnsNamespace = CeleryUUID(uncheckedBytes: [
        0x6B, 0xA7, 0xB8, 0x10, 0x9D, 0xAD, 0x11, 0xD1, 0x80, 0xB4, 0x00, 0xC0, 0x4F, 0xD4, 0x30, 0xC8,
    ])

    /// The RFC 4122 version nibble (4 for random, 5 for SHA-1 name-based).
    public var version: Int { Int(bytes[6] >> 4) }

    /// Lower-case `8-4-4-4-12`, as Python's `str(uuid)`.
    public var description: String {
        var text: [UInt8] = []
        text.reserveCapacity(36)
        appendCanonical(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the 36 ASCII bytes of the canonical form, without allocating a String.
    public func appendCanonical(to out: inout [UInt8]) {
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(CeleryUUID.hexDigits[Int(byte >> 4)])
            out.append(CeleryUUID.hexDigits[Int(byte & 0x0F)])
        }
    }

    private init(uncheckedBytes: [UInt8]) {
        self.bytes = uncheckedBytes
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
