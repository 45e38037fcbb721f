// Plugin upgrade checks at each tenant's own time. Dify's beat entry wakes every 15
// minutes, selects the strategies whose `upgrade_time_of_day` falls in the window and
// sends the per-tenant checks in sleeping batches of 20; here each enabled strategy
// of `tenant_plugin_auto_upgrade_strategies` is armed for the UTC instant of its time
// of day, claimed once across instances (herald.plugin_check_fires), and released with
// Dify's positional args on `plugin` once the window's marketplace manifest is cached
// (PluginManifest.swift). Strategies are read at start, on NOTIFY and at each sweep.
// docs/tasks.md, "check_upgradable_plugin_task".

import CoreMetrics
import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import Logging

/// One enabled strategy.
public struct PluginStrategy: Sendable, Equatable {
    public var tenant: String
    public var setting: String
    /// Seconds after UTC midnight.
    public var timeOfDay: Int64
    public var mode: String
    public var exclude: [String]
    public var include: [String]
}

/// A claimed check.
public struct ClaimedPluginCheck: Sendable {
    public var strategy: PluginStrategy
    /// Unix µs.
    public var dueAt: Int64
}

/// The plugin checks' statements. Blocking: run them off the loop.
public struct PluginCheckStore: Sendable {
    public let instanceID: String
    public static let strategiesTable = "tenant_plugin_auto_upgrade_strategies"

    static let columns = """
        s.tenant_id::text, s.strategy_setting, s.upgrade_time_of_day, s.upgrade_mode, s.exclude_plugins::text,
        s.include_plugins::text
        """

    /// Enabled strategies; those with a time of day outside 0..<86400 are returned apart.
    public func strategies(_ c: PostgresConnection) throws -> (usable: [PluginStrategy], bad: [String]) {
        let r = try c.query(
            "SELECT \(Self.columns) FROM tenant_plugin_auto_upgrade_strategies s WHERE s.strategy_setting <> 'disabled'"
        )
        var usable: [PluginStrategy] = []
        var bad: [String] = []
        for row in r.rows {
            guard let s = Self.strategy(row, offset: 0) else { continue }
            if (0..<86_400).contains(s.timeOfDay) { usable.append(s) } else { bad.append(s.tenant) }
        }
        return (usable, bad)
    }

    /// Claims (tenant, due) pairs whose strategy is still enabled at that time of day.
    public func claim(_ c: PostgresConnection, _ due: [(tenant: String, dueAt: Int64)]) throws -> [ClaimedPluginCheck] {
        let r = try c.query(
            """
            WITH x AS (
                SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS x(tenant_id, due_at)
            ), ins AS (
                INSERT INTO herald.plugin_check_fires (tenant_id, due_at, claimed_by)
                SELECT x.tenant_id, x.due_at, $3 FROM x
                  JOIN tenant_plugin_auto_upgrade_strategies s ON s.tenant_id = x.tenant_id
                 WHERE s.strategy_setting <> 'disabled'
                   AND s.upgrade_time_of_day = ((x.due_at / 1000000) % 86400)::int
                ON CONFLICT DO NOTHING
                RETURNING tenant_id, due_at
            )
            SELECT ins.due_at, \(Self.columns) FROM ins JOIN tenant_plugin_auto_upgrade_strategies s USING (tenant_id)
            """,
            [
                "{" + due.map(\.tenant).joined(separator: ",") + "}",
                "{" + due.map { String($0.dueAt) }.joined(separator: ",") + "}", instanceID,
            ])
        return r.rows.compactMap { row in
            guard let d = row[0].flatMap({ Int64($0) }), let s = Self.strategy(row, offset: 1) else { return nil }
            return ClaimedPluginCheck(strategy: s, dueAt: d)
        }
    }

    /// Records how claimed checks ended (`enqueued` or `expired`).
    public func markSent(_ c: PostgresConnection, _ checks: [ClaimedPluginCheck], outcome: String) throws {
        guard !checks.isEmpty else { return }
        _ = try c.query(
            """
            UPDATE herald.plugin_check_fires f SET enqueued_at = now(), outcome = $3
              FROM unnest($1::uuid[], $2::bigint[]) AS x(tenant_id, due_at)
             WHERE f.tenant_id = x.tenant_id AND f.due_at = x.due_at AND f.enqueued_at IS NULL
            """,
            [
                "{" + checks.map(\.strategy.tenant).joined(separator: ",") + "}",
                "{" + checks.map { String($0.dueAt) }.joined(separator: ",") + "}", outcome,
            ])
    }

    /// Checks claimed `olderThanSeconds` ago and never sent (their instance died), with their strategy.
    public func unsent(_ c: PostgresConnection, olderThanSeconds: Int) throws -> [ClaimedPluginCheck] {
        let r = try c.query(
            """
            SELECT f.due_at, \(Self.columns) FROM herald.plugin_check_fires f
              JOIN tenant_plugin_auto_upgrade_strategies s USING (tenant_id)
             WHERE f.enqueued_at IS NULL AND f.claimed_at < now() - make_interval(secs => $1::int)
             LIMIT 1000
            """, [String(olderThanSeconds)])
        return r.rows.compactMap { row in
            guard let d = row[0].flatMap({ Int64($0) }), let s = Self.strategy(row, offset: 1) else { return nil }
            return ClaimedPluginCheck(strategy: s, dueAt: d)
        }
    }

    static func strategy(_ row: [String?], offset o: Int) -> PluginStrategy? {
        guard let tenant = row[o], let setting = row[o + 1], let tod = row[o + 2].flatMap({ Int64($0) }),
            let mode = row[o + 3]
        else { return nil }
        return PluginStrategy(
            tenant: tenant, setting: setting, timeOfDay: tod, mode: mode, exclude: strings(row[o + 4]),
            include: strings(row[o + 5]))
    }

    /// The strings of a JSON array (anything else: none).
    static func strings(_ text: String?) -> [String] {
        guard let text, case .array(let items)? = try? JSONReader.parse(Array(text.utf8)) else { return [] }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
}

/// Tunables and identity of the plugin checks.
public struct PluginCheckOptions: Sendable {
    public var marketplaceURL = "https://marketplace.dify.ai"
    public var difyVersion = "1.14.2"
    public var resendAfterSeconds = 10
    /// Runs each marketplace call (the daemon's circuit breaker); default: directly.
    public var guarded: @Sendable (() throws -> [UInt8]) throws -> [UInt8] = { try $0() }
    public init() {}
}

/// The plugin check service. Loop-confined; `@unchecked Sendable` to cross into pool callbacks.
public final class PluginCheckService: @unchecked Sendable {
    static let window: Int64 = 900

    let loop: EventLoop
    let pool: PostgresPool
    let store: PluginCheckStore
    let manifest: PluginManifestCache
    let sender: CeleryBeatSender
    let logger: Logger
    let options: PluginCheckOptions
    let outcomes: [String: CoreMetrics.Counter]
    var strategies: [String: PluginStrategy] = [:]
    /// The next due instant (Unix µs) of each tenant.
    var next: [String: Int64] = [:]
    var running = false
    var loading = false
    var loadAgain = false
    /// Tenants whose strategy has an unusable time of day (logged and counted once each).
    var unusable: Set<String> = []
    var claiming = false
    /// Claimed checks waiting for their window's manifest.
    var pending: [ClaimedPluginCheck] = []
    var releasing = false
    var retry = Backoff(base: .seconds(1), cap: .seconds(30))
    var errorBurst = BurstLimiter()
    let sendQueue = DispatchQueue(label: "herald.plugin-checks")
    lazy var timer = LoopTimer(loop: loop) { [unowned self] in self.due() }
    lazy var retryTimer = LoopTimer(loop: loop) { [unowned self] in self.release() }

    public init(
        loop: EventLoop, pool: PostgresPool, app: RedisEndpoint, broker: RedisEndpoint, redisKeyPrefix: String,
        instanceID: String, factory: any MetricsFactory, options: PluginCheckOptions, logger: Logger
    ) {
        self.loop = loop
        self.pool = pool
        self.store = PluginCheckStore(instanceID: instanceID)
        self.manifest = PluginManifestCache(
            app: app, redisKeyPrefix: redisKeyPrefix, marketplaceURL: options.marketplaceURL,
            difyVersion: options.difyVersion, instanceID: instanceID, guarded: options.guarded)
        self.sender = CeleryBeatSender(broker: broker, redisKeyPrefix: redisKeyPrefix, origin: "herald@\(instanceID)")
        self.options = options
        self.logger = logger
        outcomes = Self.metrics(factory)
    }

    /// `herald_plugin_check_total{outcome}`, created (at zero) whether the service runs or not.
    @discardableResult
    public static func metrics(_ factory: any MetricsFactory) -> [String: CoreMetrics.Counter] {
        var o: [String: CoreMetrics.Counter] = [:]
        for outcome in ["enqueued", "duplicate", "expired", "manifest_failed", "skipped"] {
            o[outcome] = Counter(
                label: "herald_plugin_check_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        return o
    }

    func count(_ outcome: String, _ n: Int = 1) { outcomes[outcome]?.increment(by: Int64(n)) }

    /// Reads the strategies and arms. Call on the loop.
    public func start() {
        loop.assertInLoop()
        guard !running else { return }
        running = true
        reload()
    }

    public func stop() {
        loop.assertInLoop()
        running = false
        timer.cancel()
        retryTimer.cancel()
    }

    /// Tenants armed now.
    public var armedCount: Int { next.count }

    /// A change of the strategies table reloads them; the sweep reloads them and sends what was
    /// claimed and never sent.
    public func handle(_ event: Event) {
        guard running else { return }
        switch event {
        case .tableChanged(let change) where change.table == PluginCheckStore.strategiesTable:
            reload()
        case .sweep:
            reload()
            resendUnsent()
        default:
            break
        }
    }

    /// Reads the strategies (once more after the read in flight, if one is).
    func reload() {
        guard !loading else {
            loadAgain = true
            return
        }
        loading = true
        loadAgain = false
        let store = self.store
        pool.run(on: loop, { c in try store.strategies(c) }) { [self] result in
            loading = false
            guard running else { return }
            defer { if loadAgain { reload() } }
            switch result {
            case .success(let (usable, bad)):
                let new = Set(bad).subtracting(unusable)
                unusable = Set(bad)
                if !new.isEmpty {
                    count("skipped", new.count)
                    logger.error(
                        "plugin checks: strategies with an upgrade_time_of_day outside 0…86399 are skipped",
                        metadata: ["tenants": "\(new.sorted().prefix(5))", "count": "\(new.count)"])
                }
                strategies = Dictionary(usable.map { ($0.tenant, $0) }) { a, _ in a }
                arm()
            case .failure(let e):
                report("reading the plugin upgrade strategies", "\(e)")
            }
        }
    }

    /// Each strategy's next instant: today's, if it is not before the current 15-minute window
    /// (so a time passed within the window is still released), else tomorrow's.
    func arm() {
        let now = localNowMicros()
        let dayStart = (now / 1_000_000) / 86_400 * 86_400
        let windowStart = (now / 1_000_000) / Self.window * Self.window
        var next: [String: Int64] = [:]
        for s in strategies.values {
            var at = dayStart + s.timeOfDay
            if at < windowStart { at += 86_400 }
            // Keep a later instant already armed for this tenant (the one claimed today is done).
            if let armed = self.next[s.tenant], armed > at * 1_000_000,
                armed % 86_400_000_000 == at * 1_000_000 % 86_400_000_000
            {
                next[s.tenant] = armed
            } else {
                next[s.tenant] = at * 1_000_000
            }
        }
        self.next = next
        schedule()
    }

    func schedule() {
        guard let first = next.values.min() else { return timer.cancel() }
        timer.schedule(after: .microseconds(max(0, first - localNowMicros())))
    }

    /// The timer: claims every tenant due now.
    func due() {
        guard running, !claiming else { return }
        let now = localNowMicros()
        let due = next.filter { $0.value <= now }.map { (tenant: $0.key, dueAt: $0.value) }
        guard !due.isEmpty else { return schedule() }
        for d in due { next[d.tenant] = d.dueAt + 86_400_000_000 }
        claiming = true
        let store = self.store
        pool.run(on: loop, { c in try store.claim(c, due) }) { [self] result in
            claiming = false
            guard running else { return }
            switch result {
            case .success(let claimed):
                pending += claimed
                release()
            case .failure(let e):
                report("claiming plugin checks (tried again in 1 s)", "\(e)")
                for d in due { next[d.tenant] = d.dueAt }
                timer.schedule(after: .seconds(1))
                return
            }
            schedule()
        }
    }

    /// Sends the pending checks once their window's manifest is cached; checks whose window ended
    /// while the manifest could not be had are recorded as expired.
    func release() {
        guard running, !releasing, !pending.isEmpty else { return }
        releasing = true
        let batch = pending
        pending = []
        let manifest = self.manifest, sender = self.sender, store = self.store, pool = self.pool
        sendQueue.async { [loop] in
            var sent: [ClaimedPluginCheck] = [], duplicates = 0, expired: [ClaimedPluginCheck] = []
            var waiting: [ClaimedPluginCheck] = [], failure: String?
            let byWindow = Dictionary(grouping: batch) { $0.dueAt / 1_000_000 / PluginCheckService.window }
            for (w, checks) in byWindow.sorted(by: { $0.key < $1.key }) {
                do {
                    try manifest.ensure(window: w * PluginCheckService.window)
                } catch {
                    let windowEnd = (w + 1) * PluginCheckService.window * 1_000_000
                    if localNowMicros() >= windowEnd { expired += checks } else { waiting += checks }
                    failure = "\(error)"
                    continue
                }
                for c in checks {
                    do {
                        switch try Self.send(c, sender: sender) {
                        case .enqueued: sent.append(c)
                        case .alreadySent:
                            sent.append(c)
                            duplicates += 1
                        }
                    } catch {
                        waiting.append(c)
                        failure = "\(error)"
                    }
                }
            }
            var markError: String?
            do {
                try pool.withConnection { c in
                    try store.markSent(c, sent, outcome: "enqueued")
                    try store.markSent(c, expired, outcome: "expired")
                }
            } catch { markError = "\(error)" }
            let result = (sent, duplicates, expired, waiting, failure, markError)
            loop.execute { [self] in self.released(result) }
        }
    }

    static func send(_ c: ClaimedPluginCheck, sender: CeleryBeatSender) throws -> CeleryBeatSendResult {
        let s = c.strategy
        let call = CeleryBeatCall(
            task: DifyCeleryTasks.processTenantPluginAutoupgradeCheck.name,
            queue: DifyCeleryTasks.processTenantPluginAutoupgradeCheck.queue,
            args: [
                .string(s.tenant), .string(s.setting), .number(Double(s.timeOfDay)), .string(s.mode),
                .array(s.exclude.map(JSONValue.string)), .array(s.include.map(JSONValue.string)),
            ])
        return try sender.send(call, task: .checkUpgradablePlugin, tick: c.dueAt / 1_000_000, key: s.tenant)
    }

    func released(
        _ r: ([ClaimedPluginCheck], Int, [ClaimedPluginCheck], [ClaimedPluginCheck], String?, String?)
    ) {
        releasing = false
        let (sent, duplicates, expired, waiting, failure, markError) = r
        count("enqueued", sent.count - duplicates)
        count("duplicate", duplicates)
        count("expired", expired.count)
        for c in sent.prefix(20) {
            logger.info(
                "plugin upgrade check enqueued",
                metadata: [
                    "tenant": "\(c.strategy.tenant)", "due_at": "\(ISO.micros(c.dueAt))",
                    "upgrade_time_of_day": "\(c.strategy.timeOfDay)",
                ])
        }
        if !expired.isEmpty {
            logger.error(
                "plugin upgrade checks dropped: their window ended before the marketplace manifest could be had",
                metadata: ["count": "\(expired.count)"])
        }
        if let markError { report("recording plugin checks as sent (the sweep sends them again)", markError) }
        guard running else { return }
        pending += waiting
        if let failure, !waiting.isEmpty {
            count("manifest_failed")
            let delay = retry.next()
            report("sending plugin checks (tried again in \(delay))", failure)
            retryTimer.schedule(after: delay)
        } else {
            retry.reset()
            release()
        }
    }

    func resendUnsent() {
        let store = self.store, after = options.resendAfterSeconds
        pool.run(on: loop, { c in try store.unsent(c, olderThanSeconds: after) }) { [self] result in
            guard running, case .success(let unsent) = result, !unsent.isEmpty else { return }
            let known = Set(pending.map { "\($0.strategy.tenant)@\($0.dueAt)" })
            pending += unsent.filter { !known.contains("\($0.strategy.tenant)@\($0.dueAt)") }
            release()
        }
    }

    func report(_ what: String, _ error: String) {
        if case .log(let suppressed) = errorBurst.record(now: MonotonicNow.instant) {
            logger.error(
                "plugin checks: \(what)", metadata: ["error": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}
