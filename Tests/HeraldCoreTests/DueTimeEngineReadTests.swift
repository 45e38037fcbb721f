// The due-time engine's reads: hints coalesced into one read in flight, re-reads of
// rows a claim did not take (held by another instance), rows disarmed when a read no
// longer finds them, and the arming window reloaded on its interval or on request.

import HeraldCore
import XCTest

final class DueTimeEngineReadTests: XCTestCase {
    typealias Engine = DueTimeEngine<Int>
    let t0 = DueTimeEngineTests.t0
    let second: Int64 = 1_000_000

    /// A running engine with an empty first window, at `t0`.
    func started(_ options: Engine.Options = Engine.Options()) -> Engine {
        var engine = Engine(options: options)
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded([], databaseNowMicros: t0, now: now)
        return engine
    }

    func reads(_ actions: [Engine.Action]) -> [[Int]] {
        actions.compactMap { if case .read(let ids) = $0 { return ids } else { return nil } }
    }

    func testThreeThousandHintsForOneRowCollapseIntoOneRead() {
        var engine = started()
        let now = DueTimeInstant(micros: t0)
        XCTAssertEqual(reads(engine.hints(Array(repeating: 7, count: 3_000), now: now)), [[7]], "one burst: one read")
        _ = engine.rowsRead([(7, t0 + 60 * second)], databaseNowMicros: t0, now: now)

        // One by one: the first starts a read, the 2,999 others wait for it and make one more.
        var asked: [[Int]] = []
        for _ in 0..<3_000 { asked += reads(engine.hint(7, now: now)) }
        XCTAssertEqual(asked, [[7]])
        XCTAssertEqual(engine.pendingReadCount, 1)
        asked += reads(engine.rowsRead([(7, t0 + 60 * second)], databaseNowMicros: t0, now: now))
        XCTAssertEqual(asked, [[7], [7]])
        XCTAssertEqual(reads(engine.rowsRead([(7, t0 + 60 * second)], databaseNowMicros: t0, now: now)), [])
        XCTAssertFalse(engine.isReadInFlight)
        XCTAssertEqual(engine.armedDue(of: 7), t0 + 60 * second)
    }

    func testHintsArrivingDuringAReadAreMergedIntoTheNextRead() {
        var options = Engine.Options()
        options.readBatchSize = 3
        var engine = started(options)
        let now = DueTimeInstant(micros: t0)
        XCTAssertEqual(reads(engine.hint(1, now: now)), [[1]])
        for id in [2, 3, 1, 2, 4, 5] { XCTAssertEqual(reads(engine.hint(id, now: now)), [], "one read in flight") }
        XCTAssertTrue(engine.isReadInFlight)
        XCTAssertEqual(reads(engine.rowsRead([], databaseNowMicros: t0, now: now)), [[2, 3, 1]], "merged, in order")
        XCTAssertEqual(reads(engine.rowsRead([], databaseNowMicros: t0, now: now)), [[4, 5]], "at most a batch each")
        XCTAssertEqual(reads(engine.rowsRead([], databaseNowMicros: t0, now: now)), [])
    }

    func testReadDisarmsMissingRowsAndClaimsRowsFoundDue() {
        var engine = started()
        let now = DueTimeInstant(micros: t0)
        _ = engine.windowLoaded(
            [(1, t0 + 60 * second), (2, t0 + 70 * second), (9, t0 + 80 * second)],
            databaseNowMicros: t0, now: now)
        XCTAssertEqual(engine.armedCount, 3)
        _ = engine.hints([1, 2], now: now)
        // Row 1 was disabled, row 2 moved within the lead, row 9 was found through its trigger.
        let actions = engine.rowsRead([(2, t0 + 1 * second)], asked: [9], databaseNowMicros: t0, now: now)
        XCTAssertEqual(actions.first, .claim([2], cause: .event), "found due: claimed at once")
        XCTAssertNil(engine.armedDue(of: 1))
        XCTAssertNil(engine.armedDue(of: 9))
        XCTAssertEqual(engine.armedCount, 0)
        XCTAssertEqual(engine.claimsInFlight, 1)
    }

    func testRowsHeldElsewhereAreReRead() {
        let h = DueTimeHarness()
        h.rows = [1: t0 + 30 * second, 2: t0 + 30 * second]
        h.lockedElsewhere = [2]
        h.start()
        h.run(forMicros: 28 * second)
        XCTAssertEqual(h.claims.map(\.ids), [[1, 2]])
        h.run(forMicros: 4_000)
        XCTAssertEqual(h.actions { $0 == .read([2]) }.count, 0, "not at once")
        h.run(forMicros: 1_000)
        XCTAssertEqual(h.actions { $0 == .read([2]) }.map(\.at.micros), [t0 + 28 * second + 5_000], "5 ms later")
        XCTAssertGreaterThan(h.claims.count, 1, "still due: claimed again")
        // The other instance commits: the row has moved on.
        h.lockedElsewhere = []
        h.rows[2] = t0 + 90 * second
        h.run(forMicros: 10_000)
        let claimsThen = h.claims.count
        h.run(forMicros: 2_500_000)
        XCTAssertEqual(h.claims.count, claimsThen, "settled: no more claims")
        XCTAssertEqual(h.engine.armedDue(of: 2), t0 + 90 * second)
        XCTAssertEqual(h.pushes.map(\.id), [1])
        XCTAssertLessThan(h.ticks, 20, "one wake-up per re-read, not a busy loop")
    }

    func testExplicitRowHeldElsewhereIsReReadAndAHintMakesItImmediate() {
        var engine = started()
        var now = DueTimeInstant(micros: t0)
        XCTAssertEqual(engine.rowHeldElsewhere(3, now: now), [.armTimer(at: now.advanced(byMicros: 5_000))])
        XCTAssertEqual(engine.pendingReadCount, 1)
        now = now.advanced(byMicros: 5_000)
        XCTAssertEqual(reads(engine.tick(now: now)), [[3]])
        _ = engine.rowsRead([], databaseNowMicros: t0, now: now)
        _ = engine.rowHeldElsewhere(4, now: now)
        XCTAssertEqual(reads(engine.hint(4, now: now)), [[4]], "a hint does not wait for the delay")
        XCTAssertEqual(engine.pendingReadCount, 0)
    }

    func testAHintForARowBeingClaimedIsReadAfterTheClaim() {
        var engine = started()
        let now = DueTimeInstant(micros: t0)
        _ = engine.windowLoaded([(1, t0 + 1 * second)], databaseNowMicros: t0, now: now)
        XCTAssertEqual(engine.claimsInFlight, 1)
        _ = engine.hint(1, now: now)
        let read = engine.rowsRead([(1, t0 + 1 * second)], databaseNowMicros: t0, now: now)
        XCTAssertFalse(read.contains { if case .claim = $0 { return true } else { return false } }, "not claimed twice")
        let answered = engine.claimSucceeded(
            [1], claim: 1, fires: [(1, t0 + 1 * second)], next: [(1, t0 + 61 * second)],
            now: now)
        XCTAssertEqual(reads(answered), [[1]], "read again once the claim is answered")
    }

    func testWindowReloadsOnItsInterval() {
        let h = DueTimeHarness()
        h.start()
        h.rows[5] = t0 + 350 * second
        h.run(forMicros: 181 * second)
        let loads = h.actions { if case .loadWindow = $0 { return true } else { return false } }
        XCTAssertEqual(loads.map(\.at.micros), [0, 60, 120, 180].map { t0 + $0 * second })
        XCTAssertEqual(loads.last?.action, .loadWindow(untilMicros: t0 + 480 * second, limit: 200_000))
        XCTAssertEqual(h.engine.windowLoads, 4)
        XCTAssertEqual(h.engine.armedDue(of: 5), t0 + 350 * second, "a row comes within the horizon: armed")
    }

    func testReloadRequestsAreCoalescedWithTheLoadInFlight() {
        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        XCTAssertTrue(engine.isWindowLoadInFlight)
        XCTAssertEqual(engine.reloadWindow(now: now), [])
        XCTAssertEqual(engine.reloadWindow(now: now), [])
        let after = engine.windowLoaded([], databaseNowMicros: t0 + 50_000, now: now.advanced(byMicros: 50_000))
        XCTAssertEqual(
            after.first, .loadWindow(untilMicros: t0 + 50_000 + 300 * second, limit: 200_000),
            "the requests made during the load make one more")
        _ = engine.windowLoaded([], databaseNowMicros: t0 + 90_000, now: now.advanced(byMicros: 90_000))
        XCTAssertEqual(engine.timerDeadline, now.advanced(byMicros: 50_000 + 60 * second), "then on the interval")
        XCTAssertEqual(engine.lastWindowLoadStart, now.advanced(byMicros: 50_000))
    }
}
