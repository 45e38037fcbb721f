// Scenario `sources` (docs/benchmarks.md): how fast an event reaches Herald's
// handler from Redis PUBLISH and from PostgreSQL NOTIFY, how many events per
// second it consumes without losing any, and its idle memory; each beside the
// floor (HeraldIO with no work) and the Python peer, measured in the same run,
// one consumer at a time.

import Foundation
import HeraldCore
import HeraldIO

/// The sizes of one `sources` run. Fixed defaults keep runs comparable.
struct SourcesConfig: Sendable {
    var messages = 10_000
    var interval: Duration = .microseconds(500)
    var warmup = 200
    var rounds = 4
    var floodMessages = 300_000
    var floodConnections = 2
    var pipeline = 64
    var drainMessages = 300_000
    var notifyBurst = 100_000
    var rssSettle: Duration = .seconds(3)
    var python = true

    var json: BenchJSON {
        .object([
            ("messages", .int(messages)), ("interval_ns", .int(interval.nanoseconds)), ("warmup", .int(warmup)),
            ("rounds", .int(rounds)), ("flood_messages", .int(floodMessages)),
            ("flood_connections", .int(floodConnections)), ("pipeline", .int(pipeline)),
            ("drain_messages", .int(drainMessages)), ("notify_burst", .int(notifyBurst)),
            ("rss_settle_ns", .int(rssSettle.nanoseconds)),
        ])
    }
}

/// Runs the `sources` scenario.
final class SourcesScenario {
    static let name = "sources"
    private let environment: BenchEnvironment
    private let config: SourcesConfig
    private var results: SourcesResults
    private var admin: RedisClient?

    init(environment: BenchEnvironment, config: SourcesConfig) {
        self.environment = environment
        self.config = config
        var kinds: [ConsumerKind] = [.herald, .floor]
        if config.python, environment.python != nil, environment.peerScript != nil { kinds.append(.peer) }
        results = SourcesResults(kinds: kinds)
    }

    func run() throws -> ScenarioReport {
        let started = BenchClock.monotonicNs()
        let admin = try RedisClient(endpoint: environment.redis)
        self.admin = admin
        try requireNoSubscriber()
        let publisher = try PostgresConnection(connInfo: environment.database)

        for source in [BenchSource.redis, .postgres] {
            for round in 0..<config.rounds {
                let share = config.messages / config.rounds + (round < config.messages % config.rounds ? 1 : 0)
                let order = rotated(results.kinds, by: round)
                for kind in order {
                    progress("\(source.rawValue) latency, round \(round + 1)/\(config.rounds): \(kind.title)")
                    measureLatency(source: source, kind: kind, count: share, admin: admin, publisher: publisher)
                }
            }
        }
        for kind in results.kinds {
            progress("redis live flood: \(kind.title)")
            results.flood[kind] = measureFlood(kind: kind, count: config.floodMessages, paused: false)
        }
        let limit = try pubsubBufferLimit()
        do {
            try admin.command(["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"])
            defer { _ = try? admin.command(["CONFIG", "SET", "client-output-buffer-limit", limit]) }
            for kind in results.kinds {
                progress("redis drain: \(kind.title)")
                results.drain[kind] = measureFlood(kind: kind, count: config.drainMessages, paused: true)
            }
        }
        for kind in results.kinds {
            progress("notify burst: \(kind.title)")
            results.burst[kind] = measureBurst(kind: kind, count: config.notifyBurst, publisher: publisher)
        }
        progress("idle RSS of \(environment.heraldBinary)")
        results.rss = IdleRSSProbe(environment: environment, settle: config.rssSettle).measure()

        var report = ScenarioReport(name: Self.name)
        report.header = header(admin: admin, publisher: publisher)
        report.tables = results.tables(config: config)
        report.targets = results.targets()
        report.json =
            [("machine", machineJSON(admin: admin, publisher: publisher)), ("config", config.json)]
            + results.json()
        report.elapsedNs = BenchClock.monotonicNs() - started
        return report
    }

    // MARK: Measurements

    private func consumer(_ kind: ConsumerKind, _ source: BenchSource) -> BenchConsumer {
        switch kind {
        case .herald: return HeraldConsumer(environment: environment)
        case .floor: return FloorConsumer(environment: environment, source: source)
        case .peer:
            return PythonPeer(
                python: environment.python!, script: environment.peerScript!,
                environment: environment, source: source)
        }
    }

    /// One paced run of `warmup + count` messages; the first `warmup` are not measured.
    private func measureLatency(
        source: BenchSource, kind: ConsumerKind, count: Int, admin: RedisClient,
        publisher: PostgresConnection
    ) {
        var result = results.latency[source]?[kind] ?? LatencyResult()
        defer { results.latency[source, default: [:]][kind] = result }
        result.expected += count
        let total = config.warmup + count
        let c = consumer(kind, source)
        let sent: PacedPublisher.Sent
        do {
            try c.start(expected: total, mode: .latency, paused: false)
            if source == .redis { try requireSubscribers(1) }
            let pacer = PacedPublisher(interval: config.interval)
            sent =
                source == .redis
                ? try pacer.publishRedis(admin, count: total)
                : try pacer.notifyPostgres(publisher, count: total)
        } catch {
            _ = c.finish(idle: .zero)
            result.lost += count
            result.errors.append("\(error)")
            waitUnsubscribed()
            return
        }
        let run = c.finish(idle: .seconds(2))
        waitUnsubscribed()
        if let e = run.error { result.errors.append(e) }
        result.note = run.note ?? result.note
        result.disconnects += run.disconnects
        result.late += sent.late
        result.misdelivered += sent.misdelivered
        for seq in config.warmup..<total {
            let arrived = seq < run.arrivals.count ? run.arrivals[seq] : 0
            if arrived > 0 { result.samples.append(arrived - sent.stamps[seq]) } else { result.lost += 1 }
        }
    }

    /// Flat-out pipelined PUBLISH; with `paused`, the consumer reads only after everything is queued.
    private func measureFlood(kind: ConsumerKind, count: Int, paused: Bool) -> RateResult {
        var result = RateResult(sent: count)
        let c = consumer(kind, .redis)
        do {
            try c.start(expected: count, mode: .rate, paused: paused)
            try requireSubscribers(1)
            let flooder = RESPFlooder(
                endpoint: environment.redis, connections: config.floodConnections,
                pipeline: config.pipeline)
            let published = try flooder.flood(channel: Channels.scheduleEvents, count: count)
            result.offeredRate = published.rate
            result.delivered = published.delivered
            result.error = published.error
        } catch {
            result.error = "\(error)"
        }
        let run = c.finish(idle: .seconds(3))
        waitUnsubscribed()
        result.absorb(run)
        return result
    }

    /// `count` NOTIFYs committed in one transaction, drained by the consumer.
    private func measureBurst(kind: ConsumerKind, count: Int, publisher: PostgresConnection) -> RateResult {
        var result = RateResult(sent: count)
        let c = consumer(kind, .postgres)
        do {
            try c.start(expected: count, mode: .rate, paused: false)
            let t0 = BenchClock.monotonicNs()
            let uuidHead = BenchPayload.uuidHead
            let sql = """
                SELECT count(pg_notify($1::text, $2::text || $3::text || lpad(to_hex(g), \(BenchPayload.seqDigits), '0') || '"}'))
                FROM generate_series(0, $4::int - 1) AS g
                """
            _ = try publisher.transaction { conn in
                try conn.query(sql, [Channels.postgresEvents, BenchPayload.tablePrefix, uuidHead, String(count)])
            }
            result.commitNs = BenchClock.monotonicNs() - t0
        } catch {
            result.error = "\(error)"
        }
        result.absorb(c.finish(idle: .seconds(3)))
        return result
    }

    // MARK: Exclusivity and server settings

    private func subscribers() throws -> Int {
        guard let admin else { return 0 }
        let reply = try admin.command(["PUBSUB", "NUMSUB", Channels.scheduleEvents])
        guard case .array(let items) = reply, items.count == 2, case .integer(let n) = items[1] else { return -1 }
        return Int(n)
    }

    private func requireNoSubscriber() throws {
        let n = try subscribers()
        guard n == 0 else {
            throw BenchFailure(
                "\(n) client(s) already subscribe to \(Channels.scheduleEvents); the benchmark needs the channel to itself"
            )
        }
    }

    private func requireSubscribers(_ expected: Int) throws {
        let n = try subscribers()
        guard n == expected else {
            throw BenchFailure("\(n) subscribers on \(Channels.scheduleEvents), expected exactly \(expected)")
        }
    }

    private func waitUnsubscribed() {
        _ = BenchClock.wait(timeout: .seconds(5)) { ((try? subscribers()) ?? 0) == 0 }
    }

    private func pubsubBufferLimit() throws -> String {
        guard let admin else { return "pubsub 33554432 8388608 60" }
        let reply = try admin.command(["CONFIG", "GET", "client-output-buffer-limit"])
        if case .array(let items) = reply, items.count == 2, let all = items[1].text,
            let r = all.range(of: "pubsub ")
        {
            return String(all[r.lowerBound...])
        }
        return "pubsub 33554432 8388608 60"
    }

    // MARK: Report helpers

    private func header(admin: RedisClient, publisher: PostgresConnection) -> [String] {
        let m = BenchEnvironment.machine()
        let peer =
            results.kinds.contains(.peer)
            ? "Python peer: \(environment.python!)."
            : "Python peer: skipped (no HERALD_TEST_PYTHON or script)."
        return [
            "Machine: \(m.cpus) CPUs (\(m.model)), kernel \(m.kernel); "
                + "Redis \(redisVersion(admin)), PostgreSQL \(postgresVersion(publisher)).",
            peer,
            "Reference columns: `floor` = HeraldIO's bare RedisConnection / PostgresListener on its own loop, "
                + "handler only stamps the time; `python peer` = Tests/Support/bench_redis_subscriber.py doing "
                + "Herald's decode rules. One consumer at a time.",
        ]
    }

    private func machineJSON(admin: RedisClient, publisher: PostgresConnection) -> BenchJSON {
        let m = BenchEnvironment.machine()
        return .object([
            ("cpus", .int(m.cpus)), ("model", .string(m.model)), ("kernel", .string(m.kernel)),
            ("redis", .string(redisVersion(admin))), ("postgres", .string(postgresVersion(publisher))),
        ])
    }

    private func redisVersion(_ admin: RedisClient) -> String {
        guard let info = (try? admin.command(["INFO", "server"]))?.text,
            let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("redis_version:") })
        else { return "?" }
        return String(line.dropFirst("redis_version:".count))
    }

    private func postgresVersion(_ publisher: PostgresConnection) -> String {
        ((try? publisher.query("SHOW server_version"))?.rows.first?.first ?? nil) ?? "?"
    }

    private func rotated(_ kinds: [ConsumerKind], by n: Int) -> [ConsumerKind] {
        guard !kinds.isEmpty else { return kinds }
        let k = n % kinds.count
        return Array(kinds[k...] + kinds[..<k])
    }

    private func progress(_ message: String) {
        FileHandle.standardError.write(Data("[sources] \(message)\n".utf8))
    }
}
