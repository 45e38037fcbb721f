// The task model without a topology file: the registry refuses duplicate names,
// the graph orders dependencies and names the tasks of a cycle, middleware wraps
// runs in the declared order, and enable flags and schedules read Dify's settings
// with Dify's defaults.

import Foundation
import HeraldCore
import XCTest

/// A task that records its runs and returns a fixed report or error.
struct RecordingTask: HeraldTask {
    struct Failure: Error {}
    let descriptor: TaskDescriptor
    let log: Log
    var fails = false

    init(_ name: TaskName, after dependencies: [TaskName] = [], log: Log = Log(), fails: Bool = false) {
        descriptor = TaskDescriptor(name: name, dependencies: dependencies, queue: "q")
        self.log = log
        self.fails = fails
    }

    func run(_ context: any TaskContext) async throws -> TaskReport {
        log.append("run \(name) dry=\(context.isDryRun)")
        try context.checkCancellation()
        context.progress("working", [(key: "batch", value: "1")])
        if fails { throw Failure() }
        return TaskReport(counts: ["rows": 3])
    }
}

/// A thread-safe list of lines.
final class Log: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ line: String) { lock.withLock { items.append(line) } }
    var lines: [String] { lock.withLock { items } }
}

/// An in-memory context.
struct MemoryContext: TaskContext {
    var runID = TaskRunID(rawValue: "run-1")
    var isDryRun = false
    var isCancelled = false
    var settings = TaskSettings([:])
    var clock: any HeraldClock = ManualClock()
    let log: Log

    func progress(_ message: String, _ details: [(key: String, value: String)]) {
        log.append("progress \(message) " + details.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
}

/// A middleware that logs around `next` and can swap the context.
struct TracingMiddleware: TaskMiddleware {
    let label: String
    let log: Log
    var forceDryRun = false

    func run(_ task: any HeraldTask, context: any TaskContext, next: TaskNext) async throws -> TaskReport {
        log.append("\(label) before \(task.name)")
        defer { log.append("\(label) after") }
        if forceDryRun, let memory = context as? MemoryContext {
            var dry = memory
            dry.isDryRun = true
            return try await next(dry)
        }
        return try await next(context)
    }
}

final class TaskRegistryTests: XCTestCase {
    func testDuplicateNamesAreRejected() throws {
        var registry = TaskRegistry()
        try registry.register(RecordingTask(.cleanMessages))
        XCTAssertThrowsError(try registry.register(RecordingTask(.cleanMessages))) { error in
            XCTAssertEqual(error as? TaskRegistryError, .duplicateName(.cleanMessages))
            XCTAssertEqual("\(error)", "task 'clean_messages' is registered twice")
        }
        XCTAssertThrowsError(try TaskRegistry([RecordingTask("a"), RecordingTask("b"), RecordingTask("a")])) {
            XCTAssertEqual($0 as? TaskRegistryError, .duplicateName("a"))
        }
        XCTAssertEqual(registry.names, [.cleanMessages])
        XCTAssertNotNil(registry[.cleanMessages])
        XCTAssertNil(registry[.cleanEmbeddingCache])
    }

    func testGraphFromRegisteredTasksAndMissingImplementations() throws {
        let registry = try TaskRegistry([
            RecordingTask(.mailCleanDocumentNotify, after: [.cleanUnusedDatasets]),
            RecordingTask(.cleanUnusedDatasets, after: [.cleanEmbeddingCache]),
            RecordingTask(.cleanEmbeddingCache),
        ])
        let graph = try registry.graph()
        XCTAssertEqual(graph.order, [.cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify])
        XCTAssertNoThrow(try registry.checkImplements(graph))
        let bigger = try TaskGraph(graph.descriptors + [TaskDescriptor(name: .cleanMessages, queue: "q")])
        XCTAssertThrowsError(try registry.checkImplements(bigger)) {
            XCTAssertEqual($0 as? TaskRegistryError, .notImplemented([.cleanMessages]))
        }
        let broken = try TaskRegistry([RecordingTask("a", after: ["b"]), RecordingTask("b", after: ["a"])])
        XCTAssertThrowsError(try broken.graph()) {
            XCTAssertEqual($0 as? TaskRegistryError, .graph(.cycle(["a", "b", "a"])))
        }
    }

    func testMiddlewareWrapsInDeclaredOrderAndCanReplaceTheContext() async throws {
        let log = Log()
        let chain = TaskMiddlewareChain([TracingMiddleware(label: "outer", log: log)])
            .appending(TracingMiddleware(label: "inner", log: log, forceDryRun: true))
        let report = try await chain.run(RecordingTask(.cleanMessages, log: log), context: MemoryContext(log: log))
        XCTAssertEqual(report, TaskReport(counts: ["rows": 3]))
        XCTAssertEqual(
            log.lines,
            [
                "outer before clean_messages", "inner before clean_messages", "run clean_messages dry=true",
                "progress working batch=1", "inner after", "outer after",
            ])
    }

    func testMiddlewareSeesTaskErrorsAndCancellation() async throws {
        let log = Log()
        let chain = TaskMiddlewareChain([TracingMiddleware(label: "m", log: log)])
        do {
            _ = try await chain.run(RecordingTask("x", log: log, fails: true), context: MemoryContext(log: log))
            XCTFail("expected the task's error")
        } catch is RecordingTask.Failure {}
        XCTAssertEqual(log.lines.last, "m after")

        var cancelled = MemoryContext(log: log)
        cancelled.isCancelled = true
        do {
            _ = try await TaskMiddlewareChain().run(RecordingTask("x", log: log), context: cancelled)
            XCTFail("expected cancellation")
        } catch let error as TaskCancellation {
            XCTAssertEqual(error.runID.rawValue, "run-1")
        }
    }
}

final class TaskRegistryGraphTests: XCTestCase {
    private func task(_ name: TaskName, _ deps: [TaskName] = []) -> TaskDescriptor {
        TaskDescriptor(name: name, dependencies: deps, queue: "q")
    }

    func testTopologicalOrderIsDeterministic() throws {
        let graph = try TaskGraph([task("d", ["b", "c"]), task("c", ["a"]), task("b", ["a"]), task("a"), task("e")])
        XCTAssertEqual(graph.order, ["a", "c", "b", "d", "e"], "among ready tasks the earliest declared goes first")
        XCTAssertEqual(graph.chain(for: "d"), ["a", "c", "b", "d"])
        XCTAssertEqual(graph.chain(for: "b"), ["a", "b"])
        XCTAssertEqual(graph.chain(for: "zzz"), [])
        XCTAssertEqual(graph.dependents(of: "a"), ["c", "b"])
    }

    func testCycleErrorNamesTheCycle() {
        XCTAssertThrowsError(try TaskGraph([task("a", ["b"]), task("b", ["c"]), task("c", ["a"]), task("x", ["a"])])) {
            XCTAssertEqual($0 as? TaskGraphError, .cycle(["a", "b", "c", "a"]))
            XCTAssertEqual("\($0)", "dependency cycle: a -> b -> c -> a")
        }
        XCTAssertThrowsError(try TaskGraph([task("a", ["a"])])) {
            XCTAssertEqual($0 as? TaskGraphError, .cycle(["a", "a"]))
        }
    }

    func testUnknownAndDuplicateNames() {
        XCTAssertThrowsError(try TaskGraph([task("a", ["ghost"])])) {
            XCTAssertEqual($0 as? TaskGraphError, .unknownDependency(task: "a", dependency: "ghost"))
        }
        XCTAssertThrowsError(try TaskGraph([task("a"), task("a")])) {
            XCTAssertEqual($0 as? TaskGraphError, .duplicateTask("a"))
        }
    }
}
