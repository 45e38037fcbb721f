// Workflow schedules, event-driven. The due-time logic (arming within the horizon,
// the timer, claiming a lead ahead within the budget, releasing at the due instant,
// coalesced re-reads, window reloads, backoff, drain) is DueTimeEngine's, in
// HeraldCore; this service is its loop-side driver: it carries out the engine's
// actions with I/O (queries on the pool, pushes on the push thread) and feeds the
// results back. run_now and the sweep stay here, outside the engine.

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

    /// The engine's tunables for these options.
    var engineOptions: DueTimeEngine<PlanID>.Options {
        var o = DueTimeEngine<PlanID>.Options()
        o.horizonMicros = Int64(horizonSeconds) * 1_000_000
        o.leadMicros = leadMicros
        o.claimBudgetPerSecond = maxDispatchPerSecond
        o.armedCap = maxArmed
        o.windowReloadIntervalMicros = Int64(max(5, horizonSeconds / 5)) * 1_000_000
        o.claimBatchSize = claimBatch
        o.maxClaimsInFlight = max(1, maxInFlight)
        // A claim in flight when the drain starts may take fires a little beyond the lead (its
        // statement runs later): they are still pushed at their instant rather than handed back.
        o.drainWindowMicros = leadMicros + 2_000_000
        return o
    }
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

    /// The due-time logic; every input goes through `feed`.
    var engine: DueTimeEngine<PlanID>
    var running = false
    var sweeping = false
    var sweepAgain = false
    /// True from `drain` on: nothing new is claimed; what was claimed is pushed at its instant.
    var draining = false
    /// The engine said `.stopped`: nothing is held or claimed in flight any more.
    var engineStopped = false
    var drainDone: (() -> Void)?
    var drainDeadline: Int64 = 0
    /// Claims handed to the push thread to encode, and pushes in flight there (drain waits for both).
    var dispatching = 0
    var releasing = 0
    var lastPrune: Int64 = 0
    var pendingTriggers: Set<String> = []
    var triggerLookupInFlight = false
    var pendingRunNow: [PlanID] = []
    var runNowInFlight = false
    var runNowBurst = BurstLimiter()
    var errorBurst = BurstLimiter()
    /// The engine's one timer.
    lazy var timer = LoopTimer(loop: loop) { [unowned self] in self.feed(self.engine.tick(now: self.now())) }
    lazy var drainTimer = LoopTimer(loop: loop) { [unowned self] in self.drainCheck() }
    /// Per claim whose pushes have all succeeded so far: its release instants still to push, and
    /// the markers of the chunks pushed.
    var claimsLeft: [Int64: (left: Int, markers: [String])] = [:]
    /// Claims whose fires all reached the queue, to be marked enqueued, with their chunks' markers.
    var claimsToMark: [(claim: Int64, markers: [String])] = []
    var marking = false
    /// Encoding and pushes at release time run here, never behind claim transactions on the pool.
    let pushQueue = DispatchQueue(label: "herald.schedule-push")
    let pushDispatcher: FireDispatcher
    /// Claimed chunks waiting for their release; touched only on `pushQueue`.
    let heldChunks = HeldChunks()

    /// Operations that find and claim due plans (``ScheduleMetrics/Operation/findingDuePlans``) whose
    /// latest attempt failed, with when they started failing (Unix seconds) and the first error;
    /// cleared by the operation's next success (`herald status`, /healthz: not ready meanwhile).
    public internal(set) var failing: [ScheduleMetrics.Operation: (since: Double, error: String)] = [:]

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
        self.engine = DueTimeEngine(options: options.engineOptions)
    }

    /// Loads the first window and starts arming. Call on the loop.
    public func start() {
        loop.assertInLoop()
        guard !running else { return }
        running = true
        // Open the push connection and load the script now, not at the first fire's instant.
        let dispatcher = pushDispatcher
        pushQueue.async { try? dispatcher.warmUp() }
        feed(engine.start(now: now()))
    }

    /// Stops; in-flight work finishes on its own, and its results are dropped.
    public func stop() {
        loop.assertInLoop()
        running = false
        timer.cancel()
        drainTimer.cancel()
        // Pre-claimed fires not yet released (a stop without `drain`, or a drain past its
        // deadline) stay unenqueued in PostgreSQL; any instance's sweep sends them after their
        // time (HERALD_SCHEDULE_RESEND_AFTER).
        engine = DueTimeEngine(options: options.engineOptions)
        claimsLeft.removeAll()
        let dispatcher = pushDispatcher, book = heldChunks
        pushQueue.async {
            book.removeAll()
            dispatcher.encodedAhead = 0
        }
    }

    /// Number of plans armed now.
    public var armedCount: Int { engine.armedCount }

    /// Completed loads of the arming window (0 until the first one finished).
    public var windowLoads: Int { engine.windowLoads }

    /// The engine's clock: the local clock (Unix µs).
    func now() -> DueTimeInstant { DueTimeInstant(micros: localNowMicros()) }

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
            feed(engine.hint(plan, now: now()))
            if runNow { fireNow(plan) }
        case .tableChanged(let change) where change.table == PlanStore.plansTable:
            if let id = change.id.flatMap(PlanID.init) {
                feed(engine.hint(id, now: now()))
            } else {
                feed(engine.reloadWindow(now: now()))
            }
        case .tableChanged(let change) where change.table == PlanStore.triggersTable:
            guard let id = change.id else { return feed(engine.reloadWindow(now: now())) }
            pendingTriggers.insert(id)
            lookUpTriggers()
        case .tableChanged:
            feed(engine.reloadWindow(now: now()))
        case .sweep:
            sweep()
            // The window also reloads on the engine's timer; from sweeps at most every 5 s.
            let t = now()
            if let last = engine.lastWindowLoadStart, t.micros - last.micros <= 5_000_000 { return }
            feed(engine.reloadWindow(now: t))
        default:
            break
        }
    }

    /// Turns changed triggers into the plans they enable, which are then hinted (re-read: a plan
    /// whose trigger is no longer enabled is not found and is disarmed). One lookup at a time;
    /// ids arriving meanwhile go into the next.
    func lookUpTriggers() {
        guard running, !draining, !triggerLookupInFlight, !pendingTriggers.isEmpty else { return }
        let triggers = Array(pendingTriggers.prefix(5_000))
        pendingTriggers.subtract(triggers)
        triggerLookupInFlight = true
        let store = self.store
        pool.run(on: loop, { c in try store.plansOfTriggers(c, triggerIDs: triggers) }) { [self] result in
            triggerLookupInFlight = false
            guard running else { return }
            switch result {
            case .success(let plans):
                if !plans.isEmpty, !draining { feed(engine.hints(plans, now: now())) }
            case .failure(let e):
                reportError(.triggerLookup, "reading the plans of changed triggers", e)
            }
            lookUpTriggers()
        }
    }

    func record(_ d: Delivery, fires: [ClaimedFire], via: ScheduleMetrics.Via) {
        metrics.fired(via, fires.count)
        metrics.dispatched.increment(by: d.pushed)
        if d.duplicates > 0 { metrics.duplicatesSuppressed.increment(by: d.duplicates) }
        if let e = d.markError {
            reportError(
                .markEnqueued, "marking fires enqueued (the sweep re-sends them; the broker drops the copies)", e)
        }
        if let e = d.error {
            metrics.dispatchErrors.increment()
            reportError(.push, "enqueueing \(fires.count) fires (the sweep re-sends them)", e)
        } else {
            for f in fires { metrics.lateness.recordMicroseconds(max(0, d.enqueuedAtMicros - f.scheduledAt)) }
        }
        // Say what happened: "fired" only when the message reached the broker.
        let delivered = d.error == nil
        let (message, level): (Logger.Message, Logger.Level) =
            delivered
            ? ("schedule fired", .info) : ("schedule claimed, not enqueued yet (the sweep re-sends it)", .warning)
        for f in fires.prefix(20) {
            logger.log(
                level: level, message,
                metadata: [
                    "plan": "\(f.plan)", "scheduled_at": "\(ISO.micros(f.scheduledAt))", "via": "\(via.rawValue)",
                    "queue": "schedule_executor", "task_id": "\(f.taskID)",
                ])
            if delivered { recentFires.insert((f.plan, f.scheduledAt, via.rawValue), at: 0) }
        }
        if fires.count > 20 {
            logger.log(
                level: level, "\(message) (more)", metadata: ["count": "\(fires.count - 20)", "via": "\(via.rawValue)"])
        }
        if recentFires.count > 50 { recentFires.removeLast(recentFires.count - 50) }
    }

    /// Logs plans newly quarantined by a claim (timer, event or sweep).
    func logQuarantined(_ quarantined: [(PlanID, String)]) {
        for (plan, reason) in quarantined {
            metrics.quarantined.increment()
            logger.error(
                "schedule plan quarantined: it cannot be computed and is skipped until it changes",
                metadata: ["plan": "\(plan)", "reason": "\(reason)"])
        }
    }

    func reportError(_ operation: ScheduleMetrics.Operation, _ what: String, _ error: any Error) {
        metrics.failed(operation)
        if ScheduleMetrics.Operation.findingDuePlans.contains(operation), failing[operation] == nil {
            failing[operation] = (Double(localNowMicros()) / 1e6, "\(error)")
        }
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
