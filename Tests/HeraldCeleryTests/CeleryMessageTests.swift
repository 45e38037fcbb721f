// Byte-for-byte comparisons with envelopes that real Celery 5.7.0 / kombu 5.7.0
// LPUSHed (captured with Tests/Support/celery_reference.py, fixed origin,
// reply_to and delivery_tag), plus the structure a worker relies on.
import HeraldCelery
import XCTest

final class CeleryMessageTests: XCTestCase {
    static let origin = "herald@test"
    static let replyTo = "d12726ad-cbca-3f04-a06e-ea45d973f239"
    static let deliveryTag = "7cbd4065-8ac6-4bd1-93f3-9a07f6cc7462"

    /// `run_schedule_trigger.apply_async(("3f1c2a9e-…",), task_id=…)` as Celery wrote it.
    static let celeryScheduleTrigger =
        #"{"body": "W1siM2YxYzJhOWUtNWI3ZC00YzIxLTlhMGUtMmQ2ZjhiMWM0ZTcwIl0sIHt9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.workflow_schedule_tasks.run_schedule_trigger", "id": "569d627a-3ecf-5d6f-8c42-63de37d0f38c", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "569d627a-3ecf-5d6f-8c42-63de37d0f38c", "parent_id": null, "argsrepr": "('3f1c2a9e-5b7d-4c21-9a0e-2d6f8b1c4e70',)", "kwargsrepr": "{}", "origin": "herald@test", "ignore_result": true, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "569d627a-3ecf-5d6f-8c42-63de37d0f38c", "reply_to": "d12726ad-cbca-3f04-a06e-ea45d973f239", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "schedule_executor"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "7cbd4065-8ac6-4bd1-93f3-9a07f6cc7462"}}"#

    /// `trigger_subscription_refresh.apply_async(kwargs={tenant_id, subscription_id})` with
    /// non-ASCII, quotes, control characters, DEL and an astral character.
    static let celeryTriggerRefresh =
        #"{"body": "W1tdLCB7InRlbmFudF9pZCI6ICJ0XHUwMGVibmFudC1cdTI3MTMiLCAic3Vic2NyaXB0aW9uX2lkIjogInN1YlwicXVvdGUnXG5cdFx1MDAwMVx1MDA3Zlx1ZDgzZFx1ZGUwMC9cXCJ9LCB7ImNhbGxiYWNrcyI6IG51bGwsICJlcnJiYWNrcyI6IG51bGwsICJjaGFpbiI6IG51bGwsICJjaG9yZCI6IG51bGx9XQ==", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh", "id": "1b60bf19-e6d0-56d2-a5e3-d193747f1d76", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "1b60bf19-e6d0-56d2-a5e3-d193747f1d76", "parent_id": null, "argsrepr": "()", "kwargsrepr": "{'tenant_id': 't\u00ebnant-\u2713', 'subscription_id': 'sub\"quote\\'\n\t\u0001\u007f\ud83d\ude00/\\'}", "origin": "herald@test", "ignore_result": true, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "1b60bf19-e6d0-56d2-a5e3-d193747f1d76", "reply_to": "d12726ad-cbca-3f04-a06e-ea45d973f239", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "trigger_refresh_executor"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "7cbd4065-8ac6-4bd1-93f3-9a07f6cc7462"}}"#

    /// A task with every value kind, nesting beyond saferepr's three levels, and -0.0.
    static let celeryMixed =
        #"{"body": "W1sxLCAtMiwgMS41LCAxZS0wNSwgMWUrMTYsIDAuMSwgdHJ1ZSwgZmFsc2UsIG51bGwsICJpdCdzIiwgWyJuZXN0ZWQiLCBbImRlZXAiLCBbImRlZXBlciIsIFsiZGVlcGVzdCJdXV1dLCB7ImsiOiAidiIsICJuIjogMX1dLCB7ImEiOiBbMSwgMl0sICJiIjogeyJjIjogbnVsbH0sICJ6XHUwMGU5IjogLTAuMH0sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "herald.test.mixed", "id": "01c7b8fe-1934-5ee8-a42e-05f2a3109c4d", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "01c7b8fe-1934-5ee8-a42e-05f2a3109c4d", "parent_id": null, "argsrepr": "(1, -2, 1.5, 1e-05, 1e+16, 0.1, True, False, None, 'it\\'s', ['nested', ['deep', [...]]], {'k': 'v', 'n': 1})", "kwargsrepr": "{'a': [1, 2], 'b': {'c': None}, 'z\u00e9': -0.0}", "origin": "herald@test", "ignore_result": true, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "01c7b8fe-1934-5ee8-a42e-05f2a3109c4d", "reply_to": "d12726ad-cbca-3f04-a06e-ea45d973f239", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "mixed_q"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "7cbd4065-8ac6-4bd1-93f3-9a07f6cc7462"}}"#

    private func encode(_ task: CeleryTask) -> String {
        String(
            decoding: CeleryMessage.encode(
                task, origin: Self.origin, replyTo: Self.replyTo,
                deliveryTag: Self.deliveryTag), as: UTF8.self)
    }

    func testScheduleTriggerIsByteIdenticalToCelery() {
        let id = CeleryMessage.taskID(scheduleID: "3f1c2a9e-5b7d-4c21-9a0e-2d6f8b1c4e70", scheduledAt: 1_767_225_600)
        let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: "3f1c2a9e-5b7d-4c21-9a0e-2d6f8b1c4e70", taskID: id)
        XCTAssertEqual(encode(task), Self.celeryScheduleTrigger)
    }

    func testTriggerRefreshIsByteIdenticalToCelery() {
        let task = DifyCeleryTasks.triggerSubscriptionRefresh(
            tenantID: "t\u{EB}nant-\u{2713}", subscriptionID: "sub\"quote'\n\t\u{01}\u{7F}\u{1F600}/\\",
            taskID: "1b60bf19-e6d0-56d2-a5e3-d193747f1d76")
        XCTAssertEqual(encode(task), Self.celeryTriggerRefresh)
    }

    func testMixedValuesAreByteIdenticalToCelery() {
        let task = CeleryTask(
            name: "herald.test.mixed", queue: "mixed_q", id: "01c7b8fe-1934-5ee8-a42e-05f2a3109c4d",
            args: [
                1, -2, 1.5, 1e-05, 1e16, 0.1, true, false, nil, "it's",
                ["nested", ["deep", ["deeper", ["deepest"]]]], ["k": "v", "n": 1],
            ],
            kwargs: [CeleryMember("a", [1, 2]), CeleryMember("b", ["c": nil]), CeleryMember("z\u{E9}", .double(-0.0))])
        XCTAssertEqual(encode(task), Self.celeryMixed)
    }

    func testDecodeRoundTrip() throws {
        let task = DifyCeleryTasks.triggerSubscriptionRefresh(
            tenantID: "tenant-é", subscriptionID: "sub-😀",
            taskID: CeleryUUID.v4().description)
        let tag = CeleryUUID.v4().description
        let decoded = try CeleryEnvelopeDecoder.decode(CeleryMessage.encode(task, origin: "o", deliveryTag: tag))
        XCTAssertEqual(decoded.task, DifyCeleryTasks.triggerSubscriptionRefresh.name)
        XCTAssertEqual(decoded.queue, "trigger_refresh_executor")
        XCTAssertEqual(decoded.id, task.id)
        XCTAssertEqual(decoded.args, [])
        XCTAssertEqual(decoded.kwargs, ["tenant_id": "tenant-é", "subscription_id": "sub-😀"])
        XCTAssertEqual(decoded.embed, ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil])
        XCTAssertEqual(decoded.headers["root_id"], .string(task.id))
        XCTAssertEqual(decoded.headers["ignore_result"], true)
        XCTAssertEqual(decoded.headers["retries"], 0)
        XCTAssertEqual(decoded.properties["correlation_id"], .string(task.id))
        XCTAssertEqual(decoded.properties["delivery_tag"], .string(tag))
        XCTAssertEqual(decoded.properties["delivery_mode"], 2)
        XCTAssertEqual(decoded.properties["body_encoding"], "base64")
    }

    func testKeySetsMatchCelery() throws {
        let ours = try CeleryEnvelopeDecoder.decode(
            CeleryMessage.encode(
                DifyCeleryTasks.runScheduleTrigger(scheduleID: "x", taskID: "y"), origin: "o", deliveryTag: "t"))
        let celery = try CeleryEnvelopeDecoder.decode(Self.celeryScheduleTrigger)
        XCTAssertEqual(ours.envelopeKeys, celery.envelopeKeys)
        XCTAssertEqual(ours.headerKeys, celery.headerKeys)
        XCTAssertEqual(ours.propertyKeys, celery.propertyKeys)
        XCTAssertEqual(ours.headerKeys.count, 19)
    }

    func testIgnoreResultVariants() throws {
        var task = DifyCeleryTasks.runScheduleTrigger(scheduleID: "x", taskID: "y")
        for (value, expected) in [(Bool?.none, CeleryValue.null), (false, .bool(false)), (true, .bool(true))] {
            task.ignoreResult = value
            let decoded = try CeleryEnvelopeDecoder.decode(CeleryMessage.encode(task, origin: "o", deliveryTag: "t"))
            XCTAssertEqual(decoded.headers["ignore_result"], expected)
        }
    }

    func testDifyNamesAndQueues() {
        XCTAssertEqual(DifyCeleryTasks.runScheduleTrigger.name, "tasks.workflow_schedule_tasks.run_schedule_trigger")
        XCTAssertEqual(DifyCeleryTasks.runScheduleTrigger.queue, "schedule_executor")
        XCTAssertEqual(
            DifyCeleryTasks.triggerSubscriptionRefresh.name,
            "tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh")
        XCTAssertEqual(DifyCeleryTasks.triggerSubscriptionRefresh.queue, "trigger_refresh_executor")
        XCTAssertEqual(DifyCeleryTasks.processTenantPluginAutoupgradeCheck.queue, "plugin")
        let plugin = DifyCeleryTasks.processTenantPluginAutoupgradeCheck(
            tenantID: "t", strategySetting: "fix_only", upgradeTimeOfDay: 3600, upgradeMode: "exclude",
            excludePlugins: ["a/b"], includePlugins: [], taskID: "id")
        XCTAssertEqual(plugin.args, ["t", "fix_only", 3600, "exclude", ["a/b"], []])
    }

    func testListKeyAppliesGlobalKeyPrefixVerbatim() {
        XCTAssertEqual(CeleryMessage.listKey(queue: "schedule_executor", keyPrefix: ""), "schedule_executor")
        XCTAssertEqual(CeleryMessage.listKey(queue: "schedule_executor", keyPrefix: "dify:"), "dify:schedule_executor")
        XCTAssertEqual(CeleryMessage.globalKeyPrefix(redisKeyPrefix: ""), "")
        XCTAssertEqual(CeleryMessage.globalKeyPrefix(redisKeyPrefix: "dify"), "dify:")
        let key = CeleryMessage.listKey(
            queue: "plugin", keyPrefix: CeleryMessage.globalKeyPrefix(redisKeyPrefix: "tenant-a"))
        XCTAssertEqual(key, "tenant-a:plugin")
    }

    func testDecoderRejectsBrokenEnvelopes() {
        XCTAssertThrowsError(try CeleryEnvelopeDecoder.decode("not json")) {
            XCTAssertEqual($0 as? CeleryDecodeError, .notJSON(part: "envelope"))
        }
        XCTAssertThrowsError(try CeleryEnvelopeDecoder.decode(#"{"headers": {}, "properties": {}}"#)) {
            XCTAssertEqual($0 as? CeleryDecodeError, .missingField("body"))
        }
        XCTAssertThrowsError(try CeleryEnvelopeDecoder.decode(#"{"body": "!!", "headers": {}, "properties": {}}"#)) {
            XCTAssertEqual($0 as? CeleryDecodeError, .invalidBase64)
        }
        // body = base64("[1]"): not [args, kwargs, embed]
        XCTAssertThrowsError(try CeleryEnvelopeDecoder.decode(#"{"body": "WzFd", "headers": {}, "properties": {}}"#)) {
            XCTAssertEqual($0 as? CeleryDecodeError, .invalidBody)
        }
    }

    /// Not an assertion: prints the cost per message so regressions are visible in test logs.
    func testMeasureEncodingCost() {
        let count = 20_000
        let ids = (0..<count).map { CeleryMessage.taskID(scheduleID: "plan-\($0)", scheduledAt: 1_767_225_600) }
        let tag = CeleryUUID.v4().description
        var writer = PythonJSONWriter(capacity: 1024)
        var total = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for i in 0..<count {
                writer.bytes.removeAll(keepingCapacity: true)
                let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: ids[i], taskID: ids[i])
                CeleryMessage.encode(task, origin: "herald1@host", replyTo: tag, deliveryTag: tag, into: &writer)
                total += writer.bytes.count
            }
        }
        let idElapsed = clock.measure {
            for i in 0..<count { total += CeleryMessage.taskID(scheduleID: ids[i], scheduledAt: 1).utf8.count }
        }
        let perMessage =
            Double(elapsed.components.attoseconds) / 1e12 / Double(count)
            + Double(elapsed.components.seconds) * 1e6 / Double(count)
        let perID =
            Double(idElapsed.components.attoseconds) / 1e12 / Double(count)
            + Double(idElapsed.components.seconds) * 1e6 / Double(count)
        #if DEBUG
        let build = "debug build, unoptimized"
        #else
        let build = "optimized build"
        #endif
        print(
            "CeleryMessage.encode: \(String(format: "%.2f", perMessage)) µs/message, "
                + "taskID: \(String(format: "%.2f", perID)) µs/id (\(count) each, \(build))")
        XCTAssertGreaterThan(total, 0)
    }
}
