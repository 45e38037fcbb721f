// The mediator's rules, with no server: chains run dependencies first, a diamond
// runs its shared root once, a failure skips the rest with its reason, dry runs
// stay dry all the way down, and triggers that arrive while a task is planned or
// running coalesce into that run.

import HeraldCore
import XCTest

/// Builds graphs and drives a mediator the way an executor would.
enum MediatorFixture {
    static func task(_ name: TaskName, after dependencies: [TaskName] = []) -> TaskDescriptor {
        TaskDescriptor(name: name, dependencies: dependencies, queue: "q")
    }

    /// Dify's dataset chain: embedding cache → unused datasets → notify mail.
    static func datasetGraph() throws -> TaskGraph {
        try TaskGraph([
            task(.mailCleanDocumentNotify, after: [.cleanUnusedDatasets]),
            task(.cleanUnusedDatasets, after: [.cleanEmbeddingCache]),
            task(.cleanEmbeddingCache),
            task(.cleanMessages),
        ])
    }

    /// d needs b and c; both need a.
    static func diamond() throws -> TaskGraph {
        try TaskGraph([task("d", after: ["b", "c"]), task("b", after: ["a"]), task("c", after: ["a"]), task("a")])
    }
}

extension MediatorPlan {
    var runTasks: [TaskName] { runs.map(\.task) }
    func run(_ task: TaskName) -> TaskRun? { runs.first { $0.task == task } }
}

final class MediatorChainTests: XCTestCase {
    func testMailRunsEmbeddingThenUnusedThenMail() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.request(.mailCleanDocumentNotify, dryRun: false))
        let chain = try XCTUnwrap(plan.chain)
        XCTAssertEqual(plan.runTasks, [.cleanEmbeddingCache])
        guard plan.steps.count == 3,
            case .waiting(.cleanUnusedDatasets, let unusedID, [.cleanEmbeddingCache]) = plan.steps[1],
            case .waiting(.mailCleanDocumentNotify, let mailID, [.cleanUnusedDatasets]) = plan.steps[2]
        else { return XCTFail("unexpected plan \(plan.steps)") }
        let embedding = try XCTUnwrap(plan.run(.cleanEmbeddingCache))
        XCTAssertEqual(embedding.cause, .dependency(of: .mailCleanDocumentNotify))
        XCTAssertEqual(embedding.chain, chain)

        let second = mediator.handle(.finished(.cleanEmbeddingCache, runID: embedding.runID, outcome: .succeeded))
        XCTAssertEqual(
            second.steps,
            [
                .run(
                    TaskRun(
                        task: .cleanUnusedDatasets, runID: unusedID, chain: chain, dryRun: false,
                        cause: .dependency(of: .mailCleanDocumentNotify)))
            ])

        let third = mediator.handle(.finished(.cleanUnusedDatasets, runID: unusedID, outcome: .succeeded))
        XCTAssertEqual(
            third.steps,
            [
                .run(
                    TaskRun(
                        task: .mailCleanDocumentNotify, runID: mailID, chain: chain, dryRun: false,
                        cause: .request))
            ])

        let last = mediator.handle(.finished(.mailCleanDocumentNotify, runID: mailID, outcome: .succeeded))
        XCTAssertEqual(last.steps, [.chainFinished(chain, target: .mailCleanDocumentNotify, outcome: .succeeded)])
        XCTAssertTrue(mediator.activeRuns.isEmpty)
    }

    func testTaskWithoutDependenciesRunsAlone() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.tick(.cleanMessages))
        XCTAssertEqual(plan.runTasks, [.cleanMessages])
        XCTAssertEqual(plan.runs.first?.cause, .tick)
        XCTAssertEqual(plan.steps.count, 1)
    }

    func testTriggeringAnUpstreamTaskDoesNotRunItsDependents() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.tick(.cleanEmbeddingCache))
        XCTAssertEqual(plan.runTasks, [.cleanEmbeddingCache])
        let done = mediator.handle(.finished(.cleanEmbeddingCache, runID: plan.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(done.runTasks, [])
        XCTAssertEqual(done.steps, [.chainFinished(plan.chain!, target: .cleanEmbeddingCache, outcome: .succeeded)])
    }

    func testDiamondRunsSharedRootOnceThenBothBranchesThenTarget() throws {
        var mediator = Mediator(graph: try MediatorFixture.diamond())
        let plan = mediator.handle(.tick("d"))
        XCTAssertEqual(plan.runTasks, ["a"])
        XCTAssertEqual(plan.steps.count, 4, "a runs; b, c and d wait: \(plan.steps)")
        guard case .waiting("d", _, let forD) = plan.steps[3] else { return XCTFail("\(plan.steps)") }
        XCTAssertEqual(forD, ["b", "c"])

        let afterA = mediator.handle(.finished("a", runID: plan.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(afterA.runTasks, ["b", "c"], "both branches start once the root succeeded")
        let afterB = mediator.handle(.finished("b", runID: afterA.run("b")!.runID, outcome: .succeeded))
        XCTAssertEqual(afterB.runTasks, [], "d still waits for c")
        let afterC = mediator.handle(.finished("c", runID: afterA.run("c")!.runID, outcome: .succeeded))
        XCTAssertEqual(afterC.runTasks, ["d"])
    }

    func testFailedUpstreamSkipsTheRestWithTheReason() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.request(.mailCleanDocumentNotify, dryRun: false))
        let failed = mediator.handle(
            .finished(.cleanEmbeddingCache, runID: plan.runs[0].runID, outcome: .failed(reason: "connection refused")))
        let reason = SkipReason.dependencyFailed(.cleanEmbeddingCache, reason: "connection refused")
        XCTAssertEqual(failed.skipped.map(\.task), [.cleanUnusedDatasets, .mailCleanDocumentNotify])
        XCTAssertEqual(failed.skipped.map(\.reason), [reason, reason], "the root cause is named all the way down")
        XCTAssertEqual(failed.runTasks, [])
        XCTAssertTrue(
            failed.steps.contains(
                .chainFinished(
                    plan.chain!, target: .mailCleanDocumentNotify, outcome: .skipped(reason: reason.description))))
        XCTAssertTrue(mediator.activeRuns.isEmpty)
        XCTAssertEqual(reason.description, "dependency clean_embedding_cache_task failed: connection refused")
    }

    func testFailureInOneDiamondBranchSkipsTargetWhileOtherBranchFinishes() throws {
        var mediator = Mediator(graph: try MediatorFixture.diamond())
        let plan = mediator.handle(.tick("d"))
        let afterA = mediator.handle(.finished("a", runID: plan.runs[0].runID, outcome: .succeeded))
        let failedB = mediator.handle(.finished("b", runID: afterA.run("b")!.runID, outcome: .failed(reason: "boom")))
        XCTAssertEqual(failedB.skipped.map(\.task), ["d"])
        let doneC = mediator.handle(.finished("c", runID: afterA.run("c")!.runID, outcome: .succeeded))
        XCTAssertEqual(doneC.steps, [], "c was nobody's target and d is gone")
        XCTAssertTrue(mediator.activeRuns.isEmpty)
    }

    func testSkippedUpstreamSkipsDependentsWithItsReason() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.tick(.cleanUnusedDatasets))
        let skipped = mediator.handle(
            .finished(.cleanEmbeddingCache, runID: plan.runs[0].runID, outcome: .skipped(reason: "lock held")))
        XCTAssertEqual(skipped.skipped.map(\.reason), [.dependencySkipped(.cleanEmbeddingCache, reason: "lock held")])
    }

    func testDryRunPropagatesToEveryRunOfTheChain() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let plan = mediator.handle(.request(.mailCleanDocumentNotify, dryRun: true))
        XCTAssertEqual(plan.runs.map(\.dryRun), [true])
        let second = mediator.handle(.finished(.cleanEmbeddingCache, runID: plan.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(second.runs.map(\.dryRun), [true])
        let third = mediator.handle(.finished(.cleanUnusedDatasets, runID: second.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(third.runs.map(\.dryRun), [true])
        XCTAssertEqual(third.runTasks, [.mailCleanDocumentNotify])
    }

    func testTickOfDisabledTaskIsSkippedButRequestRunsIt() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph(), disabled: [.cleanMessages])
        let tick = mediator.handle(.tick(.cleanMessages))
        XCTAssertEqual(tick.steps, [.skipped(.cleanMessages, runID: nil, reason: .disabled)])
        XCTAssertNil(tick.chain)
        XCTAssertEqual(mediator.handle(.request(.cleanMessages, dryRun: false)).runTasks, [.cleanMessages])
    }

    func testDisabledDependencyIsSkippedAndDoesNotHoldBackTheRest() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph(), disabled: [.cleanUnusedDatasets])
        let plan = mediator.handle(.tick(.mailCleanDocumentNotify))
        XCTAssertEqual(plan.skipped.map(\.task), [.cleanUnusedDatasets])
        XCTAssertEqual(plan.skipped.map(\.reason), [.disabled])
        XCTAssertEqual(
            plan.runTasks, [.mailCleanDocumentNotify],
            "the mail runs at once; embedding was needed only by the disabled task")
        let done = mediator.handle(.finished(.mailCleanDocumentNotify, runID: plan.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(done.steps, [.chainFinished(plan.chain!, target: .mailCleanDocumentNotify, outcome: .succeeded)])
    }

    func testDisabledDependencyStillRunsWhatOtherPathsNeed() throws {
        var mediator = Mediator(graph: try MediatorFixture.diamond(), disabled: ["b"])
        let plan = mediator.handle(.tick("d"))
        XCTAssertEqual(plan.skipped.map(\.task), ["b"])
        XCTAssertEqual(plan.runTasks, ["a"], "c still needs a")
        let afterA = mediator.handle(.finished("a", runID: plan.runs[0].runID, outcome: .succeeded))
        let afterC = mediator.handle(.finished("c", runID: afterA.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(afterC.runTasks, ["d"])
    }

    func testRejectsUnknownTasksAndRuns() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        XCTAssertEqual(mediator.handle(.tick("nope")).steps, [.rejected("nope", .unknownTask)])
        let ghost = TaskRunID(rawValue: "run-99")
        XCTAssertEqual(
            mediator.handle(.finished(.cleanMessages, runID: ghost, outcome: .succeeded)).steps,
            [.rejected(.cleanMessages, .unknownRun(ghost))])

        let plan = mediator.handle(.request(.cleanUnusedDatasets, dryRun: false))
        guard case .waiting(_, let waitingID, _) = plan.steps[1] else { return XCTFail("\(plan.steps)") }
        XCTAssertEqual(
            mediator.handle(.finished(.cleanUnusedDatasets, runID: waitingID, outcome: .succeeded)).steps,
            [.rejected(.cleanUnusedDatasets, .notStarted(waitingID))])
        XCTAssertEqual(
            mediator.handle(.finished(.cleanMessages, runID: plan.runs[0].runID, outcome: .succeeded)).steps,
            [.rejected(.cleanMessages, .unknownRun(plan.runs[0].runID))], "a run id belongs to one task")
    }

    func testRunIDsCarryThePrefix() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph(), runIDPrefix: "host-1/")
        XCTAssertEqual(mediator.handle(.tick(.cleanMessages)).runs[0].runID.rawValue, "host-1/1")
        XCTAssertEqual(mediator.handle(.tick(.cleanEmbeddingCache)).runs[0].runID.rawValue, "host-1/2")
    }
}
