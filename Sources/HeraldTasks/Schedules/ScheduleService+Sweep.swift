// The schedule sweep and delivery: claiming what no timer fired, re-sending what
// was claimed but never reached the queue, and pushing fires to the broker. The
// sweep runs beside DueTimeEngine, sharing its per-second claim budget.

import HeraldCore
import HeraldIO

extension ScheduleService {
    // MARK: Sweep

    /// Claims overdue plans no timer fired, and re-sends fires that never reached the queue.
    func sweep() {
        guard running, !draining else { return }
        if sweeping {
            sweepAgain = true
            return
        }
        sweeping = true
        let store = self.store, dispatchers = self.dispatchers, options = self.options
        let prune = localNowMicros() - lastPrune > 3_600_000_000
        if prune { lastPrune = localNowMicros() }
        // The sweep claims at most what the per-second budget has left (bounded anyway).
        let allowance =
            options.maxDispatchPerSecond > 0
            ? engine.takeClaimBudget(options.maxDispatchPerSecond, now: now()) : 100 * options.sweepBatch
        pool.run(
            on: loop,
            { c -> SweepOutcome in
                var out = SweepOutcome()
                var cache: [String: CronSchedule] = [:]
                var claimed = 0
                while claimed < allowance {
                    let limit = min(options.sweepBatch, allowance - claimed)
                    let r = try store.claimDue(
                        c, ids: nil, limit: limit, via: ScheduleMetrics.Via.sweep.rawValue, cronCache: &cache)
                    let d = Self.deliver(
                        claim: r.claim, fires: r.fires, store: store, dispatchers: dispatchers, connection: c)
                    out.claims.append((r, d))
                    claimed += r.examined
                    if r.examined < limit || d.error != nil { break }
                }
                // Claims never marked enqueued (a crash, a broker outage): sent again; the chunks that
                // already reached the broker are recognised by their markers and not queued twice.
                for (claim, fires) in try store.openClaims(c, olderThanSeconds: options.resendAfterSeconds, limit: 20) {
                    let d = Self.deliver(
                        claim: claim, fires: fires, store: store, dispatchers: dispatchers, connection: c)
                    out.resent += fires.count
                    out.resendDelivery.pushed += d.pushed
                    out.resendDelivery.duplicates += d.duplicates
                    out.resendDelivery.error = out.resendDelivery.error ?? d.error
                    out.resendDelivery.markError = out.resendDelivery.markError ?? d.markError
                    if d.error != nil { break }
                }
                if prune { out.pruned = try store.pruneFires(c, olderThanDays: options.keepFiresDays) }
                return out
            }
        ) { [self] result in
            sweeping = false
            switch result {
            case .success(let o):
                failing[.sweep] = nil
                if o.resendDelivery.error == nil { failing[.resend] = nil }
                var advanced: [PlanID] = []
                for (r, d) in o.claims {
                    metrics.sweepFound.increment(by: r.fires.count)
                    if !r.fires.isEmpty { record(d, fires: r.fires, via: .sweep) }
                    logQuarantined(r.quarantined)
                    advanced += r.advanced.map(\.id)
                }
                // Plans the sweep moved on are re-read, so that the engine arms their next time.
                if running, !draining, !advanced.isEmpty { feed(engine.hints(advanced, now: now())) }
                if o.resent > 0 {
                    metrics.sweepResent.increment(by: o.resent)
                    metrics.dispatched.increment(by: o.resendDelivery.pushed)
                    metrics.duplicatesSuppressed.increment(by: o.resendDelivery.duplicates)
                    if let e = o.resendDelivery.markError {
                        reportError(.markEnqueued, "marking re-sent fires enqueued", e)
                    }
                    if let e = o.resendDelivery.error {
                        // Found, but not delivered: say so, count it, and leave them to the next sweep.
                        metrics.dispatchErrors.increment()
                        reportError(.resend, "re-sending \(o.resent) fires claimed but not enqueued", e)
                    } else {
                        logger.warning(
                            "sweep re-sent fires that were claimed but not marked enqueued",
                            metadata: ["count": "\(o.resent)", "already_queued": "\(o.resendDelivery.duplicates)"])
                    }
                }
            case .failure(let e):
                reportError(.sweep, "sweeping schedules", e)
            }
            if sweepAgain {
                sweepAgain = false
                sweep()
            }
        }
    }

    // MARK: Delivery (pool threads)

    /// Pushes chunks on `dispatcher` (one pipeline). Never throws.
    static func push(_ chunks: [FireChunk], on dispatcher: FireDispatcher) -> Delivery {
        var d = Delivery()
        guard !chunks.isEmpty else { return d }
        do {
            let pushed = try dispatcher.push(chunks)
            d.enqueuedAtMicros = localNowMicros()
            for (chunk, p) in zip(chunks, pushed) {
                if p { d.pushed += chunk.fires.count } else { d.duplicates += chunk.fires.count }
            }
        } catch {
            d.error = error
        }
        return d
    }

    /// Marks claims enqueued; a failure is kept in `delivery.markError` (the claims stay open).
    static func mark(
        _ claims: [Int64], store: PlanStore, connection c: PostgresConnection, into delivery: inout Delivery
    ) {
        do {
            try store.markEnqueued(c, claims: claims)
        } catch {
            delivery.markError = error
        }
    }

    /// Pushes one claim's fires and marks the claim enqueued. Never throws: a broker failure
    /// leaves the claim open for the sweep to re-send.
    static func deliver(
        claim: Int64, fires: [ClaimedFire], store: PlanStore, dispatchers: DispatcherPool,
        connection c: PostgresConnection
    ) -> Delivery {
        guard claim != 0 else { return Delivery() }
        do {
            return try dispatchers.with { dispatcher in
                let chunks = dispatcher.chunks(claim: claim, fires: fires)
                var d = push(chunks, on: dispatcher)
                if d.error == nil {
                    mark([claim], store: store, connection: c, into: &d)
                    if d.markError == nil { try? dispatcher.settle(markers: chunks.map(\.marker)) }
                }
                return d
            }
        } catch {
            return Delivery(error: error)
        }
    }
}
