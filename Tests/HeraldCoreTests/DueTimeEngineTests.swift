// The due-time engine with a manual clock: arming within the horizon, the timer at the
// earliest due time less the lead, claim then push at the due instant, the per-second
// claim budget and the armed cap. DueTimeHarness, a fake database and driver that
// answers every request at once, is shared with the other DueTimeEngine test files.

import HeraldCore
import XCTest

/// A fake database and a driver around a `DueTimeEngine<Int>`: carries out every action and
/// answers at once, in the same instant; time moves only through `run(forMicros:)`.
final class DueTimeHarness {
    typealias Engine = DueTimeEngine<Int>

    var engine: Engine
    var now: DueTimeInstant
    /// Database clock minus local clock.
    var skew: Int64
    /// The database: each row's due time (database µs).
    var rows: [Int: Int64] = [:]
    /// A claimed row moves on by this much.
    var period: Int64 = 86_400_000_000
    var failClaims = false
    var failReads = false
    var lockedElsewhere: Set<Int> = []
    var log: [(at: DueTimeInstant, action: Engine.Action)] = []
    var pushes: [(id: Int, due: Int64, pushedAt: Int64)] = []
    var claims: [(ids: [Int], atDB: Int64)] = []
    var handedBack: [Engine.Release] = []
    var ticks = 0
    private var claimSeq: Int64 = 0
    private var answers: [() -> [Engine.Action]] = []

    var dbNow: Int64 { now.micros + skew }

    init(options: Engine.Options = Engine.Options(), startDB: Int64 = DueTimeEngineTests.t0, skew: Int64 = 0) {
        engine = Engine(options: options)
        self.skew = skew
        now = DueTimeInstant(micros: startDB - skew)
    }

    func start() { feed(engine.start(now: now)) }

    /// Carries out `first` and every answer it leads to, in this instant.
    func feed(_ first: [Engine.Action]) {
        var batch = first
        while true {
            for action in batch { perform(action) }
            guard !answers.isEmpty else { return }
            batch = answers.removeFirst()()
        }
    }

    /// Moves time on by `micros`, firing the timer whenever it falls due.
    func run(forMicros micros: Int64) {
        let end = now.micros + micros
        while let t = engine.timerDeadline, t.micros <= end {
            ticks += 1
            precondition(ticks < 2_000_000, "the engine loops")
            now = max(now, t)
            feed(engine.tick(now: now))
        }
        now = DueTimeInstant(micros: end)
    }

    func actions(_ match: (Engine.Action) -> Bool) -> [(at: DueTimeInstant, action: Engine.Action)] {
        log.filter { match($0.action) }
    }

    private func perform(_ action: Engine.Action) {
        log.append((now, action))
        switch action {
        case .read(let ids):
            answers.append { [self] in
                if failReads { return engine.readFailed(now: now) }
                let found = ids.compactMap { id in rows[id].map { (id: id, dueAtMicros: $0) } }
                return engine.rowsRead(found, databaseNowMicros: dbNow, now: now)
            }
        case .loadWindow(let until, let limit):
            answers.append { [self] in
                let due = rows.filter { $0.value <= until }.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
                let window = due.prefix(limit).map { (id: $0.key, dueAtMicros: $0.value) }
                return engine.windowLoaded(window, databaseNowMicros: dbNow, now: now)
            }
        case .claim(let ids, _):
            claims.append((ids, dbNow))
            answers.append { [self] in answerClaim(ids) }
        case .push(let releases):
            for r in releases { pushes += r.ids.map { ($0, r.dueAtMicros, dbNow) } }
        case .handBack(let releases):
            handedBack += releases
        case .armTimer, .cancelTimer, .retryAfter, .stopped:
            break
        }
    }

    private func answerClaim(_ ids: [Int]) -> [Engine.Action] {
        if failClaims { return engine.claimFailed(ids, now: now) }
        var fires: [(id: Int, dueAtMicros: Int64)] = []
        var next: [(id: Int, dueAtMicros: Int64)] = []
        for id in ids where !lockedElsewhere.contains(id) {
            guard let due = rows[id], due <= dbNow + engine.options.leadMicros else { continue }
            fires.append((id, due))
            rows[id] = due + period
            next.append((id, due + period))
        }
        claimSeq += 1
        return engine.claimSucceeded(ids, claim: claimSeq, fires: fires, next: next, now: now)
    }
}

final class DueTimeEngineTests: XCTestCase {
    typealias Engine = DueTimeEngine<Int>
    /// 2026-01-01T00:00:00Z in µs, a whole second.
    static let t0: Int64 = 1_767_225_600_000_000
    let t0 = DueTimeEngineTests.t0
    let second: Int64 = 1_000_000

    func testStartLoadsTheWindowAndArmsOnlyWithinTheHorizon() {
        var engine = Engine()
        let now = DueTimeInstant(micros: t0)
        XCTAssertEqual(engine.start(now: now), [.loadWindow(untilMicros: t0 + 300 * second, limit: 200_000)])
        XCTAssertEqual(engine.start(now: now), [], "starts once")
        let actions = engine.windowLoaded(
            [(1, t0 + 10 * second), (2, t0 + 300 * second), (3, t0 + 301 * second)], databaseNowMicros: t0, now: now)
        XCTAssertEqual(engine.armedCount, 2)
        XCTAssertEqual(engine.armedDue(of: 2), t0 + 300 * second, "at the horizon: armed")
        XCTAssertNil(engine.armedDue(of: 3), "beyond the horizon: left for a later window")
        XCTAssertEqual(actions, [.armTimer(at: DueTimeInstant(micros: t0 + 8 * second))])
        XCTAssertEqual(engine.hints([1], now: now).first, .read([1]))
        XCTAssertEqual(
            engine.rowsRead([(1, t0 + 400 * second)], databaseNowMicros: t0, now: now),
            [.armTimer(at: DueTimeInstant(micros: t0 + 60 * second))],
            "a re-read moving a row beyond the horizon disarms it; the window reload comes first now")
        XCTAssertNil(engine.armedDue(of: 1))
    }

    func testTimerIsArmedForTheEarliestDueMinusTheLead() {
        var engine = Engine()
        var now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        _ = engine.windowLoaded([(1, t0 + 100 * second), (2, t0 + 40 * second)], databaseNowMicros: t0, now: now)
        XCTAssertEqual(engine.timerDeadline, DueTimeInstant(micros: t0 + 38 * second))
        // An event brings a row earlier: the timer follows.
        _ = engine.hint(1, now: now)
        XCTAssertEqual(
            engine.rowsRead([(1, t0 + 20 * second)], databaseNowMicros: t0, now: now),
            [.armTimer(at: DueTimeInstant(micros: t0 + 18 * second))])
        // Early wake-ups claim nothing.
        now = DueTimeInstant(micros: t0 + 17 * second)
        XCTAssertEqual(engine.tick(now: now), [.armTimer(at: DueTimeInstant(micros: t0 + 18 * second))])
        now = DueTimeInstant(micros: t0 + 18 * second)
        XCTAssertEqual(
            engine.tick(now: now),
            [.claim([1], cause: .timer), .armTimer(at: DueTimeInstant(micros: t0 + 38 * second))])
    }

    func testClaimedAheadAndPushedAtTheDueInstantNeverBefore() {
        let h = DueTimeHarness()
        h.rows = [1: t0 + 30 * second, 2: t0 + 30 * second, 3: t0 + 31 * second]
        h.start()
        h.run(forMicros: 40 * second)
        XCTAssertEqual(h.claims.map(\.atDB), [t0 + 28 * second, t0 + 29 * second], "a lead (2 s) before each due time")
        XCTAssertEqual(h.claims.map(\.ids), [[1, 2], [3]])
        XCTAssertEqual(h.pushes.map(\.id), [1, 2, 3])
        for p in h.pushes { XCTAssertEqual(p.pushedAt, p.due, "released at its instant") }
        let pushActions = h.actions { if case .push = $0 { return true } else { return false } }
        XCTAssertEqual(pushActions.count, 2, "fires due at one instant go out in one push")
        XCTAssertEqual(h.engine.heldFireCount, 0)
    }

    func testRowsFireAgainAtTheirNextDueTime() {
        let h = DueTimeHarness()
        h.period = 60 * second
        h.rows = [1: t0 + 30 * second]
        h.start()
        h.run(forMicros: 300 * second)
        XCTAssertEqual(h.pushes.map(\.due), (0..<5).map { t0 + (30 + 60 * Int64($0)) * second })
        XCTAssertTrue(h.pushes.allSatisfy { $0.pushedAt == $0.due })
        XCTAssertEqual(h.engine.armedDue(of: 1), t0 + 330 * second)
    }

    func testClaimBudgetPerSecondIsRespectedAcrossTicks() {
        var options = Engine.Options()
        options.claimBudgetPerSecond = 100
        let h = DueTimeHarness(options: options)
        for id in 0..<350 { h.rows[id] = t0 + 10 * second }
        h.start()
        h.run(forMicros: 20 * second)
        var perSecond: [Int64: Int] = [:]
        for c in h.claims { perSecond[c.atDB / second, default: 0] += c.ids.count }
        XCTAssertEqual(perSecond.values.reduce(0, +), 350)
        XCTAssertTrue(perSecond.values.allSatisfy { $0 <= 100 }, "\(perSecond)")
        XCTAssertEqual(perSecond.keys.sorted(), (8...11).map { t0 / second + $0 }, "spread over four seconds")
        XCTAssertEqual(Set(h.pushes.map(\.id)).count, 350)
        XCTAssertTrue(h.pushes.allSatisfy { $0.pushedAt >= $0.due }, "late when over budget, never early")
        XCTAssertLessThan(h.ticks, 20, "one wake-up per second while the budget is spent, not a busy loop")
    }

    func testTheSweepSharesTheClaimBudget() {
        var options = Engine.Options()
        options.claimBudgetPerSecond = 100
        var engine = Engine(options: options)
        let now = DueTimeInstant(micros: t0)
        _ = engine.start(now: now)
        let actions = engine.windowLoaded((0..<60).map { ($0, t0) }, databaseNowMicros: t0, now: now)
        XCTAssertEqual(actions.first, .claim(Array(0..<60), cause: .timer))
        XCTAssertEqual(engine.takeClaimBudget(100, now: now), 40, "what the timers left this second")
        XCTAssertEqual(engine.takeClaimBudget(100, now: now), 0)
        XCTAssertEqual(engine.takeClaimBudget(100, now: now.advanced(byMicros: second)), 100, "a new second")
        var unlimited = Engine()
        XCTAssertEqual(unlimited.takeClaimBudget(5_000, now: now), 5_000, "0: unlimited")
    }

    func testArmedCapLeavesTheRestForTheNextWindowLoad() {
        // 250,000 rows within the horizon, earliest first: 50,000 due in 30 s, 150,000 in 200 s,
        // 50,000 in 250 s. The database would return at most the cap; give the engine all of them.
        let h = DueTimeHarness()
        let due: (Int) -> Int64 = { [t0, second] id in t0 + (id < 50_000 ? 30 : id < 200_000 ? 200 : 250) * second }
        for id in 0..<250_000 { h.rows[id] = due(id) }
        let now = h.now
        h.feed(h.engine.start(now: now).filter { if case .loadWindow = $0 { return false } else { return true } })
        h.feed(h.engine.windowLoaded((0..<250_000).map { ($0, due($0)) }, databaseNowMicros: h.dbNow, now: now))
        XCTAssertEqual(h.engine.armedCount, 200_000, "only the cap is armed")
        XCTAssertEqual(h.engine.armedDue(of: 199_999), t0 + 200 * second)
        XCTAssertNil(h.engine.armedDue(of: 200_000), "the earliest are armed, the rest wait")

        h.feed(h.engine.hints([249_999, 5], now: now))
        XCTAssertNil(h.engine.armedDue(of: 249_999), "a re-read does not go past the cap either")
        XCTAssertEqual(h.engine.armedDue(of: 5), t0 + 30 * second, "an armed row keeps its place")

        h.run(forMicros: 59 * second)
        XCTAssertEqual(h.pushes.count, 50_000, "the first 50,000 fired on time")
        XCTAssertTrue(h.pushes.allSatisfy { $0.pushedAt == $0.due })
        XCTAssertEqual(h.engine.armedCount, 150_000, "fired rows moved beyond the horizon")
        h.run(forMicros: 2 * second)
        XCTAssertEqual(h.engine.windowLoads, 2)
        XCTAssertEqual(h.engine.armedCount, 200_000, "the rest came with the next window load")
        XCTAssertEqual(h.engine.armedDue(of: 249_999), t0 + 250 * second)
    }
}
