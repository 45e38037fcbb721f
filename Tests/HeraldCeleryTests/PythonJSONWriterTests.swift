// The writer must produce Python's json.dumps bytes, not merely valid JSON: the
// expected strings are what CPython 3.11 printed for the same values.
import HeraldCelery
import XCTest

final class PythonJSONWriterTests: XCTestCase {
    private func json(_ value: CeleryValue) -> String {
        var writer = PythonJSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    func testStringEscapingMatchesEnsureASCII() {
        XCTAssertEqual(json("plain"), #""plain""#)
        XCTAssertEqual(json("q\"b\\s/"), #""q\"b\\s/""#)
        XCTAssertEqual(json("\n\r\t\u{08}\u{0C}"), #""\n\r\t\b\f""#)
        XCTAssertEqual(json("\u{00}\u{01}\u{1F}\u{7F}"), #""\u0000\u0001\u001f\u007f""#)
        XCTAssertEqual(json("é✓"), #""\u00e9\u2713""#)
        XCTAssertEqual(json("😀"), #""\ud83d\ude00""#)
        XCTAssertEqual(json("a😀b\u{10FFFF}"), #""a\ud83d\ude00b\udbff\udfff""#)
        XCTAssertEqual(json(""), #""""#)
    }

    func testNumbers() {
        XCTAssertEqual(json(0), "0")
        XCTAssertEqual(json(7), "7")
        XCTAssertEqual(json(-2), "-2")
        XCTAssertEqual(json(.int(Int64.max)), "9223372036854775807")
        XCTAssertEqual(json(.int(Int64.min)), "-9223372036854775808")
        XCTAssertEqual(json(.double(.nan)), "NaN")
        XCTAssertEqual(json(.double(.infinity)), "Infinity")
        XCTAssertEqual(json(.double(-.infinity)), "-Infinity")
        XCTAssertEqual(json(1.5), "1.5")
    }

    /// repr(float) in CPython for each input.
    func testPythonFloatRepr() {
        let cases: [(Double, String)] = [
            (1.0, "1.0"), (0.0001, "0.0001"), (1e-05, "1e-05"), (1e16, "1e+16"),
            (1e15, "1000000000000000.0"), (123456789012345678.0, "1.2345678901234568e+17"),
            (.leastNonzeroMagnitude, "5e-324"), (-0.0, "-0.0"), (0.0, "0.0"), (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"), (2.5e-7, "2.5e-07"), (100.0, "100.0"),
            (1234.5678, "1234.5678"), (1e22, "1e+22"), (9007199254740993.0, "9007199254740992.0"),
            (-123.25, "-123.25"), (0.5, "0.5"),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(PythonFloat.repr(value), expected, "\(value)")
        }
        XCTAssertEqual(PythonFloat.repr(.nan), "nan")
        XCTAssertEqual(PythonFloat.repr(-.infinity), "-inf")
    }

    func testContainersUsePythonSeparatorsAndKeepOrder() {
        let value: CeleryValue = ["z": 1, "a": [true, false, nil], "m": ["n": "é"], "e": [:], "l": []]
        XCTAssertEqual(json(value), #"{"z": 1, "a": [true, false, null], "m": {"n": "\u00e9"}, "e": {}, "l": []}"#)
    }

    /// Whatever the writer escapes, a JSON parser reads back the same text.
    func testEscapedStringsRoundTripThroughFoundation() throws {
        var scalars: [Unicode.Scalar] = []
        for v in 0..<0x300 { if let s = Unicode.Scalar(v) { scalars.append(s) } }
        scalars += ["\u{2028}", "\u{FFFF}", "\u{1F600}", "\u{10FFFF}"]
        let text = String(String.UnicodeScalarView(scalars))
        let bytes = Array(json(.array([.string(text)])).utf8)
        XCTAssertTrue(bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "ensure_ascii output is printable ASCII")
        let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String]
        XCTAssertEqual(parsed, [text])
    }
}
