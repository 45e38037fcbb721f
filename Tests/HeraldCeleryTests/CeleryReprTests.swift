// argsrepr/kwargsrepr are what Flower and worker logs show; the expectations are
// celery.utils.saferepr.saferepr(x, 1024, maxlevels=3) outputs from Celery 5.7,
// including its truncation and the 3-level nesting cut-off.
import HeraldCelery
import XCTest

final class CeleryReprTests: XCTestCase {
    func testTupleForms() {
        XCTAssertEqual(CeleryRepr.args([]), "()")
        XCTAssertEqual(CeleryRepr.args(["a"]), "('a',)")
        XCTAssertEqual(CeleryRepr.args(["a", 2]), "('a', 2)")
        XCTAssertEqual(CeleryRepr.kwargs([]), "{}")
    }

    func testScalarsAndQuoting() {
        XCTAssertEqual(
            CeleryRepr.args([1, -2, 1.5, 1e-05, 1e16, 0.1, true, false, nil, "it's"]),
            "(1, -2, 1.5, 1e-05, 1e+16, 0.1, True, False, None, 'it\\'s')")
        // Strings are not escaped beyond the single quote: newlines stay raw.
        XCTAssertEqual(CeleryRepr.kwargs([CeleryMember("s", "sub\"quote'\n\t")]), "{'s': 'sub\"quote\\'\n\t'}")
    }

    func testNestingStopsAtThreeLevels() {
        let args: [CeleryValue] = [["nested", ["deep", ["deeper", ["deepest"]]]], ["k": "v", "n": 1]]
        XCTAssertEqual(CeleryRepr.args(args), "(['nested', ['deep', [...]]], {'k': 'v', 'n': 1})")
        XCTAssertEqual(CeleryRepr.kwargs([CeleryMember("a", ["b": ["c": ["d": 1]]])]), "{'a': {'b': {'c': {...}}}}")
        XCTAssertEqual(CeleryRepr.args([["a": ["b": ["c": 1]]]]), "({'a': {'b': {...}}},)")
        XCTAssertEqual(CeleryRepr.args([[[[1]]]]), "([[[...]]],)")
    }

    func testLongStringIsCutAtAWordAndClosed() {
        let word = String(repeating: "word ", count: 300)
        let expected = "('" + String(repeating: "word ", count: 203) + "word...',)"
        XCTAssertEqual(CeleryRepr.args([.string(word)]), expected)
    }

    func testStringJustUnderTheBudgetIsKept() {
        let x = String(repeating: "x", count: 1018)
        XCTAssertEqual(CeleryRepr.args([.string(x)]), "('" + x + "',)")
    }

    func testBudgetCountsCodePointsNotBytes() {
        let e = String(repeating: "é", count: 1100)
        XCTAssertEqual(CeleryRepr.args([.string(e)]), "('" + String(repeating: "é", count: 1023) + "...',)")
    }

    func testManyItemsEndWithEllipsis() {
        let items: [CeleryValue] = (0..<120).map {
            .string("item-" + String(repeating: "0", count: 4 - String($0).count) + String($0))
        }
        let shown = (0..<78).map { "'item-" + String(repeating: "0", count: 4 - String($0).count) + String($0) + "'" }
        XCTAssertEqual(CeleryRepr.args(items), "(" + shown.joined(separator: ", ") + ", 'item-0078...', ...)")
    }

    func testCutInsideNestedListClosesOpenedBrackets() {
        let a = String(repeating: "a", count: 600), b = String(repeating: "b", count: 600)
        let args: [CeleryValue] = [[.string(a), [.string(b), "c"], "d"], "e"]
        XCTAssertEqual(
            CeleryRepr.args(args),
            "(['" + a + "', ['" + String(repeating: "b", count: 417) + "...', ...]])")
    }

    func testKwargsCut() {
        let v = String(repeating: "v", count: 50)
        let kwargs = (0..<30).map { CeleryMember("k\($0)", .string(v)) }
        let shown = (0..<16).map { "'k\($0)': '" + v + "'" }
        XCTAssertEqual(
            CeleryRepr.kwargs(kwargs),
            "{" + shown.joined(separator: ", ") + ", 'k16': '" + String(repeating: "v", count: 50) + "...', ...}")
    }
}
