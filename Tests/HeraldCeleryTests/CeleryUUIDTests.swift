// Task ids must equal Python's uuid.uuid5 for the same inputs, so that anyone can
// recompute an id from (schedule, fire time); the expected values below were
// computed once with CPython's uuid module.
import HeraldCelery
import XCTest

final class CeleryUUIDTests: XCTestCase {
    func testV5MatchesPythonUUID5() {
        // uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        XCTAssertEqual(
            CeleryUUID.v5(namespace: .dnsNamespace, name: "python.org").description,
            "886313e1-3b8a-5372-9b90-0c9aee199e5d")
        // uuid.uuid5(uuid.NAMESPACE_DNS, "héllo✓")
        XCTAssertEqual(
            CeleryUUID.v5(namespace: .dnsNamespace, name: "héllo✓").description,
            "01c7b8fe-1934-5ee8-a42e-05f2a3109c4d")
    }

    func testTaskIDNamespaceIsDerivedAsDocumented() {
        XCTAssertEqual(
            CeleryUUID.v5(namespace: .dnsNamespace, name: "herald.celery.task-id"),
            CeleryMessage.taskIDNamespace)
        XCTAssertEqual(CeleryMessage.taskIDNamespace.description, "43f36061-3e1a-561a-826b-b8e6085cf0be")
    }

    func testTaskIDKnownAnswers() {
        // uuid.uuid5(uuid.UUID("43f36061-3e1a-561a-826b-b8e6085cf0be"), "<schedule>@<unix seconds>")
        XCTAssertEqual(
            CeleryMessage.taskID(scheduleID: "3f1c2a9e-5b7d-4c21-9a0e-2d6f8b1c4e70", scheduledAt: 1_767_225_600),
            "569d627a-3ecf-5d6f-8c42-63de37d0f38c")
        XCTAssertEqual(
            CeleryMessage.taskID(scheduleID: "trigger_subscription:abc", scheduledAt: 0),
            "1b60bf19-e6d0-56d2-a5e3-d193747f1d76")
    }

    func testTaskIDIsDeterministicAndDistinct() {
        let a = CeleryMessage.taskID(scheduleID: "plan-1", scheduledAt: 1_700_000_000)
        XCTAssertEqual(a, CeleryMessage.taskID(scheduleID: "plan-1", scheduledAt: 1_700_000_000))
        XCTAssertNotEqual(a, CeleryMessage.taskID(scheduleID: "plan-1", scheduledAt: 1_700_000_060))
        XCTAssertNotEqual(a, CeleryMessage.taskID(scheduleID: "plan-2", scheduledAt: 1_700_000_000))
        XCTAssertEqual(CeleryUUID(a)?.version, 5)
        var seen = Set<String>()
        for minute in 0..<1000 {
            seen.insert(CeleryMessage.taskID(scheduleID: "plan-1", scheduledAt: Int64(minute) * 60))
        }
        XCTAssertEqual(seen.count, 1000)
    }

    func testParseAndFormatRoundTrip() {
        let text = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
        XCTAssertEqual(CeleryUUID(text), .dnsNamespace)
        XCTAssertEqual(CeleryUUID(text.uppercased())?.description, text)
        XCTAssertNil(CeleryUUID("6ba7b8109dad11d180b400c04fd430c8"))
        XCTAssertNil(CeleryUUID("6ba7b810-9dad-11d1-80b4-00c04fd430cg"))
        XCTAssertNil(CeleryUUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8a"))
        XCTAssertNil(CeleryUUID(bytes: [1, 2, 3]))
    }

    func testV4HasVersionAndVariantBits() {
        var seen = Set<CeleryUUID>()
        for _ in 0..<100 {
            let id = CeleryUUID.v4()
            XCTAssertEqual(id.version, 4)
            XCTAssertEqual(id.bytes[8] & 0xC0, 0x80)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 100)
    }
}
