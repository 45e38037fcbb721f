// The schedule sweep and delivery: claiming what no timer fired, re-sending what
// was claimed but never reached the queue, and pushing fires to the broker.

import HeraldCore
import HeraldIO

extension ScheduleService {
    // MARK: Sweep

    /// Claims overdue plans no timer fired, and re-sends fires that never reached the queue.
    func sweep() {
        guard running else { return }
        if sweeping {
            sweepAgain = true
            return
        }
        sweeping = true
        let store = self.store, dispatchers = self.dispatchers, options = self.options
        let prune = localNowMicros() - lastPrune > 3_600_000_000
        if prune { lastPrune = localNowMicros() }
        // The sweep claims at most what the per-second budget has left (bounded anyway).
        let allowance = options.maxDispatchPerSecond > 0 ? takeBudget(options.maxDispatchPerSecond) : 100 * options.sweepBatch
        pool.run(on: loop, { c -> SweepOutcome in
            var out = SweepOutcome()
            var cache: [String: CronSchedule] = [:]
            var claimed = 0
            while claimed < allowance {
                let limit = min(options.sweepBatch, allowance - claimed)
                let r = try store.claimDue(c, ids: nil, limit: limit, via: ScheduleMetrics.Via.sweep.rawValue, cronCache: &cache)
                let d = Self.deliver(r.fires, store: store, dispatchers: dispatchers, connection: c)
                out.claims.append((r, d))
                claimed += r.examined
                if r.examined < limit || d.error != nil { break }
            }
            let stale = try store.unenqueued(c, olderThanSeconds: options.resendAfterSeconds, limit: 1000)
            if !stale.isEmpty {
                out.resent = stale
                out.resendDelivery = Self.deliver(stale, store: store, dispatchers: dispatchers, connection: c)
            }
            if prune { out.pruned = try store.pruneFires(c, olderThanDays: options.keepFiresDays) }
            return out
        }) { [self] result in
            sweeping = false
            switch result {
            case .success(let o):
                for (r, d) in o.claims {
                    metrics.sweepFound.increment(by: r.fires.count)
                    apply(ClaimOutcome(result: r, delivery: d, unclaimed: [], reread: []), via: .sweep)
                }
                if !o.resent.isEmpty {
                    metrics.sweepResent.increment(by: o.resent.count)
                    metrics.dispatched.increment(by: o.resendDelivery.pushed)
                    metrics.duplicatesSuppressed.increment(by: o.resendDelivery.duplicates)
                    logger.warning("sweep re-sent fires that were claimed but not marked enqueued",
                                   metadata: ["count": "\(o.resent.count)", "already_queued": "\(o.resendDelivery.duplicates)"])
                }
            case .failure(let e):
                reportError("sweeping schedules", e)
            }
            if sweepAgain {
                sweepAgain = false
                sweep()
            }
            armTimer()
        }
    }

    // MARK: Delivery (pool threads)

    /// Pushes fires to the broker and marks them enqueued. Never throws: a broker
    /// failure leaves the fires unmarked for the sweep to re-send.
    static func deliver(_ fires: [ClaimedFire], store: PlanStore, dispatchers: DispatcherPool, connection c: PostgresConnection) -> Delivery {
        guard !fires.isEmpty else { return Delivery() }
        var d = Delivery()
        do {
            let pushed = try dispatchers.with { try $0.enqueue(fires) }
            d.enqueuedAtMicros = localNowMicros()
            d.pushed = pushed.filter { $0 }.count
            d.duplicates = pushed.count - d.pushed
            try store.markEnqueued(c, fires)
        } catch {
            d.error = error
        }
        return d
    }
}
