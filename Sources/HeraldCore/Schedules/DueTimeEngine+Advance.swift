// How the due-time engine moves to a new `now` after every input: it pushes the fires
// whose instant came, turns armed rows due within the lead into claims (within the
// per-second budget, the in-flight limit and the backoff), starts the next read or
// window load, and sets the one timer for the earliest thing still ahead.

extension DueTimeEngine {
    /// Takes up to `want` claims from the per-second budget, for claims the engine does not ask for
    /// itself (the sweep), so that they share it. Returns how many may go now (`want` when unlimited).
    public mutating func takeClaimBudget(_ want: Int, now: DueTimeInstant) -> Int {
        let budget = options.claimBudgetPerSecond
        guard budget > 0 else { return want }
        let second = Self.floorSeconds(now.micros)
        if second != budgetSecond {
            budgetSecond = second
            budgetUsed = 0
        }
        let n = min(want, budget - budgetUsed)
        guard n > 0 else { return 0 }
        budgetUsed += n
        return n
    }

    /// Everything that falls due by `now`, then the timer for what comes next.
    mutating func advance(_ now: DueTimeInstant) -> [Action] {
        var actions: [Action] = []
        switch state {
        case .idle, .stopped:
            return []
        case .running:
            let db = databaseNow(now)
            releaseDue(db, into: &actions)
            for (id, _) in armed.popDue(upTo: db + options.leadMicros) { enqueueClaim(id, cause: .timer) }
            issueClaims(now, into: &actions)
            for (id, _) in delayedReads.popDue(upTo: now.micros) { pendingReads.append(id) }
            issueRead(into: &actions)
            issueWindowLoad(now, into: &actions)
        case .draining:
            releaseDue(databaseNow(now), into: &actions)
            if held.isEmpty, claimsInFlight == 0 {
                state = .stopped
                if timerDeadline != nil {
                    timerDeadline = nil
                    actions.append(.cancelTimer)
                }
                actions.append(.stopped)
                return actions
            }
        }
        updateTimer(now, into: &actions)
        return actions
    }

    /// Arms, claims or drops one row by its due time (database µs): due within the lead, it is
    /// claimed; within the horizon, armed (up to the cap; a row already armed keeps its place);
    /// beyond, disarmed until a window load brings it.
    mutating func place(_ id: RowID, due: Int64, cause: Cause, now: DueTimeInstant) {
        let db = databaseNow(now)
        if due <= db + options.leadMicros {
            armed.disarm(id)
            enqueueClaim(id, cause: cause)
            return
        }
        if pendingClaims.contains(id) {
            pendingClaims.remove(id)
            eventClaims.remove(id)
        }
        if due <= db + options.horizonMicros, armed.count < options.armedCap || armed.due(of: id) != nil {
            armed.arm(id, at: due)
        } else {
            armed.disarm(id)
        }
    }

    mutating func enqueueClaim(_ id: RowID, cause: Cause) {
        if claiming.contains(id) {
            recheck.insert(id)
            return
        }
        if pendingClaims.append(id), cause == .event { eventClaims.insert(id) }
    }

    mutating func rereadLater(_ id: RowID, now: DueTimeInstant) {
        guard !pendingReads.contains(id) else { return }
        delayedReads.arm(id, at: now.micros + options.rereadDelayMicros)
    }

    mutating func measure(_ databaseNowMicros: Int64, at local: DueTimeInstant) {
        offsetMicros = databaseNowMicros - local.micros
    }

    mutating func claimAnswered(_ ids: [RowID]) {
        claimsInFlight = max(0, claimsInFlight - 1)
        claiming.subtract(ids)
    }

    /// Keeps claimed fires for their instant; while draining, those beyond the drain window are
    /// handed back instead.
    mutating func hold(_ fires: [(id: RowID, dueAtMicros: Int64)], claim: Int64, handBack: inout [Action]) {
        guard state == .running || state == .draining, !fires.isEmpty else { return }
        var byTime: [Int64: [RowID]] = [:]
        for f in fires { byTime[f.dueAtMicros, default: []].append(f.id) }
        var back: [Release] = []
        for (t, ids) in byTime.sorted(by: { $0.key < $1.key }) {
            let release = Release(claim: claim, dueAtMicros: t, ids: ids)
            if state == .draining, t > drainDeadlineMicros {
                back.append(release)
                continue
            }
            held[t, default: []].append(release)
            heldTimes.arm(t, at: t)
            heldFireCount += ids.count
        }
        if !back.isEmpty { handBack.append(.handBack(back)) }
    }

    /// Claims in flight allowed now: one at a time while claims fail.
    var claimLimit: Int { claimRetry.failures > 0 ? 1 : max(1, options.maxClaimsInFlight) }

    mutating func issueClaims(_ now: DueTimeInstant, into actions: inout [Action]) {
        while claimsInFlight < claimLimit, !pendingClaims.isEmpty {
            if let retry = claimRetryAt {
                guard retry <= now else { return }
                claimRetryAt = nil
            }
            let n = takeClaimBudget(min(max(1, options.claimBatchSize), pendingClaims.count), now: now)
            guard n > 0 else { return }
            let ids = pendingClaims.popFirst(n)
            var timer = false, event = false
            if eventClaims.isEmpty {
                timer = true
            } else {
                for id in ids {
                    if eventClaims.remove(id) != nil { event = true } else { timer = true }
                }
            }
            claiming.formUnion(ids)
            claimsInFlight += 1
            actions.append(.claim(ids, cause: event && !timer ? .event : .timer))
        }
    }

    mutating func issueRead(into actions: inout [Action]) {
        guard reading == nil, !pendingReads.isEmpty else { return }
        let ids = pendingReads.popFirst(max(1, options.readBatchSize))
        reading = ids
        actions.append(.read(ids))
    }

    mutating func issueWindowLoad(_ now: DueTimeInstant, into actions: inout [Action]) {
        guard !windowInFlight, let at = nextWindowAt, at <= now else { return }
        windowInFlight = true
        windowStartedAt = now
        nextWindowAt = nil
        actions.append(.loadWindow(untilMicros: databaseNow(now) + options.horizonMicros, limit: options.armedCap))
    }

    /// Pushes every held fire whose instant (database time) has come, in one action.
    mutating func releaseDue(_ databaseNowMicros: Int64, into actions: inout [Action]) {
        var batch: [Release] = []
        for (t, _) in heldTimes.popDue(upTo: databaseNowMicros) { batch += held.removeValue(forKey: t) ?? [] }
        guard !batch.isEmpty else { return }
        heldFireCount -= batch.reduce(0) { $0 + $1.ids.count }
        actions.append(.push(batch))
    }

    /// When pending claims can go next, if only time holds them back (the backoff or the budget).
    func claimWakeUp(_ now: DueTimeInstant) -> Int64? {
        guard !pendingClaims.isEmpty, claimsInFlight < claimLimit else { return nil }
        if let retry = claimRetryAt, retry > now { return retry.micros }
        let budget = options.claimBudgetPerSecond
        let second = Self.floorSeconds(now.micros)
        guard budget > 0, second == budgetSecond, budgetUsed >= budget else { return nil }
        return (second + 1) * 1_000_000
    }

    /// Arms the timer for the earliest of: an armed row's due time less the lead, a delayed
    /// re-read, the next window load, pending claims' budget or backoff, a held fire's instant.
    mutating func updateTimer(_ now: DueTimeInstant, into actions: inout [Action]) {
        var want: Int64?
        func consider(_ t: Int64?) {
            guard let t else { return }
            want = min(want ?? t, t)
        }
        if state == .running {
            consider(armed.earliest().map { $0 - options.leadMicros - offsetMicros })
            consider(delayedReads.earliest())
            if !windowInFlight { consider(nextWindowAt?.micros) }
            consider(claimWakeUp(now))
        }
        consider(heldTimes.earliest().map { $0 - offsetMicros })
        let deadline = want.map { DueTimeInstant(micros: max($0, now.micros)) }
        guard deadline != timerDeadline else { return }
        timerDeadline = deadline
        actions.append(deadline.map { .armTimer(at: $0) } ?? .cancelTimer)
    }

    static func floorSeconds(_ micros: Int64) -> Int64 {
        micros >= 0 ? micros / 1_000_000 : -((-micros + 999_999) / 1_000_000)
    }
}
