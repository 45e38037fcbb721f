// The `celery` index-cleanup strategy end to end: clean_unused_datasets disables the
// documents and enqueues Dify's `remove_document_from_index_task(document_id)` on the
// `dataset` queue, with the console's `document_{id}_indexing` guard set first; a real
// Celery 5 worker with Dify's task signature accepts and runs every message exactly once.

import Foundation
import HeraldCelery
import HeraldIO
import HeraldTasks
import XCTest

final class DatasetCeleryTests: XCTestCase {
    /// Two tenants, each with one stale dataset of `perDataset` completed documents.
    private func staleData(_ f: DatasetFixture, perDataset: Int) throws -> Set<String> {
        var docs: Set<String> = []
        for _ in 0..<2 {
            let t = try f.addTenant()
            let d = try f.addDataset(tenant: t, name: "Docs ✓ \"quoted\"", createdDaysAgo: 90)
            for _ in 0..<perDataset { docs.insert(try f.addDocument(dataset: d, tenant: t, updatedDaysAgo: 60)) }
            let fresh = try f.addDataset(tenant: t, name: "fresh", createdDaysAgo: 90)
            try f.addDocument(dataset: fresh, tenant: t, updatedDaysAgo: 1)
        }
        return docs
    }

    func testCeleryStrategyEnqueuesDifysIndexRemovalTask() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        let docs = try staleData(f, perDataset: 7)
        let strategy = f.celeryStrategy()
        XCTAssertEqual(strategy.queueKey, f.keyPrefix + ":dataset")
        let cleaner = UnusedDatasetCleaner(settings: f.settings(dispatchBatch: 5), plans: f.plans(), strategy: strategy)

        let dry = try cleaner.run(f.conn, now: f.now, dryRun: true)
        XCTAssertEqual(dry.passes[0].indexCleanupsQueued, docs.count)
        XCTAssertEqual(try f.datasetQueue().count, 0, "a dry run enqueues nothing")

        let report = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(report.indexCleanupsDispatched, docs.count)
        let queued = try f.datasetQueue()
        XCTAssertEqual(queued.count, docs.count)
        for m in queued {
            XCTAssertEqual(m.task, "tasks.remove_document_from_index_task.remove_document_from_index_task")
            XCTAssertEqual(m.queue, "dataset")
            XCTAssertEqual(m.kwargs, [:])
            XCTAssertEqual(m.args.count, 1)
            XCTAssertEqual(m.headers["ignore_result"], .bool(true))
            XCTAssertEqual(CeleryUUID(m.id)?.version, 5, "deterministic task id")
        }
        XCTAssertEqual(Set(queued.compactMap { $0.args.first?.stringValue }), docs)
        XCTAssertEqual(Set(queued.map(\.id)).count, docs.count)
        for d in docs {
            let key = strategy.indexingGuardKey(documentID: d)
            XCTAssertEqual(key, f.keyPrefix + ":document_\(d)_indexing")
            XCTAssertEqual(try f.redis.command(["GET", key]).text, "1")
            let ttl = try f.redis.command(["TTL", key]).integer ?? -9
            XCTAssertTrue((1...600).contains(ttl), "guard TTL \(ttl)")
        }
        // A second run sends nothing more.
        _ = try cleaner.run(f.conn, now: f.now)
        XCTAssertEqual(try f.datasetQueue().count, docs.count)
    }

    func testRealCeleryWorkerRunsEveryIndexRemovalOnce() throws {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON is not set") }
            throw XCTSkip("no Python venv with celery")
        }
        let (redisURL, _) = try TestServers.require()
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        let docs = try staleData(f, perDataset: 20)

        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: f.keyPrefix + ":", queues: ["dataset"])
        defer { worker.stop() }

        let report = try UnusedDatasetCleaner(
            settings: f.settings(dispatchBatch: 16), plans: f.plans(),
            strategy: f.celeryStrategy()
        ).run(f.conn, now: f.now)
        XCTAssertEqual(report.indexCleanupsDispatched, docs.count)

        func records() -> [[String: Any]] { worker.records() }
        try waitUntil("the worker ran \(docs.count) tasks", timeout: 60) {
            records().count >= docs.count || !worker.isRunning
        }
        try waitUntil("the queue drained") { try f.datasetQueue().isEmpty }
        let ran = records()
        let logText = worker.logText
        XCTAssertEqual(ran.count, docs.count, "worker log: \(logText.suffix(1500))")
        XCTAssertTrue(
            ran.allSatisfy { $0["event"] as? String == "ran" }, "\(ran.filter { $0["event"] as? String != "ran" })")
        XCTAssertTrue(ran.allSatisfy { $0["task"] as? String == CeleryIndexCleanup.removeDocumentFromIndex.name })
        XCTAssertTrue(ran.allSatisfy { $0["routing_key"] as? String == "dataset" })
        let args = ran.compactMap { ($0["args"] as? [String])?.first }
        XCTAssertEqual(args.count, docs.count)
        XCTAssertEqual(Set(args), docs, "each document's removal ran exactly once, with document_id as its argument")
    }
}
