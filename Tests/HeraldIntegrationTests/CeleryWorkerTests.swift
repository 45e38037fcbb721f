// The promise of docs/celery.md, "Dify's workers cannot tell the difference", checked with a
// real Celery 5 worker (Tests/Support/celery_worker.py) reading Herald-encoded
// messages from a real Redis, and the encoder checked byte for byte against what
// Celery itself writes (Tests/Support/celery_reference.py). Every test has its
// own key prefix, output file and worker process, and always stops its worker.

import Foundation
import HeraldCelery
import XCTest

final class CeleryWorkerTests: XCTestCase {
    /// Where the worker and the reference live, and what they need.
    private struct Peer {
        let redisURL: String
        let python: String
        let support: URL

        var workerScript: String { support.appendingPathComponent("celery_worker.py").path }
        var referenceScript: String { support.appendingPathComponent("celery_reference.py").path }
    }

    private func peer() throws -> Peer {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["HERALD_TEST_REDIS_URL"], var python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail("HERALD_TEST_REDIS_URL and HERALD_TEST_PYTHON (a python with celery, redis, kombu) must be set")
            }
            throw XCTSkip("HERALD_TEST_REDIS_URL/HERALD_TEST_PYTHON not set (run through `make test`)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: python, isDirectory: &isDirectory), isDirectory.boolValue {
            python += "/bin/python"  // a venv directory
        }
        let support = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support")
        return Peer(redisURL: url, python: python, support: support)
    }

    // MARK: - Tests

    /// 200 Herald-encoded messages of all three Dify tasks, with non-ASCII and control characters
    /// in the arguments, under a Dify-style key prefix: the worker runs each exactly once with
    /// the same id, arguments and queue.
    func testRealWorkerRunsEveryHeraldMessage() throws {
        let peer = try peer()
        let prefix = CeleryMessage.globalKeyPrefix(redisKeyPrefix: "herald-test-\(CeleryUUID.v4())")
        let output = try scratchFile("records.jsonl")
        try startWorker(
            peer, keyPrefix: prefix, output: output,
            queues: ["schedule_executor", "trigger_refresh_executor", "plugin"])

        var tasks: [CeleryTask] = []
        for i in 0..<120 {
            let plan = "plan-\(i)-é✓😀\"'\\\n\t\u{7F}"
            let id = CeleryMessage.taskID(scheduleID: plan, scheduledAt: 1_767_225_600 + Int64(i) * 60)
            tasks.append(DifyCeleryTasks.runScheduleTrigger(scheduleID: plan, taskID: id))
        }
        for i in 0..<60 {
            tasks.append(
                DifyCeleryTasks.triggerSubscriptionRefresh(
                    tenantID: "tenant-\(i)-日本語", subscriptionID: "sub-\(i)-\u{1F600}\u{0001}",
                    taskID: CeleryMessage.taskID(scheduleID: "trigger_subscription:\(i)", scheduledAt: Int64(i))))
        }
        for i in 0..<20 {
            tasks.append(
                DifyCeleryTasks.processTenantPluginAutoupgradeCheck(
                    tenantID: "tenant-\(i)", strategySetting: "fix_only", upgradeTimeOfDay: Int64(i) * 900,
                    upgradeMode: i % 2 == 0 ? "exclude" : "partial", excludePlugins: ["langgenius/ö\(i)"],
                    includePlugins: i % 2 == 0 ? [] : ["a/b", "c/d"], taskID: CeleryUUID.v4().description))
        }
        XCTAssertEqual(Set(tasks.map(\.id)).count, tasks.count, "ids are distinct")
        try push(peer, tasks, keyPrefix: prefix)

        let records = try waitForRecords(output, count: tasks.count)
        XCTAssertEqual(records.count, tasks.count)
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(byID.count, records.count, "no task ran twice")
        for task in tasks {
            guard let ran = byID[task.id] else {
                XCTFail("worker never ran \(task.name) \(task.id)")
                continue
            }
            XCTAssertEqual(ran.task, task.name)
            XCTAssertEqual(ran.queue, task.queue)
            XCTAssertEqual(ran.args, task.args, "args of \(task.id)")
            XCTAssertEqual(ran.kwargs, task.kwargs.reduce(into: [:]) { $0[$1.key] = $1.value }, "kwargs of \(task.id)")
        }
    }

    /// The worker is a real check: a message whose argument shape does not match Dify's
    /// signature fails on the worker, and the harness sees that failure.
    func testWorkerRejectsWrongArgumentShape() throws {
        let peer = try peer()
        let prefix = "herald-test-\(CeleryUUID.v4()):"
        let output = try scratchFile("records.jsonl")
        try startWorker(peer, keyPrefix: prefix, output: output, queues: ["schedule_executor"])

        let wrong = CeleryTask(
            name: DifyCeleryTasks.runScheduleTrigger.name, queue: "schedule_executor",
            id: CeleryUUID.v4().description, args: ["a", "b"])
        let right = DifyCeleryTasks.runScheduleTrigger(scheduleID: "ok", taskID: CeleryUUID.v4().description)
        try push(peer, [wrong, right], keyPrefix: prefix)

        let events = try waitForEvents(output, count: 2, stopOnFailure: false)
        XCTAssertEqual(events.first { $0["id"] as? String == wrong.id }?["event"] as? String, "failed")
        XCTAssertEqual(events.first { $0["id"] as? String == right.id }?["event"] as? String, "ran")
    }

    /// Celery's own producer and Herald, given the same task, id, origin, reply_to and
    /// delivery tag, write the same bytes to the same key (kombu's `global_keyprefix`).
    func testEncoderMatchesRealCeleryByteForByte() throws {
        let peer = try peer()
        let prefix = "herald-test-\(CeleryUUID.v4()):"
        let queue = "herald_reference_\(CeleryUUID.v4())"
        // Dify's producers call apply_async on registered tasks of an app with task_ignore_result=True;
        // celery_reference.py does the same, so ignore_result is true throughout.
        let cases: [CeleryTask] = [
            DifyCeleryTasks.runScheduleTrigger(scheduleID: "plan-é😀\"'\n", taskID: CeleryUUID.v4().description),
            DifyCeleryTasks.triggerSubscriptionRefresh(
                tenantID: "t-✓", subscriptionID: "s\u{7F}\t",
                taskID: CeleryUUID.v4().description),
            CeleryTask(
                name: "herald.test.mixed", queue: queue, id: CeleryUUID.v4().description,
                args: [1, 2.5, 1e-7, true, nil, ["x", ["y": [1, [2, [3]]]]]],
                kwargs: [CeleryMember("b", "\u{10FFFF}"), CeleryMember("a", [:])]),
        ]
        for original in cases {
            var task = original
            task.queue = queue
            let tag = CeleryUUID.v4().description
            let arguments = [
                peer.referenceScript, "--broker", peer.redisURL, "--key-prefix", prefix,
                "--task", task.name, "--queue", queue, "--task-id", task.id,
                "--origin", "herald-ref@test", "--delivery-tag", tag,
                "--args", jsonText(.array(task.args)), "--kwargs", jsonText(.object(task.kwargs)),
            ]
            let printed = try run(peer.python, arguments)
            guard let line = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any],
                let key = line["key"] as? String, let element = line["element"] as? String
            else { return XCTFail("celery_reference.py printed \(printed)") }

            XCTAssertEqual(key, CeleryMessage.listKey(queue: queue, keyPrefix: prefix), "kombu's list key")
            let reference = try CeleryEnvelopeDecoder.decode(element)
            guard case .string(let replyTo)? = reference.properties["reply_to"] else {
                return XCTFail("no reply_to in \(element)")
            }
            let ours = CeleryMessage.encode(task, origin: "herald-ref@test", replyTo: replyTo, deliveryTag: tag)
            let decoded = try CeleryEnvelopeDecoder.decode(ours)
            XCTAssertEqual(decoded.envelopeKeys, reference.envelopeKeys)
            XCTAssertEqual(
                decoded.headerKeys, reference.headerKeys,
                "Celery \(line["celery"] ?? "?") header set changed")
            XCTAssertEqual(decoded.propertyKeys, reference.propertyKeys)
            XCTAssertEqual(
                String(decoding: ours, as: UTF8.self), element,
                "Celery \(line["celery"] ?? "?") / kombu \(line["kombu"] ?? "?") wrote other bytes")
        }
    }

    // MARK: - Harness

    /// One record line from celery_worker.py.
    private struct Record {
        let id: String
        let task: String
        let queue: String
        let args: [CeleryValue]
        let kwargs: [String: CeleryValue]
    }

    private func scratchFile(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-celery-\(CeleryUUID.v4())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name)
    }

    /// Starts the worker; a teardown block stops it (SIGTERM, then SIGKILL) and deletes its keys.
    private func startWorker(_ peer: Peer, keyPrefix: String, output: URL, queues: [String]) throws {
        let log = output.deletingLastPathComponent().appendingPathComponent("worker.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log.path])
        }
        let logHandle = try FileHandle(forWritingTo: log)
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: peer.python)
        worker.arguments = [
            peer.workerScript, "--broker", peer.redisURL, "--key-prefix", keyPrefix,
            "--output", output.path, "--queues", queues.joined(separator: ","),
        ]
        worker.standardOutput = logHandle
        worker.standardError = logHandle
        worker.standardInput = FileHandle.nullDevice
        try worker.run()
        workerLog = log
        addTeardownBlock { [self] in
            stop(worker)
            try? logHandle.close()
            _ = try? run(peer.python, [peer.workerScript, "--broker", peer.redisURL, "--cleanup", keyPrefix])
        }
        self.worker = worker
    }

    private var worker: Process?
    private var workerLog: URL?

    private func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()  // SIGTERM: Celery's warm shutdown
        if !poll(timeout: 15, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// LPUSHes the encoded tasks through `celery_worker.py --push`, one call per queue.
    private func push(_ peer: Peer, _ tasks: [CeleryTask], keyPrefix: String) throws {
        let origin = "herald-test@\(ProcessInfo.processInfo.hostName)"
        let replyTo = CeleryUUID.v4().description
        for queue in Set(tasks.map(\.queue)).sorted() {
            var lines: [UInt8] = []
            for task in tasks where task.queue == queue {
                lines += CeleryMessage.encode(
                    task, origin: origin, replyTo: replyTo,
                    deliveryTag: CeleryUUID.v4().description)
                lines.append(0x0A)
            }
            let key = CeleryMessage.listKey(queue: queue, keyPrefix: keyPrefix)
            let pushed = try run(
                peer.python, [peer.workerScript, "--broker", peer.redisURL, "--push", key], stdin: lines)
            XCTAssertEqual(
                pushed.trimmingCharacters(in: .whitespacesAndNewlines),
                String(tasks.filter { $0.queue == queue }.count))
        }
    }

    /// Waits for `count` "ran" records; fails at once on a failure/unknown/rejected record.
    private func waitForRecords(_ output: URL, count: Int) throws -> [Record] {
        let events = try waitForEvents(output, count: count)
        let bad = events.filter { $0["event"] as? String != "ran" }
        XCTAssertTrue(bad.isEmpty, "worker reported: \(bad.prefix(3))")
        return events.compactMap { event in
            guard event["event"] as? String == "ran", let id = event["id"] as? String,
                let task = event["task"] as? String, let args = event["args"] as? [Any],
                let kwargs = event["kwargs"] as? [String: Any]
            else { return nil }
            return Record(
                id: id, task: task, queue: event["routing_key"] as? String ?? "",
                args: args.map(Self.value), kwargs: kwargs.mapValues(Self.value))
        }
    }

    /// Polls the output file (deadline 60 s) until `count` events or any non-"ran" event.
    private func waitForEvents(_ output: URL, count: Int, stopOnFailure: Bool = true) throws -> [[String: Any]] {
        var events: [[String: Any]] = []
        let done = poll(timeout: 60) {
            events = readEvents(output)
            return events.count >= count || (stopOnFailure && events.contains { $0["event"] as? String != "ran" })
                || !(worker?.isRunning ?? false)
        }
        if !done || events.count < count {
            let log = workerLog.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? ""
            XCTFail(
                "worker recorded \(events.count) of \(count) events; running: \(worker?.isRunning ?? false); "
                    + "log tail: \(log.suffix(2000))")
        }
        return events
    }

    private func readEvents(_ output: URL) -> [[String: Any]] {
        guard let data = try? Data(contentsOf: output) else { return [] }
        // Only complete lines: the worker may be mid-write.
        return data.split(separator: 0x0A, omittingEmptySubsequences: true).dropLast(data.last == 0x0A ? 0 : 1)
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    private static func value(_ any: Any) -> CeleryValue {
        CeleryEnvelopeDecoder.value(fromJSONObject: any)
    }

    private func jsonText(_ value: CeleryValue) -> String {
        var writer = PythonJSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Runs a short-lived helper; returns its stdout, fails the test on a non-zero exit.
    @discardableResult
    private func run(_ executable: String, _ arguments: [String], stdin: [UInt8]? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin))
            try input.fileHandleForWriting.close()
        }
        // stderr drains on its own thread so neither pipe can fill up and block the child.
        nonisolated(unsafe) var errData = Data()
        let errDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errDone.wait()
        if process.terminationStatus != 0 {
            XCTFail(
                "\(arguments.first ?? executable) exited \(process.terminationStatus): "
                    + String(decoding: errData, as: UTF8.self).suffix(2000))
        }
        return String(decoding: outData, as: UTF8.self)
    }

    /// A bounded poll: true as soon as `condition` holds, false after `timeout` seconds.
    private func poll(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}
