// What to do with one due plan, decided purely from its row, its catch-up
// policy and the database's clock: which (plan, scheduled time) pairs fire
// and where `next_run_at` moves. Invalid cron or zone becomes a quarantine
// decision, never an exception that aborts a batch (Dify's poison pill).

/// How a plan treats slots missed while nothing fired it (Herald's own table).
public enum CatchUpPolicy: String, Sendable, CaseIterable {
    /// Dify's rule: an overdue plan fires once, then moves to its next future slot.
    case once
    /// Fire only when at most `misfireGrace` late; otherwise skip to the next future slot.
    case skip
    /// Fire every missed slot (up to `maxCatchUp`), then move to the next future slot.
    case all
}

/// A plan as read for claiming.
public struct DuePlan: Sendable, Equatable {
    public var id: PlanID
    public var cronExpression: String
    public var timezone: String
    /// `next_run_at` in Unix microseconds (naive UTC in Dify's column).
    public var nextRunAt: Int64
    public var policy: CatchUpPolicy
    public var misfireGraceSeconds: Int64
    public var maxCatchUp: Int

    public init(
        id: PlanID, cronExpression: String, timezone: String, nextRunAt: Int64,
        policy: CatchUpPolicy = .once, misfireGraceSeconds: Int64 = 60, maxCatchUp: Int = 100
    ) {
        self.id = id
        self.cronExpression = cronExpression
        self.timezone = timezone
        self.nextRunAt = nextRunAt
        self.policy = policy
        self.misfireGraceSeconds = misfireGraceSeconds
        self.maxCatchUp = maxCatchUp
    }
}

/// The decision for one due plan.
public enum FireDecision: Sendable, Equatable {
    /// Fire at each of `fires` (scheduled instants, Unix µs), then set `next_run_at` to `nextRunAt`.
    case fire(fires: [Int64], nextRunAt: Int64)
    /// The plan cannot be computed; record it and leave it alone until it changes.
    case quarantine(CronError)
}

/// Pure decisions for due plans.
public enum FirePlanner {
    /// Decides for `plan` at database time `now` (Unix µs). A slot at most `lead` µs ahead is
    /// claimed now and released at its time (pre-claiming keeps a burst of simultaneous fires on
    /// time); the next slot is then computed after that slot. `cache` reuses parsed schedules.
    public static func decide(
        _ plan: DuePlan, now: Int64, lead: Int64 = 0, cache: inout [String: CronSchedule]
    ) -> FireDecision {
        // Not due by the database clock.
        if plan.nextRunAt > now + lead { return .fire(fires: [], nextRunAt: plan.nextRunAt) }
        let key = plan.timezone + "\u{0}" + plan.cronExpression
        let schedule: CronSchedule
        if let s = cache[key] {
            schedule = s
        } else {
            do {
                schedule = try CronSchedule(plan.cronExpression, timeZone: plan.timezone)
            } catch {
                return .quarantine(error)
            }
            if cache.count > 10_000 { cache.removeAll(keepingCapacity: true) }
            cache[key] = schedule
        }
        let next: Int64
        do {
            next = try schedule.nextFire(afterUnixMicros: max(now, plan.nextRunAt)).unixSeconds * 1_000_000
        } catch {
            return .quarantine(error)
        }
        switch plan.policy {
        case .once:
            return .fire(fires: [plan.nextRunAt], nextRunAt: next)
        case .skip:
            let late = now - plan.nextRunAt
            return .fire(fires: late <= plan.misfireGraceSeconds * 1_000_000 ? [plan.nextRunAt] : [], nextRunAt: next)
        case .all:
            var fires = [plan.nextRunAt]
            var cursor = plan.nextRunAt
            while fires.count < max(1, plan.maxCatchUp) {
                guard let f = try? schedule.nextFire(afterUnixMicros: cursor) else { break }
                let t = f.unixSeconds * 1_000_000
                if t > now { break }
                fires.append(t)
                cursor = t
            }
            return .fire(fires: fires, nextRunAt: next)
        }
    }
}
