// SHA-1 is only a naming function here, but a wrong digest would silently give
// every task id a different value from Python's uuid5; these are the FIPS 180
// vectors plus padding boundaries computed once with Python's hashlib.
import HeraldCelery
import XCTest

final class SHA1Tests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    func testFIPSVectors() {
        XCTAssertEqual(hex(SHA1.hash([UInt8]())), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(hex(SHA1.hash(Array("abc".utf8))), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(
            hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    func testMillionA() {
        XCTAssertEqual(
            hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    /// Lengths around the 56- and 64-byte padding edges (hashlib.sha1(bytes(i % 251 for i in range(n)))).
    func testPaddingBoundaries() {
        let expected: [Int: String] = [
            55: "8ae2d46729cfe68ff927af5eec9c7d1b66d65ac2",
            56: "636e2ec698dac903498e648bd2f3af641d3c88cb",
            63: "6d942da0c4392b123528f2905c713a3ce28364bd",
            64: "c6138d514ffa2135bfce0ed0b8fac65669917ec7",
            65: "69bd728ad6e13cd76ff19751fde427b00e395746",
            119: "41c89d06001bab4ab78736b44efe7ce18ce6ae08",
            120: "d3dbd653bd8597b7475321b60a36891278e6a04a",
        ]
        for (n, digest) in expected {
            let input = (0..<n).map { UInt8($0 % 251) }
            XCTAssertEqual(hex(SHA1.hash(input)), digest, "length \(n)")
        }
    }

    func testUTF8Input() {
        XCTAssertEqual(hex(SHA1.hash(Array("héllo ✓ 😀".utf8))), "c3274ec043a44fde3c39e0f914e57810cbe8fdd8")
    }

    func testStreamingEqualsOneShot() {
        let input = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        for split in [0, 1, 55, 64, 65, 128, 299, 300] {
            var hasher = SHA1()
            hasher.update(input[..<split])
            hasher.update(input[split...])
            XCTAssertEqual(hasher.finalize(), SHA1.hash(input), "split at \(split)")
        }
    }
}
