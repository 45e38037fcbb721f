// A failing run is retried with backoff, then fails with its last error;
// cancellation and deferral are never retried.

import HeraldCore
import Synchronization
import XCTest

final class TaskRetryMiddlewareTests: XCTestCase {
    struct Boom: Error, CustomStringConvertible {
        let n: Int
        var description: String { "boom \(n)" }
    }

    final class FlakyTask: HeraldTask, @unchecked Sendable {
        let failures: Int
        let calls = Mutex(0)
        let descriptor = TaskDescriptor(
            name: .cleanEmbeddingCache, dependencies: [], schedule: nil, queue: "dataset",
            enabledBy: [], lock: LockPolicy.none, missedRuns: .skip)
        init(failures: Int) { self.failures = failures }
        func run(_ context: any TaskContext) async throws -> TaskReport {
            let n = calls.withLock { c -> Int in
                c += 1; return c
            }
            if n <= failures { throw Boom(n: n) }
            return TaskReport(counts: ["rows": 7])
        }
    }

    final class Context: TaskContext, @unchecked Sendable {
        let runID = TaskRunID(rawValue: "run-1")
        let isDryRun = false
        var isCancelled = false
        let settings = TaskSettings([:])
        let clock: any HeraldClock = ManualClock()
        let lines = Mutex<[String]>([])
        func progress(_ message: String, _ details: [(key: String, value: String)]) {
            lines.withLock { $0.append(message) }
        }
    }

    final class Waits: Sendable {
        let list = Mutex<[Duration]>([])
        var values: [Duration] { list.withLock { $0 } }
    }

    func chain(attempts: Int, waits: Waits) -> TaskMiddlewareChain {
        TaskMiddlewareChain([
            TaskRetryMiddleware(
                attempts: attempts, backoff: Backoff(base: .seconds(1), cap: .seconds(8), random: { $0.upperBound }),
                sleep: { d in waits.list.withLock { $0.append(d) } })
        ])
    }

    func testRetriesWithGrowingWaitsThenSucceeds() async throws {
        let task = FlakyTask(failures: 2)
        let waits = Waits()
        let ctx = Context()
        let report = try await chain(attempts: 3, waits: waits).run(task, context: ctx)
        XCTAssertEqual(report.counts["rows"], 7)
        XCTAssertEqual(task.calls.withLock { $0 }, 3)
        XCTAssertEqual(waits.values, [.seconds(1), .seconds(2)])
        XCTAssertEqual(ctx.lines.withLock { $0.count }, 2)
    }

    func testGivesUpWithTheLastError() async {
        let task = FlakyTask(failures: 5)
        let waits = Waits()
        do {
            _ = try await chain(attempts: 3, waits: waits).run(task, context: Context())
            XCTFail("must fail")
        } catch {
            XCTAssertEqual("\(error)", "boom 3")
        }
        XCTAssertEqual(task.calls.withLock { $0 }, 3)
    }

    func testCancellationIsNotRetried() async {
        let ctx = Context()
        ctx.isCancelled = true
        let task = FlakyTask(failures: 1)
        let waits = Waits()
        do {
            _ = try await chain(attempts: 3, waits: waits).run(task, context: ctx)
            XCTFail("must fail")
        } catch {}
        XCTAssertEqual(task.calls.withLock { $0 }, 1)
        XCTAssertTrue(waits.values.isEmpty)
    }

    /// Fails `failures` times, then defers (as a task whose dependency's breaker opened).
    final class DeferringTask: HeraldTask, @unchecked Sendable {
        let failures: Int
        let calls = Mutex(0)
        let descriptor = TaskDescriptor(
            name: .createTiDBServerless, dependencies: [], schedule: nil, queue: "dataset",
            enabledBy: [], lock: LockPolicy.none, missedRuns: .skip)
        init(failures: Int) { self.failures = failures }
        func run(_ context: any TaskContext) async throws -> TaskReport {
            let n = calls.withLock { c -> Int in
                c += 1; return c
            }
            if n <= failures { throw Boom(n: n) }
            throw TaskDeferral(reason: "breaker open")
        }
    }

    func testDeferralIsNotRetriedAndAnEarlierFailureWins() async {
        let waits = Waits()
        let deferring = DeferringTask(failures: 0)
        do {
            _ = try await chain(attempts: 3, waits: waits).run(deferring, context: Context())
            XCTFail("must defer")
        } catch {
            XCTAssertEqual(error as? TaskDeferral, TaskDeferral(reason: "breaker open"))
        }
        XCTAssertEqual(deferring.calls.withLock { $0 }, 1)
        XCTAssertTrue(waits.values.isEmpty)

        let failedFirst = DeferringTask(failures: 1)
        do {
            _ = try await chain(attempts: 3, waits: waits).run(failedFirst, context: Context())
            XCTFail("must fail")
        } catch {
            XCTAssertEqual("\(error)", "boom 1", "the run failed before it deferred")
        }
        XCTAssertEqual(failedFirst.calls.withLock { $0 }, 2)
    }
}
