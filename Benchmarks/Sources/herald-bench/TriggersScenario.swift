// Scenario `triggers` (docs/benchmarks.md): Herald's trigger refresh beside Dify's
// one-minute publisher (Tests/Support/bench_dify_trigger_publisher.py: count, OFFSET
// pages, a pipeline of locks, one Celery group) on the same data in the same run.
// 1. Lateness: of `due` subscriptions among `subscriptions`, due over one minute, from
//    the due instant to the message on `trigger_refresh_executor` (a BRPOP consumer
//    stamps each arrival). Herald runs as the real `herald run`; Dify's publisher ticks
//    once at the end of the minute, as its one-minute poll meets a uniform spread.
// 2. Messages per hour for a tenant whose token lives one hour (threshold 3600 s): each
//    side's rule applied over one hour, Herald's through its own SQL function.
// 3. The sweep's query at `sweepRows` subscriptions, against Dify's due count.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldTasks

struct TriggersConfig: Sendable {
    var subscriptions = 100_000
    var due = 2_000
    var windowSeconds = 60
    var sweepRows = 1_000_000
    /// Overdue subscriptions the sweep finds (what a short outage leaves).
    var sweepOverdue = 100
    var python = true
}

final class TriggersScenario {
    static let name = "triggers"
    private let environment: BenchEnvironment
    private let config: TriggersConfig
    private let keyPrefix = "hbtrig\(getpid())"

    init(environment: BenchEnvironment, config: TriggersConfig) {
        self.environment = environment
        self.config = config
    }

    private func progress(_ message: String) {
        FileHandle.standardError.write(Data("[triggers] \(message)\n".utf8))
    }

    func run() throws -> ScenarioReport {
        let started = BenchClock.monotonicNs()
        let data = try ScheduleBenchData(environment: environment)
        let names = ["herald_bench_trig_h", "herald_bench_trig_d", "herald_bench_trig_sweep"]
        for n in names { data.drop(n) }
        let redis = try RedisClient(endpoint: environment.redis)
        defer {
            progress("cleaning up")
            for n in names { data.drop(n) }
            _ = ScheduleBenchData.deleteKeys(redis, prefix: keyPrefix)
            _ = ScheduleBenchData.deleteKeys(redis, prefix: "trigger_provider_refresh_lock:")
        }
        var report = ScenarioReport(name: Self.name)
        report.header = [
            "\(Fmt.grouped(config.subscriptions)) subscriptions, \(Fmt.grouped(config.due)) due over "
                + "\(config.windowSeconds) s (credential threshold 3600 s); the sweep query at "
                + "\(Fmt.grouped(config.sweepRows)) subscriptions."
        ]

        // 1. Lateness. One data set, copied for the peer before Herald runs.
        progress("creating \(Fmt.grouped(config.subscriptions)) subscriptions")
        try data.create(names[0])
        let start = try populate(names[0], rows: config.subscriptions, due: config.due, dueFrom: 15)
        try data.copy(names[0], to: names[1])
        progress("herald run: \(config.due) refreshes due over \(config.windowSeconds) s")
        let herald = try heraldLateness(names[0], dueFrom: start)
        var dify: (LatencyStats?, String)?
        if config.python, let python = environment.python {
            progress("Dify's publisher: one tick at the end of the minute")
            dify = try difyLateness(names[1], python: python)
        }
        var t = BenchTable(
            title: "Due instant → message on `trigger_refresh_executor`",
            columns: ["", "herald", "Dify's publisher (Python)"])
        let rows: [(String, (LatencyStats) -> Int64)] = [
            ("p50", { $0.p50 }), ("p99", { $0.p99 }), ("max", { $0.max }),
        ]
        for (label, pick) in rows {
            t.row(
                label, herald.0.map { Fmt.duration(ns: pick($0)) } ?? "-",
                dify?.0.map { Fmt.duration(ns: pick($0)) } ?? "-")
        }
        t.row("subscriptions enqueued", String(herald.0?.count ?? 0), String(dify?.0?.count ?? 0))
        t.notes.append("herald: \(herald.1). Dify: \(dify?.1 ?? "peer skipped (no Python)").")
        report.tables.append(t)

        // 2 and 3 on a database of `sweepRows` subscriptions.
        progress("creating \(Fmt.grouped(config.sweepRows)) subscriptions for the sweep query")
        try data.create(names[2])
        _ = try populate(names[2], rows: config.sweepRows, due: config.sweepOverdue, dueFrom: -120)
        let c = try PostgresConnection(connInfo: environment.database(named: names[2]))
        let perHour = try messagesPerHour(c)
        var m = BenchTable(
            title: "Messages per hour, a token that lives one hour (threshold 3600 s)",
            columns: ["", "herald", "Dify's publisher"])
        m.row("refreshes enqueued in one hour", String(perHour.herald), String(perHour.dify))
        m.notes.append(
            "Each side's rule applied over one hour, the executor renewing the token for one hour at each "
                + "refresh: Herald's due instants from herald.trigger_refresh_due_at (the function its claims "
                + "run), Dify's filter at each one-minute tick.")
        report.tables.append(m)
        let sweep = try sweepQuery(c)
        var s = BenchTable(
            title:
                "The sweep's query at \(Fmt.grouped(config.sweepRows)) subscriptions (\(config.sweepOverdue) overdue)",
            columns: ["", "herald (indexed due table)", "Dify's count(*) of due rows"])
        s.row("median of \(sweep.runs)", Fmt.duration(ns: sweep.herald), Fmt.duration(ns: sweep.dify))
        report.tables.append(s)
        report.targets = [
            TargetCheck(
                name: "sweep query at \(Fmt.grouped(config.sweepRows))", required: "≤ 5 ms",
                measured: Fmt.duration(ns: sweep.herald), met: sweep.herald <= 5_000_000),
            TargetCheck(
                name: "due → queue p99", required: "≤ 1 s",
                measured: herald.0.map { Fmt.duration(ns: $0.p99) } ?? "-",
                met: herald.0.map { $0.p99 <= 1_000_000_000 }),
        ]
        report.json = [
            ("herald_lateness", herald.0?.json ?? .null), ("dify_lateness", dify?.0?.json ?? .null),
            ("messages_per_hour", .object([("herald", .int(perHour.herald)), ("dify", .int(perHour.dify))])),
            ("sweep_query_ns", .object([("herald", .int(sweep.herald)), ("dify", .int(sweep.dify))])),
        ]
        report.elapsedNs = BenchClock.monotonicNs() - started
        return report
    }

    /// Inserts `rows` subscriptions (no triggers: one statement), `due` of them with credentials
    /// due one per `windowSeconds / due` from `dueFrom` seconds after now, the rest a day or more
    /// away or never (-1); then fills Herald's due table as migration 11 does. Returns the Unix
    /// second the due window starts at.
    private func populate(_ name: String, rows: Int, due: Int, dueFrom: Int) throws -> Int64 {
        let c = try PostgresConnection(connInfo: environment.database(named: name))
        let start = Int64(try c.query("SELECT extract(epoch FROM now())::bigint").rows[0][0]!)! + Int64(dueFrom)
        try c.transaction { c in
            try c.query("SET LOCAL session_replication_role = replica")
            try c.query(
                """
                INSERT INTO trigger_subscriptions (name, tenant_id, user_id, provider_id, endpoint_id, parameters,
                    properties, credentials, credential_type, credential_expires_at, expires_at, visibility)
                SELECT 'sub-' || g, md5((g % 1000)::text)::uuid, md5((g % 1000)::text)::uuid, 'langgenius/gmail/gmail',
                       'ep-' || g, '{}', '{}', '{}', 'oauth2',
                       CASE WHEN g <= $2 THEN $3::int + 3600 + ((g - 1) * $4::int / $2)
                            WHEN g % 10 = 0 THEN -1
                            ELSE $3::int + 3600 + 86400 + g END,
                       -1, 'all_team_members'
                  FROM generate_series(1, $1::int) g
                """, [String(rows), String(due), String(start), String(config.windowSeconds)])
            try c.query(
                """
                INSERT INTO herald.trigger_refresh_due (subscription_id, tenant_id, credential_expires_at, expires_at, due_at)
                SELECT t.id, t.tenant_id, t.credential_expires_at, t.expires_at,
                       herald.trigger_refresh_due_at(t.credential_expires_at, t.expires_at,
                           s.credential_threshold_s, s.subscription_threshold_s, NULL, 0, true)
                  FROM trigger_subscriptions t, herald.trigger_refresh_settings s
                """)
        }
        try c.query("VACUUM ANALYZE trigger_subscriptions")
        try c.query("VACUUM ANALYZE herald.trigger_refresh_due")
        return start
    }

    /// Due instants (Unix ns) of the due subscriptions of `name`, by id.
    private func dueInstants(_ name: String) throws -> [String: Int64] {
        let c = try PostgresConnection(connInfo: environment.database(named: name))
        let r = try c.query(
            """
            SELECT id::text, (credential_expires_at - 3600)::bigint FROM trigger_subscriptions
             WHERE credential_expires_at <> -1 AND credential_expires_at < extract(epoch FROM now()) + 3600 + 3600
            """)
        return Dictionary(uniqueKeysWithValues: r.rows.map { ($0[0]!, Int64($0[1]!)! * 1_000_000_000) })
    }

    private func heraldLateness(_ name: String, dueFrom: Int64) throws -> (LatencyStats?, String) {
        let dueAt = try dueInstants(name)
        let prefix = keyPrefix + "h"
        let consumer = QueueStamps(environment: environment, key: prefix + ":trigger_refresh_executor")
        consumer.start()
        let daemon = HeraldDaemonProcess(
            environment: environment, databaseURL: environment.databaseURL(named: name), keyPrefix: prefix,
            instanceID: "bench-trig")
        try daemon.start(extraEnvironment: ["HERALD_ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "true"])
        let end = (dueFrom + Int64(config.windowSeconds) + 20) * 1_000_000_000
        _ = BenchClock.wait(timeout: .seconds(Int64(config.windowSeconds) + 60), every: .milliseconds(100)) {
            consumer.count >= dueAt.count || BenchClock.realtimeNs() > end
        }
        let status = daemon.stop()
        let arrivals = consumer.stop()
        let samples = arrivals.compactMap { a in dueAt[a.subscription].map { a.ns - $0 } }
        return (LatencyStats(samples), "one `herald run`, exit \(status.map(String.init) ?? "?")")
    }

    private func difyLateness(_ name: String, python: String) throws -> (LatencyStats?, String) {
        guard let root = BenchEnvironment.repositoryRoot() else { return (nil, "no repository root") }
        // Move the copy's due window to start 5 s from now.
        let c = try PostgresConnection(connInfo: environment.database(named: name))
        let now = Int64(try c.query("SELECT extract(epoch FROM now())::bigint").rows[0][0]!)!
        let first = Int64(
            try c.query(
                "SELECT min(credential_expires_at) - 3600 FROM trigger_subscriptions WHERE credential_expires_at <> -1"
            ).rows[0][0]!)!
        try c.query(
            "UPDATE trigger_subscriptions SET credential_expires_at = credential_expires_at + $1::int WHERE credential_expires_at <> -1",
            [String(now + 5 - first)])
        let dueAt = try dueInstants(name)
        let prefix = keyPrefix + "d"
        let consumer = QueueStamps(environment: environment, key: prefix + ":trigger_refresh_executor")
        consumer.start()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [
            root + "/Tests/Support/bench_dify_trigger_publisher.py", "--postgres", environment.databaseURL(named: name),
            "--broker", environment.redisURL, "--key-prefix", prefix,
        ]
        let out = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardInput = inp
        p.standardError = FileHandle.standardError
        try p.run()
        let reader = LineReader(fd: out.fileHandleForReading.fileDescriptor)
        guard reader.line()?.contains("\"ready\"") == true else {
            p.terminate()
            return (nil, "the peer did not start")
        }
        // The tick at the end of the minute the due instants spread over, and the next one, which
        // sends what the first missed (its OFFSET pages over rows with equal `updated_at` skip some
        // and repeat others; the repeats find their lock taken).
        let tick = (now + 5 + Int64(config.windowSeconds)) * 1_000_000_000
        inp.fileHandleForWriting.write(Data("tick \(tick)\ntick \(tick + 60_000_000_000)\nquit\n".utf8))
        let results = [reader.line() ?? "", reader.line() ?? ""]
        p.waitUntilExit()
        _ = BenchClock.wait(timeout: .seconds(30), every: .milliseconds(50)) { consumer.count >= dueAt.count }
        let arrivals = consumer.stop()
        var arrived: [String: Int64] = [:]
        for a in arrivals where arrived[a.subscription] == nil { arrived[a.subscription] = a.ns }
        let samples = arrived.compactMap { s, ns in dueAt[s].map { ns - $0 } }
        return (
            LatencyStats(samples), "two ticks of the publisher, one minute apart: \(results.joined(separator: "; "))"
        )
    }

    /// Refreshes in one hour of a token renewed for one hour at each refresh.
    private func messagesPerHour(_ c: PostgresConnection) throws -> (herald: Int, dify: Int) {
        var herald = 0
        var lastFire: Int64?
        var cred: Int64 = 3600  // issued at 0, lives one hour
        while herald < 1000 {
            let due = try c.query(
                "SELECT herald.trigger_refresh_due_at($1::int, -1, 3600, 3600, $2::bigint, 0, true)",
                [String(cred), lastFire.map(String.init)]
            ).rows[0][0].flatMap { Int64($0) }
            guard let due, due < 3_600_000_000 else { break }
            herald += 1
            lastFire = due
            cred = due / 1_000_000 + 3600
        }
        var dify = 0
        var difyCred: Int64 = 3600
        for tick in stride(from: Int64(0), to: 3600, by: 60) where difyCred <= tick + 3600 {
            dify += 1
            difyCred = tick + 3600
        }
        return (herald, dify)
    }

    private func sweepQuery(_ c: PostgresConnection) throws -> (herald: Int64, dify: Int64, runs: Int) {
        let store = TriggerRefreshStore(instanceID: "bench")
        let runs = 21
        var h: [Int64] = []
        for _ in 0..<runs {
            let t0 = BenchClock.monotonicNs()
            let rows = try store.overdue(c, limit: 1_000)
            h.append(BenchClock.monotonicNs() - t0)
            guard rows.count == config.sweepOverdue else {
                throw BenchFailure("the sweep found \(rows.count) of \(config.sweepOverdue) overdue")
            }
        }
        var d: [Int64] = []
        for _ in 0..<5 {
            let t0 = BenchClock.monotonicNs()
            _ = try c.query(
                """
                SELECT count(*) FROM trigger_subscriptions
                 WHERE (credential_expires_at != -1 AND credential_expires_at <= extract(epoch FROM now())::int + 3600)
                    OR (expires_at != -1 AND expires_at <= extract(epoch FROM now())::int + 3600)
                """)
            d.append(BenchClock.monotonicNs() - t0)
        }
        return (LatencyStats(h)!.p50, LatencyStats(d)!.p50, runs)
    }
}

/// A BRPOP consumer of one Celery list that stamps each refresh message's arrival (CLOCK_REALTIME).
final class QueueStamps: @unchecked Sendable {
    struct Arrival {
        var subscription: String
        var ns: Int64
    }
    private let environment: BenchEnvironment
    private let key: String
    private let lock = NSLock()
    private var arrivals: [Arrival] = []
    private var stopped = false
    private var thread: Thread?

    init(environment: BenchEnvironment, key: String) {
        self.environment = environment
        self.key = key
    }

    var count: Int { lock.withLock { arrivals.count } }

    func start() {
        let t = Thread { [self] in
            guard let client = try? RedisClient(endpoint: environment.redis, timeout: .seconds(5)) else { return }
            while !lock.withLock({ stopped }) {
                guard case .array(let pair)? = try? client.command(["BRPOP", key, "1"]), pair.count == 2,
                    case .string(let bytes) = pair[1]
                else { continue }
                let at = BenchClock.realtimeNs()
                guard let m = try? CeleryEnvelopeDecoder.decode(bytes),
                    case .string(let s)? = m.kwargs["subscription_id"]
                else { continue }
                lock.withLock { arrivals.append(Arrival(subscription: s, ns: at)) }
            }
        }
        thread = t
        t.start()
    }

    func stop() -> [Arrival] {
        lock.withLock { stopped = true }
        Thread.sleep(forTimeInterval: 1.2)
        return lock.withLock { arrivals }
    }
}
