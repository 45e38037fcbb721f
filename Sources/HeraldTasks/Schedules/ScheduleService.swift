// Workflow schedules, event-driven: plans due soon are armed in a heap behind
// one libevent timer; when it fires, the due plans are claimed in PostgreSQL
// (exactly once per plan and scheduled time) and enqueued for Celery. Events
// re-read single plans; the sweep claims whatever no timer fired and re-sends
// what was claimed but never reached the queue. The loop thread only keeps the
// heap; every query and every push runs on the pool.

import Foundation
import HeraldCore
import HeraldIO
import Logging
import Synchronization

/// Tunables of the schedule subsystem.
public struct ScheduleOptions: Sendable {
    /// Plans due within this many seconds are armed (`HERALD_SCHEDULE_HORIZON`).
    public var horizonSeconds = 300
    /// At most this many plans are armed at once; the rest wait for a later window.
    public var maxArmed = 200_000
    /// Plans per claim transaction.
    public var claimBatch = 2_000
    /// Claim transactions in flight at once.
    public var maxInFlight = 2
    /// Rows per sweep batch (`WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE`).
    public var sweepBatch = 100
    /// Fires per second at most (`WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK`; 0 = unlimited).
    public var maxDispatchPerSecond = 0
    /// A claimed fire not marked enqueued after this long is re-sent by the sweep.
    public var resendAfterSeconds = 10
    /// Enqueued fire records are kept this many days.
    public var keepFiresDays = 7
    /// Fires are claimed up to this long before their time and released at it
    /// (`HERALD_SCHEDULE_LEAD`), so that a burst of simultaneous fires is on time.
    public var leadMicros: Int64 = 2_000_000
    /// At most this many pre-claimed fires are held with their messages encoded; beyond, a burst's
    /// chunks are encoded as they are pushed (`HERALD_SCHEDULE_ENCODE_AHEAD`): about 1.1 KB each.
    public var encodeAhead = 20_000

    public init() {}
}

/// The schedule subsystem. Loop-confined; `@unchecked Sendable` to cross into pool callbacks.
public final class ScheduleService: @unchecked Sendable {
    let loop: EventLoop
    let pool: PostgresPool
    let store: PlanStore
    let dispatchers: DispatcherPool
    let metrics: ScheduleMetrics
    let options: ScheduleOptions
    let logger: Logger

    var heap = ScheduleHeap()
    var skewMicros: Int64 = 0  // database clock minus local clock
    var pending: [PlanID] = []
    var pendingSet: Set<PlanID> = []
    var pendingVia: [PlanID: ScheduleMetrics.Via] = [:]
    var inFlight = 0
    var sweeping = false
    var sweepAgain = false
    var budgetSecond: Int64 = 0
    var budgetUsed = 0
    var running = false
    /// True from `drain` on: nothing new is claimed; what was claimed is pushed at its instant.
    var draining = false
    var drainDone: (() -> Void)?
    var drainDeadline: Int64 = 0
    /// Claims handed to the push thread, and releases in flight there (drain waits for both).
    var dispatching = 0
    var releasing = 0
    var lastPrune: Int64 = 0
    var lastWindowLoad: Int64 = 0
    var pendingRefresh: Set<PlanID> = []
    var pendingTriggers: Set<String> = []
    var refreshInFlight = false
    var pendingRunNow: [PlanID] = []
    var runNowInFlight = false
    var runNowBurst = BurstLimiter()
    var errorBurst = BurstLimiter()
    lazy var timer = LoopTimer(loop: loop) { [unowned self] in self.timerFired() }
    lazy var budgetTimer = LoopTimer(loop: loop) { [unowned self] in self.kick() }
    lazy var windowTimer = LoopTimer(loop: loop) { [unowned self] in self.reloadWindow() }
    lazy var releaseTimer = LoopTimer(loop: loop) { [unowned self] in self.releaseDue() }
    lazy var drainTimer = LoopTimer(loop: loop) { [unowned self] in self.drainCheck() }
    /// Pre-claimed fires waiting for their time, by scheduled time (µs).
    var held: [Int64: [(FireChunk, ScheduleMetrics.Via)]] = [:]
    var heldTimes = TimeHeap()
    /// Chunks still to push, and the markers of those pushed, per claim whose pushes have all
    /// succeeded so far.
    var claimsLeft: [Int64: (left: Int, markers: [String])] = [:]
    /// Claims whose fires all reached the queue, to be marked enqueued, with their chunks' markers.
    var claimsToMark: [(claim: Int64, markers: [String])] = []
    var marking = false
    /// Pushes at release time run here, never behind claim transactions on the pool.
    let pushQueue = DispatchQueue(label: "herald.schedule-push")
    let pushDispatcher: FireDispatcher

    /// Last fires, newest first (for `herald status` and the demo log).
    public private(set) var recentFires: [(plan: PlanID, scheduledAt: Int64, via: String)] = []

    public init(
        loop: EventLoop, pool: PostgresPool, broker: RedisEndpoint, redisKeyPrefix: String, instanceID: String,
        metrics: ScheduleMetrics, options: ScheduleOptions = ScheduleOptions(), logger: Logger
    ) {
        self.loop = loop
        self.pool = pool
        self.store = PlanStore(instanceID: instanceID)
        self.dispatchers = DispatcherPool {
            FireDispatcher(broker: broker, redisKeyPrefix: redisKeyPrefix, instanceID: instanceID)
        }
        self.pushDispatcher = FireDispatcher(broker: broker, redisKeyPrefix: redisKeyPrefix, instanceID: instanceID)
        self.metrics = metrics
        self.options = options
        self.logger = logger
    }

    /// Loads the first window and starts arming. Call on the loop.
    public func start() {
        loop.assertInLoop()
        running = true
        // Open the push connection and load the script now, not at the first fire's instant.
        let dispatcher = pushDispatcher
        pushQueue.async { try? dispatcher.warmUp() }
        reloadWindow()
        windowTimer.scheduleRepeating(every: .seconds(max(5, options.horizonSeconds / 5)))
    }

    /// Stops arming; in-flight work finishes on its own.
    public func stop() {
        loop.assertInLoop()
        running = false
        timer.cancel()
        windowTimer.cancel()
        budgetTimer.cancel()
        releaseTimer.cancel()
        drainTimer.cancel()
        heap.removeAll()
        // Pre-claimed fires not yet released (a stop without `drain`, or a drain past its
        // deadline) stay unenqueued in PostgreSQL; any instance's sweep sends them after their
        // time (HERALD_SCHEDULE_RESEND_AFTER).
        held.removeAll()
        heldTimes = TimeHeap()
        claimsLeft.removeAll()
        let dispatcher = pushDispatcher
        pushQueue.async { dispatcher.encodedAhead = 0 }
    }

    /// Number of plans armed now.
    public var armedCount: Int { heap.count }

    /// Completed loads of the arming window (0 until the first one finished).
    public private(set) var windowLoads = 0

    // MARK: Events

    /// Handles an event the daemon routed here (the topology's routes decide which events
    /// come; the sweep comes always). A changed row of the plans table is re-read by id, a
    /// changed trigger by the plans it enables; a bulk change, or a change of a table the
    /// store does not know by name, reloads the whole window. Call on the loop.
    public func handle(_ event: Event) {
        guard running, !draining else { return }
        switch event {
        case .scheduleChanged(let id, let runNow):
            guard let plan = PlanID(id) else { return }
            refresh(plans: [plan])
            if runNow { fireNow(plan) }
        case .tableChanged(let change) where change.table == PlanStore.plansTable:
            if let id = change.id.flatMap(PlanID.init) { refresh(plans: [id]) } else { reloadWindow() }
        case .tableChanged(let change) where change.table == PlanStore.triggersTable:
            guard let id = change.id else { return reloadWindow() }
            refresh(triggers: [id])
        case .tableChanged:
            reloadWindow()
        case .sweep:
            sweep()
            // The window also reloads on its own timer; from sweeps at most every 5 s.
            if localNowMicros() - lastWindowLoad > 5_000_000 { reloadWindow() }
        default:
            break
        }
    }

    /// Re-reads plans (and the plans of changed triggers) and re-arms or disarms them; a plan
    /// already due is claimed at once (via event). Hints are coalesced: one read is in flight at a
    /// time, and ids arriving meanwhile are merged into the next, so a flood of events for the same
    /// plans costs a few queries, not one each.
    func refresh(plans: [PlanID] = [], triggers: [String] = []) {
        pendingRefresh.formUnion(plans)
        pendingTriggers.formUnion(triggers)
        startRefresh()
    }

    func startRefresh() {
        guard running, !draining, !refreshInFlight, !(pendingRefresh.isEmpty && pendingTriggers.isEmpty) else { return }
        let plans = Array(pendingRefresh.prefix(5_000))
        let triggers = Array(pendingTriggers.prefix(5_000))
        pendingRefresh.subtract(plans)
        pendingTriggers.subtract(triggers)
        refreshInFlight = true
        metrics.planReads.increment()
        let store = self.store
        pool.run(
            on: loop,
            { c -> ([PlanID], [ArmedPlan], Int64) in
                let all = plans + (try store.plansOfTriggers(c, triggerIDs: triggers))
                return (all, try store.read(c, ids: all), try store.databaseNow(c))
            }
        ) { [self] result in
            refreshInFlight = false
            switch result {
            case .success(let (asked, rows, dbNow)):
                let found = Set(rows.map(\.id))
                for p in asked where !found.contains(p) { heap.disarm(p) }
                for r in rows {
                    if r.nextRunAt <= dbNow + options.leadMicros {
                        heap.disarm(r.id)
                        enqueueClaim(r.id, via: .event)
                    } else {
                        arm(r)
                    }
                }
                kick()
                armTimer()
            case .failure(let e):
                reportError("re-reading plans", e)
            }
            startRefresh()
        }
    }

    func arm(_ plan: ArmedPlan) {
        let horizon = localNowMicros() + skewMicros + Int64(options.horizonSeconds) * 1_000_000
        if plan.nextRunAt <= horizon, heap.count < options.maxArmed || heap.due(of: plan.id) != nil {
            heap.arm(plan.id, at: plan.nextRunAt)
        } else {
            heap.disarm(plan.id)
        }
    }

    func reloadWindow() {
        guard running, !draining else { return }
        let store = self.store, options = self.options
        lastWindowLoad = localNowMicros()
        pool.run(
            on: loop,
            { c -> ([ArmedPlan], Int64) in
                let skew = try store.clockSkew(c, localNow: localNowMicros)
                return (try store.loadWindow(c, horizonSeconds: options.horizonSeconds, limit: options.maxArmed), skew)
            }
        ) { [self] result in
            switch result {
            case .success(let (plans, skew)):
                skewMicros = skew
                windowLoads += 1
                for p in plans { arm(p) }
                metrics.armed.record(heap.count)
                armTimer()
            case .failure(let e):
                reportError("loading the schedule window", e)
            }
        }
    }

    // MARK: Timer

    func armTimer() {
        guard running, !draining, let due = heap.earliest() else {
            timer.cancel()
            return
        }
        let wait = due - options.leadMicros - skewMicros - localNowMicros()
        timer.schedule(after: .microseconds(max(0, wait)))
    }

    func timerFired() {
        let dbNow = localNowMicros() + skewMicros
        for (plan, _) in heap.popDue(upTo: dbNow + options.leadMicros) { enqueueClaim(plan, via: .timer) }
        metrics.armed.record(heap.count)
        kick()
        armTimer()
    }

    func enqueueClaim(_ plan: PlanID, via: ScheduleMetrics.Via) {
        if pendingSet.insert(plan).inserted {
            pending.append(plan)
            pendingVia[plan] = via
        }
    }

    /// Starts claim transactions while there is pending work and capacity.
    func kick() {
        while running, !draining, inFlight < options.maxInFlight, !pending.isEmpty {
            let n = takeBudget(min(options.claimBatch, pending.count))
            if n == 0 { return }
            let batch = Array(pending.prefix(n))
            pending.removeFirst(n)
            var vias: [PlanID: ScheduleMetrics.Via] = [:]
            for p in batch {
                pendingSet.remove(p)
                vias[p] = pendingVia.removeValue(forKey: p)
            }
            let via = vias.values.contains(.event) && !vias.values.contains(.timer) ? ScheduleMetrics.Via.event : .timer
            inFlight += 1
            claim(ids: batch, via: via)
        }
    }

    /// `WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK`: at most that many claims per second, shared by
    /// timers and the sweep. Returns how many of `want` may go now (0: a timer retries next second).
    func takeBudget(_ want: Int) -> Int {
        guard options.maxDispatchPerSecond > 0 else { return want }
        let now = localNowMicros()
        let second = now / 1_000_000
        if second != budgetSecond {
            budgetSecond = second
            budgetUsed = 0
        }
        let n = min(want, options.maxDispatchPerSecond - budgetUsed)
        if n <= 0 {
            budgetTimer.schedule(after: .microseconds(max(1000, (second + 1) * 1_000_000 - now)))
            return 0
        }
        budgetUsed += n
        return n
    }

    func claim(ids: [PlanID], via: ScheduleMetrics.Via) {
        let store = self.store, limit = ids.count, lead = options.leadMicros
        pool.run(
            on: loop,
            { c -> ClaimOutcome in
                var cache: [String: CronSchedule] = [:]
                let result = try store.claimDue(
                    c, ids: ids, limit: limit, via: via.rawValue, leadMicros: lead, cronCache: &cache)
                var o = ClaimOutcome(result: result)
                let settled = Set(result.advanced.map(\.id)).union(result.quarantined.map(\.0))
                o.unclaimed = ids.filter { !settled.contains($0) }
                o.reread = try store.read(c, ids: o.unclaimed)
                return o
            }
        ) { [self] outcome in
            inFlight -= 1
            switch outcome {
            case .success(let o): apply(o, via: via)
            case .failure(let e):
                reportError("claiming due plans", e)
                for p in ids { enqueueClaim(p, via: via) }  // try again shortly
                budgetTimer.schedule(after: .milliseconds(500))
            }
            kick()
            armTimer()
        }
    }

    func apply(_ o: ClaimOutcome, via: ScheduleMetrics.Via) {
        if !o.dueFires.isEmpty { record(o.delivery, fires: o.dueFires, via: via) }
        if !o.result.fires.isEmpty, o.dueFires.isEmpty { dispatch(o.result, via: via) }
        for (plan, reason) in o.result.quarantined {
            metrics.quarantined.increment()
            logger.error(
                "schedule plan quarantined: it cannot be computed and is skipped until it changes",
                metadata: ["plan": "\(plan)", "reason": "\(reason)"])
        }
        for p in o.result.advanced { arm(p) }
        let found = Set(o.reread.map(\.id))
        for p in o.unclaimed where !found.contains(p) { heap.disarm(p) }
        let now = localNowMicros() + skewMicros
        for r in o.reread {
            // Locked by another instance or not yet due by the database clock: look again shortly.
            arm(ArmedPlan(id: r.id, nextRunAt: max(r.nextRunAt, now + 5_000)))
        }
        metrics.armed.record(heap.count)
    }

    func record(_ d: Delivery, fires: [ClaimedFire], via: ScheduleMetrics.Via) {
        metrics.fired(via, fires.count)
        metrics.dispatched.increment(by: d.pushed)
        if d.duplicates > 0 { metrics.duplicatesSuppressed.increment(by: d.duplicates) }
        if let e = d.markError {
            reportError("marking fires enqueued (the sweep re-sends them; the broker drops the copies)", e)
        }
        if let e = d.error {
            metrics.dispatchErrors.increment()
            reportError("enqueueing \(fires.count) fires (the sweep re-sends them)", e)
        } else {
            for f in fires { metrics.lateness.recordMicroseconds(max(0, d.enqueuedAtMicros - f.scheduledAt)) }
        }
        for f in fires.prefix(20) {
            logger.info(
                "schedule fired",
                metadata: [
                    "plan": "\(f.plan)", "scheduled_at": "\(ISO.micros(f.scheduledAt))", "via": "\(via.rawValue)",
                    "queue": "schedule_executor", "task_id": "\(f.taskID)",
                ])
            recentFires.insert((f.plan, f.scheduledAt, via.rawValue), at: 0)
        }
        if fires.count > 20 {
            logger.info("schedule fired (more)", metadata: ["count": "\(fires.count - 20)", "via": "\(via.rawValue)"])
        }
        if recentFires.count > 50 { recentFires.removeLast(recentFires.count - 50) }
    }

    func reportError(_ what: String, _ error: any Error) {
        if case .log(let suppressed) = errorBurst.record(now: MonotonicNow.instant) {
            logger.error(
                "schedules: \(what) failed", metadata: ["error": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}

/// Unix µs from the local clock.
func localNowMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
}

struct Delivery: Sendable {
    var pushed = 0
    var duplicates = 0
    var enqueuedAtMicros: Int64 = 0
    var error: (any Error)?
    /// Pushed, but recording it in PostgreSQL failed (the claim stays open).
    var markError: (any Error)?
}

struct ClaimOutcome: Sendable {
    var result: ClaimResult
    /// Fires already pushed (and how) where the claim was made (the sweep); empty when the
    /// claim's fires are still to be dispatched.
    var delivery = Delivery()
    var dueFires: [ClaimedFire] = []
    var unclaimed: [PlanID] = []
    var reread: [ArmedPlan] = []
}

struct SweepOutcome: Sendable {
    var claims: [(ClaimResult, Delivery)] = []
    var resent = 0
    var resendDelivery = Delivery()
    var pruned = 0
}

/// One FireDispatcher per concurrent user (each owns a blocking broker connection).
final class DispatcherPool: Sendable {
    let idle = Mutex<[FireDispatcher]>([])
    let make: @Sendable () -> FireDispatcher

    init(make: @escaping @Sendable () -> FireDispatcher) { self.make = make }

    func with<T>(_ body: (FireDispatcher) throws -> T) throws -> T {
        let d = idle.withLock { $0.popLast() } ?? make()
        defer { idle.withLock { $0.append(d) } }
        return try body(d)
    }
}

enum ISO {
    static func micros(_ t: Int64) -> String {
        let secs = t / 1_000_000
        var tt = time_t(secs)
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour,
            tmv.tm_min, tmv.tm_sec)
    }
}
