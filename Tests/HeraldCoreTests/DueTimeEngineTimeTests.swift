// The due-time engine against time and failure: a database clock ahead of or behind the
// local one, due times an hour apart across daylight-saving changes, a database whose
// claims, reads and window loads keep failing (backoff to a cap, then recovery), and
// the graceful drain on stop.

import HeraldCore
import XCTest

final class DueTimeEngineTimeTests: XCTestCase {
    typealias Engine = DueTimeEngine<Int>
    let t0 = DueTimeEngineTests.t0
    let second: Int64 = 1_000_000

    // MARK: Clock skew

    func checkSkew(_ skew: Int64, file: StaticString = #filePath, line: UInt = #line) {
        let h = DueTimeHarness(skew: skew)
        h.rows = [1: t0 + 30 * second, 2: t0 + 31 * second + 500_000]
        h.start()
        XCTAssertEqual(h.engine.offsetMicros, skew, "measured at the window load", file: file, line: line)
        h.run(forMicros: 40 * second)
        XCTAssertEqual(
            h.claims.map(\.atDB), [t0 + 28 * second, t0 + 29 * second + 500_000],
            "claimed a lead ahead by the database clock", file: file, line: line)
        XCTAssertEqual(h.pushes.map(\.id), [1, 2], file: file, line: line)
        for p in h.pushes {
            XCTAssertEqual(p.pushedAt, p.due, "pushed at its database instant", file: file, line: line)
        }
        let pushedAtLocal = h.actions { if case .push = $0 { return true } else { return false } }.map(\.at.micros)
        XCTAssertEqual(
            pushedAtLocal, [t0 + 30 * second - skew, t0 + 31 * second + 500_000 - skew],
            "the local timer is shifted by the skew", file: file, line: line)
    }

    func testDatabaseClockFiveSecondsAhead() { checkSkew(5 * second) }

    func testDatabaseClockFiveSecondsBehind() { checkSkew(-5 * second) }

    func testOffsetFollowsTheLatestMeasurement() {
        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded([(1, t0 + 5 * second + 30 * second)], databaseNowMicros: t0 + 5 * second, now: now)
        XCTAssertEqual(engine.timerDeadline, DueTimeInstant(micros: t0 + 28 * second))
        _ = engine.hint(9, now: now)
        // The database clock read 10 ms before the answer arrived, now 3 s ahead.
        let actions = engine.rowsRead(
            [], databaseNowMicros: t0 + 3 * second - 10_000,
            measuredAt: now.advanced(byMicros: -10_000), now: now)
        XCTAssertEqual(engine.offsetMicros, 3 * second)
        XCTAssertEqual(engine.databaseNow(now), t0 + 3 * second)
        XCTAssertEqual(actions, [.armTimer(at: DueTimeInstant(micros: t0 + 30 * second))], "timers follow the offset")
    }

    // MARK: Daylight-saving time

    func testDueTimesAnHourApartAcrossDSTChangesFireInOrder() throws {
        let newYork = try CronSchedule("30 * * * *", timeZone: "America/New_York")
        // (start, first, second): the fall-back overlap (01:30 EDT, then 01:30 EST) and the
        // spring-forward gap (01:30 EST, then 03:30 EDT), an hour apart in real time each.
        let cases: [(Int64, Int64, Int64)] = [
            (1_793_509_200, 1_793_511_000, 1_793_514_600),  // 2026-11-01 05:00Z; 05:30Z; 06:30Z
            (1_772_949_600, 1_772_951_400, 1_772_955_000),  // 2026-03-08 06:00Z; 06:30Z; 07:30Z
        ]
        for (start, first, later) in cases {
            XCTAssertEqual(try newYork.nextFire(afterUnixMicros: start * second).unixSeconds, first)
            XCTAssertEqual(try newYork.nextFire(afterUnixMicros: first * second).unixSeconds, later)
            var options = Engine.Options()
            options.horizonMicros = 7_200 * second
            let h = DueTimeHarness(options: options, startDB: start * second)
            h.rows = [2: later * second, 1: first * second]
            h.start()
            XCTAssertEqual(h.engine.armedCount, 2, "both armed at once")
            h.run(forMicros: 7_200 * second)
            XCTAssertEqual(h.pushes.map(\.id), [1, 2], "in order")
            XCTAssertEqual(h.pushes.map(\.pushedAt), [first * second, later * second], "each at its instant")
            XCTAssertEqual(h.pushes[1].pushedAt - h.pushes[0].pushedAt, 3_600 * second)
        }
    }

    // MARK: A failing database

    func testFailingClaimsBackOffToTheCapWithoutABusyLoopThenRecover() {
        var options = Engine.Options()
        options.backoffBaseMicros = 500_000
        options.backoffCapMicros = 8 * second
        options.claimBatchSize = 1
        let h = DueTimeHarness(options: options)
        h.rows = [1: t0 + 10 * second, 2: t0 + 10 * second, 3: t0 + 10 * second]
        h.failClaims = true
        h.start()
        h.run(forMicros: 60 * second)
        let delays = h.log.compactMap { if case .retryAfter(let d) = $0.action { return d } else { return nil } }
        XCTAssertEqual(Array(delays.prefix(6)), [500_000, 1, 2, 4, 8, 8].map { $0 == 500_000 ? $0 : $0 * second })
        XCTAssertTrue(delays.allSatisfy { $0 <= 8 * second }, "capped")
        XCTAssertEqual(h.claims.first.map(\.atDB), t0 + 8 * second)
        let perInstant = Dictionary(grouping: h.claims.dropFirst(2), by: \.atDB)
        XCTAssertTrue(perInstant.values.allSatisfy { $0.count == 1 }, "one claim at a time while failing")
        XCTAssertLessThan(h.claims.count, 12, "\(h.claims.count) claims in a minute: no busy loop")
        XCTAssertLessThan(h.ticks, 20)
        XCTAssertEqual(h.engine.claimFailures, h.claims.count)
        XCTAssertTrue(h.pushes.isEmpty)

        h.failClaims = false
        h.run(forMicros: 10 * second)
        XCTAssertEqual(h.pushes.map(\.id).sorted(), [1, 2, 3], "recovered: every row fires, late")
        XCTAssertTrue(h.pushes.allSatisfy { $0.pushedAt > $0.due })
        XCTAssertEqual(h.engine.claimFailures, 0, "reset on success")
        XCTAssertEqual(h.engine.pendingClaimCount, 0)

        h.rows[4] = t0 + 75 * second
        h.failClaims = true
        h.feed(h.engine.hint(4, now: h.now))
        let outageStart = h.now
        h.run(forMicros: 10 * second)
        let again = h.log.filter { $0.at > outageStart }.compactMap {
            if case .retryAfter(let d) = $0.action { return d } else { return nil }
        }
        XCTAssertEqual(again, [500_000, 1_000_000, 2_000_000, 4_000_000], "the next outage starts from the base again")
    }

    func testFailedReadsAndWindowLoadsAreRetriedAfterABackoff() {
        var engine = Engine()
        var now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        XCTAssertEqual(engine.windowLoadFailed(now: now), [.armTimer(at: now.advanced(byMicros: 500_000))])
        now = now.advanced(byMicros: 500_000)
        XCTAssertEqual(engine.tick(now: now), [.loadWindow(untilMicros: t0 + 500_000 + 300 * second, limit: 200_000)])
        XCTAssertEqual(engine.windowLoadFailed(now: now), [.armTimer(at: now.advanced(byMicros: 1_000_000))], "doubled")
        now = now.advanced(byMicros: 1_000_000)
        _ = engine.tick(now: now)
        _ = engine.windowLoaded([], databaseNowMicros: now.micros, now: now)
        XCTAssertEqual(engine.timerDeadline, now.advanced(byMicros: 60 * second), "back on the interval")

        XCTAssertEqual(engine.hint(4, now: now).first, .read([4]))
        XCTAssertEqual(engine.readFailed(now: now), [.armTimer(at: now.advanced(byMicros: 500_000))])
        XCTAssertEqual(engine.pendingReadCount, 1)
        now = now.advanced(byMicros: 500_000)
        XCTAssertEqual(engine.tick(now: now).first, .read([4]), "read again")
        _ = engine.readFailed(now: now)
        XCTAssertEqual(engine.timerDeadline, now.advanced(byMicros: 1_000_000))
        XCTAssertEqual(engine.hint(4, now: now).first, .read([4]), "a new hint does not wait")
    }

    // MARK: Graceful drain

    func testDrainPushesFiresWithinTheLeadAtTheirInstantThenStops() {
        let h = DueTimeHarness()
        h.rows = [1: t0 + 30 * second, 2: t0 + 31 * second + 500_000, 3: t0 + 40 * second]
        h.start()
        h.run(forMicros: 29 * second + 500_000)
        XCTAssertEqual(h.engine.heldFireCount, 2, "rows 1 and 2 claimed ahead")
        let stop = h.engine.stop(now: h.now)
        XCTAssertEqual(stop, [], "nothing to hand back")
        XCTAssertEqual(h.engine.timerDeadline, DueTimeInstant(micros: t0 + 30 * second), "armed for the first fire")
        h.feed(stop)
        XCTAssertEqual(h.engine.state, .draining)
        XCTAssertEqual(h.engine.hint(3, now: h.now), [], "no more reads")
        h.run(forMicros: 20 * second)
        XCTAssertEqual(h.pushes.map(\.id), [1, 2])
        XCTAssertTrue(h.pushes.allSatisfy { $0.pushedAt == $0.due }, "each at its instant")
        XCTAssertEqual(h.claims.count, 2, "row 3 is left to another instance")
        XCTAssertEqual(h.log.last?.action, .stopped)
        XCTAssertEqual(h.log.last?.at.micros, t0 + 31 * second + 500_000)
        XCTAssertEqual(h.engine.state, .stopped)
        XCTAssertNil(h.engine.timerDeadline)
        XCTAssertEqual(h.engine.stop(now: h.now), [])
    }

    func testDrainHandsBackFiresBeyondTheDrainWindow() {
        var options = Engine.Options()
        options.drainWindowMicros = 1 * second
        let h = DueTimeHarness(options: options)
        h.rows = [1: t0 + 30 * second, 2: t0 + 31 * second + 500_000]
        h.start()
        h.run(forMicros: 29 * second + 500_000)
        let stop = h.engine.stop(now: h.now)
        XCTAssertEqual(
            stop.first, .handBack([Engine.Release(claim: 2, dueAtMicros: t0 + 31 * second + 500_000, ids: [2])]),
            "beyond the window: released for a peer at once")
        h.feed(stop)
        h.run(forMicros: 5 * second)
        XCTAssertEqual(h.pushes.map(\.id), [1])
        XCTAssertEqual(h.handedBack.flatMap(\.ids), [2])
        XCTAssertEqual(h.actions { $0 == .stopped }.map(\.at.micros), [t0 + 30 * second])
    }

    func testDrainWaitsForClaimsInFlightAndIgnoresOtherAnswers() {
        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded(
            [(1, t0 + 1 * second), (2, t0 + 1 * second + 500_000)], databaseNowMicros: t0, now: now)
        _ = engine.hint(5, now: now)
        XCTAssertEqual(engine.claimsInFlight, 1)
        XCTAssertEqual(engine.stop(now: now), [.cancelTimer], "a claim is in flight: not stopped yet")
        XCTAssertEqual(engine.rowsRead([(5, t0)], databaseNowMicros: t0, now: now), [], "reads no longer matter")
        // The database clock had moved on when the claim ran: row 2's fire is beyond the lead.
        let answered = engine.claimSucceeded(
            [1, 2], claim: 7, fires: [(1, t0 + 1 * second), (2, t0 + 3 * second)],
            next: [(1, t0 + 61 * second), (2, t0 + 63 * second)], now: now)
        XCTAssertEqual(
            answered,
            [
                .handBack([Engine.Release(claim: 7, dueAtMicros: t0 + 3 * second, ids: [2])]),
                .armTimer(at: DueTimeInstant(micros: t0 + 1 * second)),
            ])
        XCTAssertEqual(engine.armedCount, 0, "nothing is armed again")
        XCTAssertEqual(
            engine.tick(now: DueTimeInstant(micros: t0 + 1 * second)),
            [
                .push([Engine.Release(claim: 7, dueAtMicros: t0 + 1 * second, ids: [1])]), .stopped,
            ])
        XCTAssertEqual(engine.tick(now: DueTimeInstant(micros: t0 + 2 * second)), [])
    }

    func testStopWithNothingHeldStopsAtOnce() {
        var idle = Engine()
        XCTAssertEqual(idle.stop(now: DueTimeInstant(micros: t0)), [.stopped])
        XCTAssertEqual(idle.start(now: DueTimeInstant(micros: t0)), [], "stopped for good")

        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded([(1, t0 + 50 * second)], databaseNowMicros: t0, now: now)
        XCTAssertEqual(engine.stop(now: now), [.cancelTimer, .stopped])
        XCTAssertEqual(engine.armedCount, 0)
        XCTAssertEqual(engine.hint(1, now: now), [])
        XCTAssertEqual(engine.claimFailed([1], now: now), [])
    }

    func testAFailedClaimDuringTheDrainEndsIt() {
        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded([(1, t0 + 1 * second)], databaseNowMicros: t0, now: now)
        _ = engine.stop(now: now)
        XCTAssertEqual(engine.claimFailed([1], now: now), [.stopped], "nothing was claimed: no retry while draining")
    }
}
