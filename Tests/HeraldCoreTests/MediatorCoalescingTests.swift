// Concurrent triggers: a tick or request that arrives while the same task is
// planned or running joins that run instead of starting a second one, a chain
// that needs a running task waits for it, and every chain that joined a run is
// told when it ends. Dry and real runs never merge.

import HeraldCore
import XCTest

final class MediatorCoalescingTests: XCTestCase {
    func testSecondTickWhileRunningIsCoalesced() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let first = mediator.handle(.tick(.cleanMessages))
        let runID = first.runs[0].runID
        let second = mediator.handle(.tick(.cleanMessages))
        XCTAssertEqual(second.steps, [.coalesced(.cleanMessages, into: runID, running: true)])
        XCTAssertEqual(mediator.activeRuns.count, 1)

        let done = mediator.handle(.finished(.cleanMessages, runID: runID, outcome: .succeeded))
        XCTAssertEqual(
            done.steps,
            [
                .chainFinished(first.chain!, target: .cleanMessages, outcome: .succeeded),
                .chainFinished(second.chain!, target: .cleanMessages, outcome: .succeeded),
            ], "both triggers learn the outcome of the one run")
        XCTAssertEqual(mediator.handle(.tick(.cleanMessages)).runTasks, [.cleanMessages], "a new tick runs again")
    }

    func testTriggerForTaskWaitingInAnotherChainJoinsIt() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let chain = mediator.handle(.tick(.mailCleanDocumentNotify))
        guard case .waiting(.cleanUnusedDatasets, let unusedID, _) = chain.steps[1] else {
            return XCTFail("\(chain.steps)")
        }
        let request = mediator.handle(.request(.cleanUnusedDatasets, dryRun: false))
        XCTAssertEqual(
            request.steps, [.coalesced(.cleanUnusedDatasets, into: unusedID, running: false)],
            "its dependencies are already handled by the first chain")
        XCTAssertEqual(mediator.activeRuns.count, 3)
    }

    func testChainNeedingARunningTaskWaitsForThatRun() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let embedding = mediator.handle(.tick(.cleanEmbeddingCache))
        let embeddingID = embedding.runs[0].runID
        let unused = mediator.handle(.tick(.cleanUnusedDatasets))
        XCTAssertEqual(unused.runTasks, [], "embedding is not started twice")
        XCTAssertEqual(unused.steps.first, .coalesced(.cleanEmbeddingCache, into: embeddingID, running: true))
        guard case .waiting(.cleanUnusedDatasets, let unusedID, [.cleanEmbeddingCache]) = unused.steps.last else {
            return XCTFail("\(unused.steps)")
        }

        let done = mediator.handle(.finished(.cleanEmbeddingCache, runID: embeddingID, outcome: .succeeded))
        XCTAssertEqual(
            done.steps,
            [
                .chainFinished(embedding.chain!, target: .cleanEmbeddingCache, outcome: .succeeded),
                .run(
                    TaskRun(
                        task: .cleanUnusedDatasets, runID: unusedID, chain: unused.chain!, dryRun: false, cause: .tick)),
            ])
    }

    func testFailureOfSharedRunSkipsEveryChainWaitingOnIt() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let embedding = mediator.handle(.tick(.cleanEmbeddingCache))
        let unused = mediator.handle(.tick(.cleanUnusedDatasets))
        let mail = mediator.handle(.tick(.mailCleanDocumentNotify))
        XCTAssertEqual(
            mail.steps.count, 2, "mail joins the waiting unused run (which owns embedding) and waits: \(mail.steps)")
        let failed = mediator.handle(
            .finished(.cleanEmbeddingCache, runID: embedding.runs[0].runID, outcome: .failed(reason: "timeout")))
        XCTAssertEqual(failed.skipped.map(\.task), [.cleanUnusedDatasets, .mailCleanDocumentNotify])
        let finishedChains = failed.steps.compactMap { step -> ChainID? in
            if case .chainFinished(let chain, _, _) = step { return chain } else { return nil }
        }
        XCTAssertEqual(finishedChains, [embedding.chain!, unused.chain!, mail.chain!])
        XCTAssertTrue(mediator.activeRuns.isEmpty)
    }

    func testDryRunAndRealRunDoNotMerge() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let real = mediator.handle(.tick(.cleanMessages))
        let dry = mediator.handle(.request(.cleanMessages, dryRun: true))
        XCTAssertEqual(dry.runs.map(\.dryRun), [true], "a dry run must not be satisfied by a real one")
        XCTAssertNotEqual(dry.runs[0].runID, real.runs[0].runID)
        let again = mediator.handle(.request(.cleanMessages, dryRun: true))
        XCTAssertEqual(again.steps, [.coalesced(.cleanMessages, into: dry.runs[0].runID, running: true)])
    }

    func testManyConcurrentTriggersPlanOneRunPerTask() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        var started: [TaskName] = []
        let inputs: [MediatorInput] = [
            .tick(.mailCleanDocumentNotify), .tick(.cleanUnusedDatasets),
            .request(.mailCleanDocumentNotify, dryRun: false),
            .tick(.cleanEmbeddingCache), .tick(.mailCleanDocumentNotify),
        ]
        for input in inputs { started += mediator.handle(input).runTasks }
        XCTAssertEqual(started, [.cleanEmbeddingCache])
        XCTAssertEqual(
            mediator.activeRuns.map(\.task), [.cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify])

        // Drive the chain to the end as an executor would.
        var pending = mediator.activeRuns.filter(\.isRunning).map { ($0.task, $0.runID) }
        var order: [TaskName] = []
        while let (task, runID) = pending.first {
            pending.removeFirst()
            order.append(task)
            pending += mediator.handle(.finished(task, runID: runID, outcome: .succeeded)).runs.map {
                ($0.task, $0.runID)
            }
        }
        XCTAssertEqual(order, [.cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify])
        XCTAssertTrue(mediator.activeRuns.isEmpty)
    }

    func testReloadAppliesToNewTriggersOnly() throws {
        var mediator = Mediator(graph: try MediatorFixture.datasetGraph())
        let running = mediator.handle(.tick(.cleanMessages))
        mediator.reload(graph: try MediatorFixture.datasetGraph(), disabled: [.cleanMessages])
        XCTAssertEqual(mediator.handle(.tick(.cleanMessages)).skipped.map(\.reason), [.disabled])
        let done = mediator.handle(.finished(.cleanMessages, runID: running.runs[0].runID, outcome: .succeeded))
        XCTAssertEqual(done.steps, [.chainFinished(running.chain!, target: .cleanMessages, outcome: .succeeded)])
    }
}
