// The driver's half of DueTimeEngine (Sources/HeraldCore/Schedules/DueTimeEngine.swift):
// each action the engine returns is carried out here with I/O (a query on the pool,
// the one loop timer, a push on the push thread), and each result goes back to the
// engine as an input, on the loop thread, whose actions are carried out in turn.

import HeraldCore
import HeraldIO

extension ScheduleService {
    typealias Engine = DueTimeEngine<PlanID>

    /// Carries out the engine's actions in order. Call on the loop.
    func feed(_ actions: [Engine.Action]) {
        for action in actions {
            switch action {
            case .armTimer(let at):
                timer.schedule(after: .microseconds(max(0, at.micros - localNowMicros())))
            case .cancelTimer:
                timer.cancel()
            case .read(let ids):
                read(ids)
            case .loadWindow(_, let limit):
                loadWindow(limit: limit)
            case .claim(let ids, let cause):
                claim(ids, via: cause == .event ? .event : .timer)
            case .push(let releases):
                push(releases)
            case .retryAfter(let micros):
                logger.debug("schedules: claims paused after a failure", metadata: ["micros": "\(micros)"])
            case .handBack(let releases):
                handBack(releases)
            case .stopped:
                engineStopped = true
                drainCheck()
            }
        }
    }

    /// `.read`: the plans' current `next_run_at`. The database clock is taken as the engine's
    /// offset from the last window load measures it (tightest of three round trips), not re-measured.
    func read(_ ids: [PlanID]) {
        metrics.planReads.increment()
        let store = self.store
        pool.run(on: loop, { c in try store.read(c, ids: ids) }) { [self] result in
            guard running else { return }
            let t = now()
            switch result {
            case .success(let rows):
                failing[.read] = nil
                feed(
                    engine.rowsRead(
                        rows.map { (id: $0.id, dueAtMicros: $0.nextRunAt) }, databaseNowMicros: engine.databaseNow(t),
                        measuredAt: t, now: t))
            case .failure(let e):
                reportError(.read, "re-reading plans", e)
                feed(engine.readFailed(now: t))
            }
        }
    }

    /// `.loadWindow`: the enabled plans due within the horizon, with the clock skew.
    func loadWindow(limit: Int) {
        metrics.windowLoads.increment()
        let store = self.store, horizon = options.horizonSeconds
        pool.run(
            on: loop,
            { c -> ([ArmedPlan], Int64, Int64) in
                let skew = try store.clockSkew(c, localNow: localNowMicros)
                let local = localNowMicros()
                // Armed in (due, id) order, the engine pops plans due together by id, so a claim takes
                // consecutive ids: index locality for its plan lookups and its fire rows in PostgreSQL.
                let plans = try store.loadWindow(c, horizonSeconds: horizon, limit: limit)
                    .sorted { ($0.nextRunAt, $0.id) < ($1.nextRunAt, $1.id) }
                return (plans, local + skew, local)
            }
        ) { [self] result in
            guard running else { return }
            switch result {
            case .success(let (plans, dbNow, local)):
                failing[.windowLoad] = nil
                feed(
                    engine.windowLoaded(
                        plans.map { (id: $0.id, dueAtMicros: $0.nextRunAt) }, databaseNowMicros: dbNow,
                        measuredAt: DueTimeInstant(micros: local), now: now()))
                metrics.armed.record(engine.armedCount)
            case .failure(let e):
                reportError(.windowLoad, "loading the schedule window", e)
                feed(engine.windowLoadFailed(now: now()))
            }
        }
    }

    /// `.claim`: one claim transaction with the lead. Its fires go to the push thread to be encoded
    /// before the engine hears of them, so that the pushes it asks for find them there.
    func claim(_ ids: [PlanID], via: ScheduleMetrics.Via) {
        let store = self.store, lead = options.leadMicros
        pool.run(
            on: loop,
            { c -> ClaimResult in
                var cache: [String: CronSchedule] = [:]
                return try store.claimDue(
                    c, ids: ids, limit: ids.count, via: via.rawValue, leadMicros: lead, cronCache: &cache)
            }
        ) { [self] result in
            guard running else { return }
            switch result {
            case .success(let r):
                failing[.claim] = nil
                if !r.fires.isEmpty { dispatch(r, via: via) }
                logQuarantined(r.quarantined)
                feed(
                    engine.claimSucceeded(
                        ids, claim: r.claim, fires: r.fires.map { (id: $0.plan, dueAtMicros: $0.scheduledAt) },
                        next: r.advanced.map { (id: $0.id, dueAtMicros: $0.nextRunAt) },
                        settled: r.quarantined.map(\.0), now: now()))
                metrics.armed.record(engine.armedCount)
            case .failure(let e):
                reportError(.claim, "claiming due plans", e)
                feed(engine.claimFailed(ids, now: now()))
            }
        }
    }

    /// `.handBack` while draining: fires claimed beyond the drain window. PlanStore has no statement
    /// to hand a claim back, so the claim stays open and any instance's sweep sends it after its time.
    func handBack(_ releases: [Engine.Release]) {
        let fires = releases.reduce(0) { $0 + $1.ids.count }
        let claims = Set(releases.map(\.claim))
        for claim in claims { claimsLeft[claim] = nil }
        let book = heldChunks, dispatcher = pushDispatcher
        pushQueue.async { book.drop(releases, dispatcher: dispatcher) }
        logger.warning(
            "schedules draining: fires claimed beyond the drain window are left open for the sweep",
            metadata: ["fires": "\(fires)", "claims": "\(claims.count)"])
    }
}
