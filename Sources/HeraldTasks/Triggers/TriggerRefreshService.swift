// Trigger credentials and subscriptions refreshed at their own due instants, the
// loop-side driver of a DueTimeEngine (Sources/HeraldCore/Schedules/DueTimeEngine.swift)
// over herald.trigger_refresh_due: subscriptions due within the horizon are armed as
// timers, claimed a lead ahead and released at the due instant. Every instance learns
// of a due instant also through a Redis key `herald:expiry:trigger_subscription:<id>`
// whose TTL ends at it (its expired event is a hint), of a change through NOTIFY, and
// of anything missed through the sweep. docs/tasks.md, "trigger_provider_refresh_task".

import CoreMetrics
import Foundation
import HeraldCore
import HeraldIO
import Logging

/// Tunables of the trigger refresh.
public struct TriggerRefreshOptions: Sendable {
    /// `TRIGGER_PROVIDER_CREDENTIAL_THRESHOLD_SECONDS` (Dify's default 3600).
    public var credentialThreshold = 3600
    /// `TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS` (Dify's default 3600).
    public var subscriptionThreshold = 3600
    /// Subscriptions due within this many seconds are armed.
    public var horizonSeconds = 300
    /// Claimed this long before the due instant, released at it.
    public var leadMicros: Int64 = 1_000_000
    /// A claimed refresh not recorded as sent after this long is sent again by the sweep.
    public var resendAfterSeconds = 10
    /// Fire records are kept this many days.
    public var keepFiresDays = 7

    public init() {}

    var engineOptions: DueTimeEngine<PlanID>.Options {
        var o = DueTimeEngine<PlanID>.Options()
        o.horizonMicros = Int64(horizonSeconds) * 1_000_000
        o.leadMicros = leadMicros
        o.windowReloadIntervalMicros = Int64(max(5, horizonSeconds / 5)) * 1_000_000
        o.claimBatchSize = 500
        return o
    }
}

/// The trigger refresh's metrics (docs/metrics.md).
public struct TriggerRefreshMetrics: Sendable {
    let outcomes: [String: CoreMetrics.Counter]
    let lateness: CoreMetrics.Timer
    let errors: CoreMetrics.Counter

    public init(factory: any MetricsFactory) {
        var o: [String: CoreMetrics.Counter] = [:]
        for outcome in ["enqueued", "duplicate", "locked", "failed"] {
            o[outcome] = Counter(
                label: "herald_trigger_refresh_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        outcomes = o
        lateness = Timer(label: "herald_trigger_refresh_lateness_seconds", dimensions: [], factory: factory)
        errors = Counter(label: "herald_trigger_refresh_errors_total", dimensions: [], factory: factory)
    }

    func count(_ outcome: String, _ n: Int = 1) { outcomes[outcome]?.increment(by: Int64(n)) }
}

/// The trigger refresh service. Loop-confined; `@unchecked Sendable` to cross into pool callbacks.
public final class TriggerRefreshService: @unchecked Sendable {
    public typealias Engine = DueTimeEngine<PlanID>

    let loop: EventLoop
    let pool: PostgresPool
    let store: TriggerRefreshStore
    let sender: TriggerRefreshSender
    let app: RedisEndpoint
    let keyNamespace: String
    let metrics: TriggerRefreshMetrics
    let options: TriggerRefreshOptions
    let logger: Logger
    var engine: Engine
    var running = false
    var sweeping = false
    var claimCounter: Int64 = 0
    /// Claimed refreshes by claim, waiting for their release.
    var held: [Int64: [PlanID: ClaimedRefresh]] = [:]
    /// The due instant each subscription's expiry key was set for.
    var keyed: [PlanID: Int64] = [:]
    var lastPrune: Int64 = 0
    var errorBurst = BurstLimiter()
    let sendQueue = DispatchQueue(label: "herald.trigger-refresh")
    lazy var timer = LoopTimer(loop: loop) { [unowned self] in self.feed(self.engine.tick(now: self.now())) }

    /// Refreshes enqueued, newest first (for `herald status`).
    public private(set) var recent: [(subscription: PlanID, dueAt: Int64, outcome: String)] = []

    public init(
        loop: EventLoop, pool: PostgresPool, app: RedisEndpoint, broker: RedisEndpoint, redisKeyPrefix: String,
        instanceID: String, metrics: TriggerRefreshMetrics, options: TriggerRefreshOptions = TriggerRefreshOptions(),
        logger: Logger
    ) {
        self.loop = loop
        self.pool = pool
        self.store = TriggerRefreshStore(instanceID: instanceID)
        self.sender = TriggerRefreshSender(
            app: app, broker: broker, redisKeyPrefix: redisKeyPrefix, instanceID: instanceID,
            subscriptionThreshold: options.subscriptionThreshold)
        self.app = app
        self.keyNamespace = redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
        self.metrics = metrics
        self.options = options
        self.logger = logger
        self.engine = Engine(options: options.engineOptions)
    }

    /// Writes the thresholds (recomputing due instants when they changed), then arms. Call on the loop.
    public func start() {
        loop.assertInLoop()
        guard !running else { return }
        running = true
        let store = self.store, o = options
        pool.run(
            on: loop,
            { c in
                try store.applyThresholds(
                    c, credentialSeconds: o.credentialThreshold, subscriptionSeconds: o.subscriptionThreshold)
            }
        ) { [self] result in
            guard running else { return }
            switch result {
            case .success(let n):
                if n > 0 {
                    logger.info(
                        "trigger refresh: thresholds changed, due instants recomputed", metadata: ["rows": "\(n)"])
                }
            case .failure(let e):
                report("writing the refresh thresholds (the ones in the database stay in force)", e)
            }
            feed(engine.start(now: now()))
        }
    }

    /// Stops; claimed refreshes not yet sent are sent by any instance's sweep.
    public func stop() {
        loop.assertInLoop()
        running = false
        timer.cancel()
        engine = Engine(options: options.engineOptions)
        held.removeAll()
        keyed.removeAll()
    }

    /// Subscriptions armed now.
    public var armedCount: Int { engine.armedCount }

    func now() -> DueTimeInstant { DueTimeInstant(micros: localNowMicros()) }

    // MARK: Events

    /// A changed subscription is re-read, a bulk change reloads the window, an expiry key's event
    /// is a hint for its subscription, the sweep claims what is overdue and re-sends what was
    /// claimed and never sent. Call on the loop.
    public func handle(_ event: Event) {
        guard running else { return }
        switch event {
        case .tableChanged(let change) where change.table == TriggerRefreshStore.subscriptionsTable:
            if let id = change.id.flatMap(PlanID.init) {
                feed(engine.hint(id, now: now()))
            } else {
                feed(engine.reloadWindow(now: now()))
            }
        case .keyExpired(let name):
            guard name.hasPrefix(Self.keyKind), let id = PlanID(String(name.dropFirst(Self.keyKind.count))) else {
                return
            }
            feed(engine.hint(id, now: now()))
        case .sweep:
            sweep()
        default:
            break
        }
    }

    /// The name after `herald:expiry:` of a subscription's expiry key.
    static let keyKind = "trigger_subscription:"

    // MARK: Engine actions

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
            case .claim(let ids, _):
                claim(ids)
            case .push(let releases):
                release(releases)
            case .retryAfter, .handBack, .stopped:
                break
            }
        }
    }

    func read(_ ids: [PlanID]) {
        let store = self.store
        pool.run(on: loop, { c in try store.read(c, ids: ids) }) { [self] result in
            guard running else { return }
            let t = now()
            switch result {
            case .success(let rows):
                feed(
                    engine.rowsRead(
                        rows.map { (id: $0.id, dueAtMicros: $0.dueAt) }, databaseNowMicros: engine.databaseNow(t),
                        measuredAt: t, now: t))
            case .failure(let e):
                report("re-reading subscriptions", e)
                feed(engine.readFailed(now: t))
            }
        }
    }

    func loadWindow(limit: Int) {
        let store = self.store, horizon = options.horizonSeconds
        pool.run(
            on: loop,
            { c -> ([DueSubscription], Int64, Int64) in
                let skew = try PlanStore(instanceID: "").clockSkew(c, localNow: localNowMicros)
                let local = localNowMicros()
                let rows = try store.loadWindow(c, horizonSeconds: horizon, limit: limit)
                return (rows, local + skew, local)
            }
        ) { [self] result in
            guard running else { return }
            switch result {
            case .success(let (rows, dbNow, local)):
                feed(
                    engine.windowLoaded(
                        rows.map { (id: $0.id, dueAtMicros: $0.dueAt) }, databaseNowMicros: dbNow,
                        measuredAt: DueTimeInstant(micros: local), now: now()))
                setExpiryKeys(rows, databaseNow: dbNow)
            case .failure(let e):
                report("loading the refresh window", e)
                feed(engine.windowLoadFailed(now: now()))
            }
        }
    }

    func claim(_ ids: [PlanID]) {
        let store = self.store, lead = options.leadMicros
        pool.run(on: loop, { c in try store.claimDue(c, ids: ids, leadMicros: lead) }) { [self] result in
            guard running else { return }
            switch result {
            case .success(let r):
                claimCounter += 1
                if !r.fires.isEmpty {
                    held[claimCounter] = Dictionary(r.fires.map { ($0.subscription, $0) }) { a, _ in a }
                }
                feed(
                    engine.claimSucceeded(
                        ids, claim: claimCounter, fires: r.fires.map { (id: $0.subscription, dueAtMicros: $0.dueAt) },
                        next: r.next.map { (id: $0.id, dueAtMicros: $0.dueAt) }, settled: r.settled, now: now()))
            case .failure(let e):
                report("claiming due refreshes", e)
                feed(engine.claimFailed(ids, now: now()))
            }
        }
    }

    /// `.push`: the due instant came; each refresh is locked and enqueued on the send queue.
    func release(_ releases: [Engine.Release]) {
        var fires: [ClaimedRefresh] = []
        for r in releases {
            for id in r.ids {
                if let f = held[r.claim]?.removeValue(forKey: id) { fires.append(f) }
            }
            if held[r.claim]?.isEmpty == true { held[r.claim] = nil }
        }
        send(fires)
    }

    /// Sends `fires` off the loop and records how each ended.
    func send(_ fires: [ClaimedRefresh]) {
        guard !fires.isEmpty else { return }
        let sender = self.sender, store = self.store, pool = self.pool, loop = self.loop
        sendQueue.async {
            var byOutcome: [TriggerRefreshSendResult: [ClaimedRefresh]] = [:]
            var failed: [(ClaimedRefresh, String)] = []
            var sentAt: [PlanID: Int64] = [:]
            for f in fires {
                do {
                    let r = try sender.send(f)
                    byOutcome[r, default: []].append(f)
                    sentAt[f.subscription] = localNowMicros()
                } catch { failed.append((f, "\(error)")) }
            }
            var markError: (any Error)?
            do {
                try pool.withConnection { c in
                    try store.markSent(
                        c, (byOutcome[.enqueued] ?? []) + (byOutcome[.duplicate] ?? []), outcome: "enqueued")
                    try store.markSent(c, byOutcome[.locked] ?? [], outcome: "locked")
                }
            } catch { markError = error }
            let outcome = byOutcome, failures = failed, at = sentAt, mark = markError
            loop.execute { [self] in self.recordSent(outcome, failures, at, mark) }
        }
    }

    func recordSent(
        _ outcome: [TriggerRefreshSendResult: [ClaimedRefresh]], _ failed: [(ClaimedRefresh, String)],
        _ sentAt: [PlanID: Int64], _ markError: (any Error)?
    ) {
        for (result, fires) in outcome {
            metrics.count(result.rawValue, fires.count)
            for f in fires {
                if result == .enqueued, let at = sentAt[f.subscription] {
                    metrics.lateness.recordMicroseconds(max(0, at - f.dueAt))
                }
                logger.info(
                    result == .locked
                        ? "trigger refresh skipped: Dify's refresh lock is held" : "trigger refresh enqueued",
                    metadata: [
                        "subscription": "\(f.subscription)", "tenant": "\(f.tenant)",
                        "due_at": "\(ISO.micros(f.dueAt))",
                        "attempt": "\(f.attempt)", "outcome": "\(result.rawValue)",
                    ])
                recent.insert((f.subscription, f.dueAt, result.rawValue), at: 0)
            }
        }
        if recent.count > 50 { recent.removeLast(recent.count - 50) }
        if !failed.isEmpty {
            metrics.count("failed", failed.count)
            report("enqueueing \(failed.count) refreshes (the sweep sends them again)", SendFailure(text: failed[0].1))
        }
        if let markError {
            report("recording refreshes as sent (the sweep sends them again; the broker drops the copies)", markError)
        }
    }

    /// Sets each armed subscription's expiry key to expire at its due instant (µs, database time),
    /// once per due instant: every instance's expired event is a hint for it.
    func setExpiryKeys(_ rows: [DueSubscription], databaseNow: Int64) {
        let fresh = rows.filter { $0.dueAt > databaseNow + 1_000_000 && keyed[$0.id] != $0.dueAt }
        guard !fresh.isEmpty else { return }
        for r in fresh { keyed[r.id] = r.dueAt }
        if keyed.count > 4 * max(1, engine.armedCount) + 10_000 {
            keyed = Dictionary(rows.map { ($0.id, $0.dueAt) }) { a, _ in a }
        }
        let app = self.app, ns = keyNamespace + Channels.expiryKeyPrefix + Self.keyKind
        sendQueue.async { [logger] in
            do {
                let client = try RedisClient.gated(endpoint: app)
                _ = try client.pipeline(
                    fresh.map { r in
                        [
                            Array("SET".utf8), Array((ns + r.id.description).utf8), Array("1".utf8), Array("PXAT".utf8),
                            Array(String(r.dueAt / 1000).utf8),
                        ]
                    })
            } catch {
                logger.debug(
                    "trigger refresh: expiry keys not set (timers and the sweep cover them)",
                    metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Sweep

    /// Overdue subscriptions are hinted (read and claimed), unsent claims sent again, old records pruned.
    func sweep() {
        guard !sweeping else { return }
        sweeping = true
        let store = self.store, o = options
        let prune = localNowMicros() - lastPrune > 3_600_000_000
        if prune { lastPrune = localNowMicros() }
        pool.run(
            on: loop,
            { c -> ([PlanID], [ClaimedRefresh]) in
                if prune { _ = try store.pruneFires(c, olderThanDays: o.keepFiresDays) }
                return (
                    try store.overdue(c, limit: 1_000),
                    try store.unsent(c, olderThanSeconds: o.resendAfterSeconds, limit: 500)
                )
            }
        ) { [self] result in
            sweeping = false
            guard running else { return }
            switch result {
            case .success(let (overdue, unsent)):
                if !overdue.isEmpty { feed(engine.hints(overdue, now: now())) }
                if !unsent.isEmpty {
                    logger.warning(
                        "trigger refresh: sending claimed refreshes again", metadata: ["count": "\(unsent.count)"])
                    send(unsent)
                }
            case .failure(let e):
                report("sweeping due refreshes", e)
            }
        }
    }

    func report(_ what: String, _ error: any Error) {
        metrics.errors.increment()
        if case .log(let suppressed) = errorBurst.record(now: MonotonicNow.instant) {
            logger.error(
                "trigger refresh: \(what) failed",
                metadata: ["error": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}

struct SendFailure: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
