// The event rules of docs/events.md: what is accepted, ignored and rejected, and that
// no payload (huge, binary, deeply nested, wrong types) can trap.

import HeraldCore
import XCTest

final class EventDecoderTests: XCTestCase {
    let id = "0192f3c4-1111-7aaa-8bbb-123456789abc"

    func testScheduleEventAccepted() {
        XCTAssertEqual(
            EventDecoder.scheduleEvent(Array("{\"schedule_id\":\"\(id)\"}".utf8)),
            .accepted(.scheduleChanged(scheduleID: id, runNow: false)))
        XCTAssertEqual(
            EventDecoder.scheduleEvent(
                Array("{\"schedule_id\":\"\(id.uppercased())\",\"run_now\":true,\"extra\":[1,{}]}".utf8)),
            .accepted(.scheduleChanged(scheduleID: id, runNow: true)))
        XCTAssertEqual(
            EventDecoder.scheduleEvent(Array(" {\"run_now\": null, \"schedule_id\" : \"\(id)\"} ".utf8)),
            .accepted(.scheduleChanged(scheduleID: id, runNow: false)))
    }

    func testScheduleEventRejections() {
        func rejected(_ s: String) -> EventRejection? {
            if case .rejected(let r) = EventDecoder.scheduleEvent(Array(s.utf8)) { return r }
            return nil
        }
        XCTAssertEqual(rejected("not json"), .notJSON(.unexpectedByte(offset: 1)))
        XCTAssertEqual(rejected("xyz"), .notJSON(.unexpectedByte(offset: 0)))
        XCTAssertEqual(rejected("[1,2]"), .notAnObject)
        XCTAssertEqual(rejected("\"x\""), .notAnObject)
        XCTAssertEqual(rejected("{}"), .missingField("schedule_id"))
        XCTAssertEqual(rejected("{\"schedule_id\":42}"), .wrongType(field: "schedule_id", expected: "a string"))
        XCTAssertEqual(rejected("{\"schedule_id\":\"nope\"}"), .invalidValue(field: "schedule_id"))
        XCTAssertEqual(
            rejected("{\"schedule_id\":\"\(id)\",\"run_now\":\"yes\"}"),
            .wrongType(field: "run_now", expected: "a boolean"))
        XCTAssertEqual(rejected("{\"schedule_id\":\"\(id)\"} x"), .notJSON(.trailingData(offset: 55)))
        XCTAssertEqual(rejected(""), .notJSON(.empty))
        XCTAssertEqual(rejected("{\"schedule_id\":\"\(id)\""), .notJSON(.unexpectedEnd))
    }

    func testOversizedPayloadRejectedWithoutParsing() {
        let big = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        XCTAssertEqual(EventDecoder.scheduleEvent(big), .rejected(.tooLarge(bytes: 1 << 20, limit: 8192)))
        let justOver = Array(
            ("{\"schedule_id\":\"\(id)\",\"pad\":\"" + String(repeating: "x", count: 8192) + "\"}").utf8)
        XCTAssertEqual(EventDecoder.scheduleEvent(justOver).outcome, .rejected)
    }

    func testDeeplyNestedIsRejectedNotRecursed() {
        let deep = String(repeating: "[", count: 4000) + String(repeating: "]", count: 4000)
        let payload = Array(("{\"a\":" + deep + "}").utf8)
        XCTAssertEqual(
            EventDecoder.scheduleEvent(payload), .rejected(.notJSON(.tooDeep(limit: JSONReader.defaultMaxDepth))))
    }

    func testBinaryAndInvalidUTF8() {
        var bytes = Array("{\"schedule_id\":\"".utf8)
        bytes += [0xC0, 0xAF, 0xFF, 0xFE]
        bytes += Array("\"}".utf8)
        XCTAssertEqual(EventDecoder.scheduleEvent(bytes).outcome, .rejected)
        XCTAssertEqual(EventDecoder.scheduleEvent([0, 1, 2, 3, 0xFF]).outcome, .rejected)
        // Random bytes never trap.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<64, using: &rng)
            let junk = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = EventDecoder.scheduleEvent(junk)
            _ = EventDecoder.tableEvent(junk)
            _ = EventDecoder.expiredKey(junk)
        }
    }

    func testTableEvents() {
        XCTAssertEqual(
            EventDecoder.tableEvent(Array("{\"table\":\"app_triggers\",\"op\":\"UPDATE\",\"id\":\"\(id)\"}".utf8)),
            .accepted(.tableChanged(TableChange(table: "app_triggers", operation: .update, id: id))))
        if case .ignored = EventDecoder.tableEvent(
            Array("{\"table\":\"accounts\",\"op\":\"UPDATE\",\"id\":\"\(id)\"}".utf8))
        {
        } else {
            XCTFail("an unwatched table is ignored")
        }
        XCTAssertEqual(
            EventDecoder.tableEvent(Array("{\"table\":\"app_triggers\",\"op\":\"TRUNCATE\",\"id\":\"\(id)\"}".utf8)),
            .rejected(.invalidValue(field: "op")))
        XCTAssertEqual(
            EventDecoder.tableEvent(Array("{\"table\":1,\"op\":\"INSERT\",\"id\":\"\(id)\"}".utf8)),
            .rejected(.wrongType(field: "table", expected: "a string")))
    }

    func testExpiredKeys() {
        XCTAssertEqual(
            EventDecoder.expiredKey(Array("herald:expiry:trigger_subscription:abc".utf8)),
            .accepted(.keyExpired(name: "trigger_subscription:abc")))
        XCTAssertEqual(
            EventDecoder.expiredKey(Array("dify:herald:expiry:x".utf8), keyPrefix: "dify:"),
            .accepted(.keyExpired(name: "x")))
        XCTAssertEqual(EventDecoder.expiredKey(Array("session:123".utf8)).outcome, .ignored)
        XCTAssertEqual(EventDecoder.expiredKey(Array("herald:expiry:".utf8)).outcome, .rejected)
    }

    func testJSONReaderValues() throws {
        let v = try JSONReader.parse(
            Array("{\"a\":[1,-2.5e3,true,false,null],\"b\":\"\\u00e9\\ud83d\\ude00\\n\"}".utf8))
        XCTAssertEqual(v["a"], .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        XCTAssertEqual(v["b"], .string("é😀\n"))
        XCTAssertThrowsError(try JSONReader.parse(Array("{\"a\":01}".utf8)))
        XCTAssertThrowsError(try JSONReader.parse(Array("{\"a\":\"\\ud800\"}".utf8)))
        XCTAssertThrowsError(try JSONReader.parse(Array("{\"a\":\"tab\there\"}".utf8)))
        XCTAssertEqual(try JSONReader.parse(Array("\"é\"".utf8)), .string("é"))
    }
}
