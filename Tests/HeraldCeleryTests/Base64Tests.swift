// The body travels base64-encoded inside the envelope; a bad encoder would make
// every message unreadable to the worker. Vectors are RFC 4648 §10.
import HeraldCelery
import XCTest

final class Base64Tests: XCTestCase {
    func testRFC4648Vectors() {
        let vectors = [
            "": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==",
            "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy",
        ]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8))
        }
        XCTAssertEqual(Base64.encode(Array("héllo ✓ 😀".utf8)), "aMOpbGxvIOKckyDwn5iA")
    }

    func testRoundTripAllLengthsAndMatchesFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<300 {
            let input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64.encode(input)
            XCTAssertEqual(encoded, Data(input).base64EncodedString(), "length \(length)")
            XCTAssertEqual(Base64.decode(encoded), input, "length \(length)")
        }
    }

    func testRejectsMalformedInput() {
        XCTAssertNil(Base64.decode("Zm9"))
        XCTAssertNil(Base64.decode("Zm9v!A=="))
        XCTAssertNil(Base64.decode("Z==="))
        XCTAssertNil(Base64.decode("Zg==Zm9v"))
    }
}
