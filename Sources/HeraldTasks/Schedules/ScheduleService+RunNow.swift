// `run_now`: one immediate extra fire per request, queued (bounded) behind one job
// at a time so that a flood of requests cannot build an unbounded backlog.

import HeraldCore
import HeraldIO

extension ScheduleService {
    /// One immediate extra fire per `run_now` request. Requests queue (bounded) behind one
    /// job at a time; beyond the bound they are refused with an error and a metric.
    func fireNow(_ plan: PlanID) {
        guard pendingRunNow.count < Self.maxPendingRunNow else {
            metrics.runNowDropped.increment()
            if case .log(let n) = runNowBurst.record(now: MonotonicNow.instant) {
                logger.error(
                    "run_now refused: \(Self.maxPendingRunNow) requests already waiting",
                    metadata: ["plan": "\(plan)", "suppressed_since_last": "\(n)"])
            }
            return
        }
        pendingRunNow.append(plan)
        startRunNow()
    }

    static let maxPendingRunNow = 10_000

    func startRunNow() {
        guard running, !draining, !runNowInFlight, !pendingRunNow.isEmpty else { return }
        let batch = Array(pendingRunNow.prefix(500))
        pendingRunNow.removeFirst(batch.count)
        runNowInFlight = true
        let store = self.store, dispatchers = self.dispatchers
        pool.run(
            on: loop,
            { c -> ([ClaimedFire], [PlanID], Delivery) in
                var claims: [(claim: Int64, fire: ClaimedFire)] = []
                var ignored: [PlanID] = []
                for plan in batch {
                    if let f = try store.claimRunNow(c, plan: plan, via: ScheduleMetrics.Via.runNow.rawValue) {
                        claims.append(f)
                    } else {
                        ignored.append(plan)
                    }
                }
                guard !claims.isEmpty else { return ([], ignored, Delivery()) }
                var d: Delivery
                do {
                    d = try dispatchers.with { disp in
                        let chunks = claims.flatMap { disp.chunks(claim: $0.claim, fires: [$0.fire]) }
                        var d = Self.push(chunks, on: disp)
                        if d.error == nil {
                            Self.mark(claims.map(\.claim), store: store, connection: c, into: &d)
                            if d.markError == nil { try? disp.settle(markers: chunks.map(\.marker)) }
                        }
                        return d
                    }
                } catch {
                    d = Delivery(error: error)
                }
                return (claims.map(\.fire), ignored, d)
            }
        ) { [self] result in
            runNowInFlight = false
            switch result {
            case .success(let (fires, ignored, delivery)):
                if !fires.isEmpty { record(delivery, fires: fires, via: .runNow) }
                for plan in ignored.prefix(10) {
                    logger.warning(
                        "run_now ignored: plan missing or its trigger is not enabled", metadata: ["plan": "\(plan)"])
                }
            case .failure(let e): reportError(.runNow, "run_now", e)
            }
            startRunNow()
        }
    }
}
