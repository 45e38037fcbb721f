// Scenario `schedules` (docs/benchmarks.md): Herald firing workflow schedule plans,
// each figure beside its reference from the same run: (a) lateness of 10,000
// plans due in the same second, (b) fires per second with 100,000 due at once,
// (c) `run_now` event → message on the queue, (d) the sweep's claim query at
// 10k/100k/1M plans with 100 due, (e) RSS with 1,000,000 plans. The references
// are the SQL-claim floor, the Dify poller peer (Python), a no-database relay
// and a bare LPUSH → BRPOP, measured on the same data and server.

import Foundation
import HeraldCore
import HeraldIO

/// Runs the `schedules` scenario.
final class SchedulesScenario {
    static let name = "schedules"
    private let environment: BenchEnvironment
    private let config: SchedulesConfig
    private var results = SchedulesResults()
    private let tag = String(getpid())
    private var peerVersions: String?

    init(environment: BenchEnvironment, config: SchedulesConfig) {
        self.environment = environment
        self.config = config
    }

    private var mainDB: String { ScheduleBenchData.databasePrefix + "_main" }
    private var copyDB: String { ScheduleBenchData.databasePrefix + "_copy" }
    private func sizeDB(_ n: Int) -> String { ScheduleBenchData.databasePrefix + "_\(n)" }
    private var emptyDB: String { ScheduleBenchData.databasePrefix + "_empty" }
    private var prefixes: [String] {
        ["hbh\(tag)", "hbp\(tag)", "hbr\(tag)", "hbb\(tag)", "hbm\(tag)", "hbe\(tag)", "hbq\(tag)", "hbd\(tag)"]
    }

    func run() throws -> ScenarioReport {
        let started = BenchClock.monotonicNs()
        let admin = try RedisClient(endpoint: environment.redis)
        let reply = try admin.command(["PUBSUB", "NUMSUB", Channels.scheduleEvents])
        if case .array(let items) = reply, items.count == 2, let n = items[1].integer, n != 0 {
            throw BenchFailure(
                "\(n) client(s) already subscribe to \(Channels.scheduleEvents); the benchmark needs the channel to itself"
            )
        }
        let data = try ScheduleBenchData(environment: environment)
        data.dropLeftovers()
        defer {
            progress("cleaning up")
            for name in [mainDB, copyDB, emptyDB] + config.sweepSizes.map(sizeDB) { data.drop(name) }
            for p in prefixes { ScheduleBenchData.deleteKeys(admin, prefix: p + ":") }
        }
        try fireTests(data: data, admin: admin)
        try sweepAndMemory(data: data)

        var report = ScenarioReport(name: Self.name)
        report.header = header(admin: admin) + results.notes
        report.tables = results.tables(config: config)
        report.targets = results.targets(rssPlans: config.sweepSizes.max() ?? 0)
        report.json = [("machine", machineJSON(admin: admin)), ("config", config.json)] + results.json()
        report.elapsedNs = BenchClock.monotonicNs() - started
        return report
    }

    // MARK: (a), (b), (c)

    private func fireTests(data: ScheduleBenchData, admin: RedisClient) throws {
        let n = config.atOncePlans
        progress("creating \(Fmt.grouped(n)) plans")
        try data.create(mainDB)
        let took = try data.populate(mainDB, plans: n, spread: .parked)
        try data.copy(mainDB, to: copyDB)
        results.notes.append(
            "Creating \(Fmt.grouped(n)) tenants/10, apps, triggers and plans took \(Fmt.duration(ns: took)).")

        let heraldKey = "hbh\(tag):schedule_executor", peerKey = "hbp\(tag):schedule_executor"
        let daemon = HeraldDaemonProcess(
            environment: environment, databaseURL: data.url(mainDB), keyPrefix: "hbh\(tag)",
            instanceID: "herald-bench-schedules")
        try daemon.start()
        defer {
            daemon.stop()
            daemon.removeLog()
        }
        var peer: DifyPollerPeer?
        if config.python, let python = environment.python, let root = BenchEnvironment.repositoryRoot(),
            FileManager.default.fileExists(atPath: root + "/Tests/Support/bench_dify_poller.py")
        {
            let p = DifyPollerPeer(
                python: python, script: root + "/Tests/Support/bench_dify_poller.py",
                databaseURL: data.url(copyDB), brokerURL: environment.redisURL, keyPrefix: "hbp\(tag)",
                batch: config.peerBatch)
            do {
                try p.start()
                peer = p
                peerVersions = p.versions
            } catch {
                results.notes.append("Dify poller peer skipped: \(error)")
            }
        }
        let bench = try FireBench(
            environment: environment, daemon: daemon, heraldKey: heraldKey,
            heraldDB: try PostgresConnection(connInfo: data.info(mainDB)),
            referenceDB: try PostgresConnection(connInfo: data.info(copyDB)),
            peer: peer, peerKey: peerKey, floorBatch: config.floorBatch)
        BenchClock.sleep(.seconds(1))  // the daemon's first window load

        results.drainRate = bench.drainCapacity(count: config.sameSecondPlans, key: "hbd\(tag):schedule_executor")
        progress("warm-up: \(config.warmupPlans) plans per column")
        let warm = (n - config.warmupPlans)..<n
        var scratch = BurstOutcome()
        bench.herald(warm, into: &scratch)
        bench.floor(warm, into: &scratch)
        bench.pushFloor(warm, key: "hbq\(tag):schedule_executor", into: &scratch)
        _ = bench.peer(warm, maxSeconds: 0, into: &scratch)
        if !scratch.errors.isEmpty { results.notes.append("Warm-up errors: \(scratch.errors.joined(separator: "; "))") }

        // (a) rounds on distinct plan ranges, the column order rotated; the peer once (its tick takes seconds).
        let m = config.sameSecondPlans
        for round in 0..<config.sameSecondRounds {
            let range = (round * m)..<((round + 1) * m)
            var order: [ScheduleColumn] = [.herald, .floor, .push] + (peer != nil && round == 0 ? [.peer] : [])
            order = Array(order[(round % order.count)...] + order[..<(round % order.count)])
            for column in order {
                progress(
                    "(a) \(Fmt.grouped(m)) due in the same second, round \(round + 1)/\(config.sameSecondRounds): \(column.title)"
                )
                var o = results.sameSecond[column] ?? BurstOutcome()
                switch column {
                case .herald: bench.herald(range, into: &o)
                case .floor: bench.floor(range, into: &o)
                case .push: bench.pushFloor(range, key: "hbq\(tag):schedule_executor", into: &o)
                default:
                    if let t = bench.peer(range, maxSeconds: 0, into: &o) {
                        results.peerPhases["same_second"] = t.phases
                    }
                }
                results.sameSecond[column] = o
            }
        }

        // (b) every plan due at once: Herald and the floor twice (order alternating), the others once.
        var order: [ScheduleColumn] =
            [.herald, .floor, .floorDifyJoin] + (peer != nil ? [.peer] : []) + [.floor, .herald]
        if config.atOnceRounds < 2 { order.removeLast(2) }
        for column in order {
            progress("(b) \(Fmt.grouped(n)) due at once: \(column.title)")
            var o = results.atOnce[column] ?? BurstOutcome()
            switch column {
            case .herald: bench.herald(0..<n, rate: true, into: &o)
            case .floor: bench.floor(0..<n, into: &o)
            case .floorDifyJoin: bench.floor(0..<n, variant: .difyJoin, into: &o)
            default:
                if let t = bench.peer(0..<n, maxSeconds: config.peerMaxSeconds, into: &o) {
                    results.peerPhases["at_once"] = t.phases
                }
            }
            results.atOnce[column] = o
            if column == .herald { results.memory["herald_after_at_once"] = MemoryOutcome(fields: daemon.memory()) }
        }

        // (c) run_now: Herald, then (daemon stopped, so each event has one receiver) the relay floor and the bare queue.
        let base = n / 2, events = config.runNowEvents, warmup = config.runNowWarmup
        let payloadOf = { (seq: Int) in RunNowRelay.payload(seq) }
        let publishOne: (Int) throws -> Bool = { seq in
            (try admin.command(["PUBLISH", Channels.scheduleEvents, payloadOf(seq)])).integer == 1
        }
        progress("(c) run_now → queue: herald")
        var h = EventOutcome()
        if let note = bench.quiesceHerald() { h.errors.append(note) }
        bench.events(
            key: heraldKey, base: base, count: events, warmup: warmup, interval: config.runNowInterval,
            send: publishOne, into: &h)
        results.runNow[.herald] = h
        let status = daemon.stop()
        if status != 0 {
            results.notes.append("herald run exited with status \(status.map(String.init) ?? "?") after SIGTERM.")
        }
        let warnings = daemon.logLines().filter { !$0.isEmpty }
        if !warnings.isEmpty {
            results.notes.append(
                "herald logged \(warnings.count) warning/error lines; first: \(warnings[0].prefix(300))")
        }

        progress("(c) run_now → queue: relay floor")
        let relay = RunNowRelay(endpoint: environment.redis, key: "hbr\(tag):schedule_executor")
        var r = EventOutcome()
        do {
            try relay.start()
            bench.events(
                key: "hbr\(tag):schedule_executor", base: base, count: events, warmup: warmup,
                interval: config.runNowInterval, send: publishOne, into: &r)
        } catch {
            r.errors.append("\(error)")
        }
        relay.stop()
        results.runNow[.relay] = r

        progress("(c) run_now → queue: LPUSH → BRPOP")
        let bareKey = "hbb\(tag):schedule_executor"
        var b = EventOutcome()
        bench.events(
            key: bareKey, base: base, count: events, warmup: warmup, interval: config.runNowInterval,
            send: { seq in
                _ = try admin.command([Array("LPUSH".utf8), Array(bareKey.utf8), RunNowRelay.message(seq)])
                return true
            }, into: &b)
        results.runNow[.bare] = b

        // (b) again without the lead: the daemon restarted with HERALD_SCHEDULE_LEAD=0 claims from the due
        // time on, as the floor does, so that its fires/s is its throughput and not the lead's wait.
        if config.atOnceRounds > 0 {
            do {
                try daemon.start(extraEnvironment: ["HERALD_SCHEDULE_LEAD": "0"])
                BenchClock.sleep(.seconds(1))
                for round in 0..<config.atOnceRounds {
                    progress(
                        "(b) \(Fmt.grouped(n)) due at once: herald, no lead, run \(round + 1)/\(config.atOnceRounds)")
                    var o = results.atOnce[.heraldNoLead] ?? BurstOutcome()
                    bench.herald(0..<n, rate: true, into: &o)
                    results.atOnce[.heraldNoLead] = o
                }
            } catch {
                results.notes.append("herald without the lead could not start: \(error)")
            }
            daemon.stop()
        }

        if let peer {
            let (rss, hwm) = peer.quit()
            var mem = MemoryOutcome()
            mem.fields["VmRSS"] = rss
            mem.fields["VmHWM"] = hwm
            results.memory["peer"] = mem
        }
        data.drop(copyDB)
        data.drop(mainDB)
    }

    // MARK: (d), (e)

    private func sweepAndMemory(data: ScheduleBenchData) throws {
        let probe = SweepQueryProbe(due: config.sweepDue, runs: config.sweepRuns, warmup: 2)
        for size in config.sweepSizes.sorted() {
            progress("(d) creating \(Fmt.grouped(size)) plans, \(config.sweepDue) due, the rest over 24 h")
            try data.create(sizeDB(size))
            let took = try data.populate(sizeDB(size), plans: size, spread: .day(due: config.sweepDue))
            results.notes.append("Creating \(Fmt.grouped(size)) plans for (d) took \(Fmt.duration(ns: took)).")
            progress("(d) sweep queries at \(Fmt.grouped(size)) plans")
            let c = try PostgresConnection(connInfo: data.info(sizeDB(size)))
            results.sweep.append(probe.measure(c, plans: size))
            if size != config.sweepSizes.max() { data.drop(sizeDB(size)) }
        }
        guard let biggest = config.sweepSizes.max() else { return }
        progress("(e) memory: herald on an empty database")
        try data.create(emptyDB)
        results.memory["herald_empty"] = memory(url: data.url(emptyDB), prefix: "hbe\(tag)", expectArmed: false)
        progress("(e) memory: herald with \(Fmt.grouped(biggest)) plans")
        results.memory["herald_loaded"] = memory(url: data.url(sizeDB(biggest)), prefix: "hbm\(tag)", expectArmed: true)
    }

    /// Starts `herald run`, waits for its window (armed plans steady for 1 s), settles, reads /proc.
    private func memory(url: String, prefix: String, expectArmed: Bool) -> MemoryOutcome {
        var out = MemoryOutcome()
        let d = HeraldDaemonProcess(
            environment: environment, databaseURL: url, keyPrefix: prefix, instanceID: "herald-bench-rss")
        defer { d.removeLog() }
        do { try d.start() } catch {
            out.error = "\(error)"
            return out
        }
        if expectArmed {
            var last = -1
            var steadySince = BenchClock.monotonicNs()
            let loaded = BenchClock.wait(timeout: .seconds(60), every: .milliseconds(100)) {
                let a = d.armed() ?? 0
                if a != last {
                    last = a
                    steadySince = BenchClock.monotonicNs()
                }
                return a > 0 && BenchClock.monotonicNs() - steadySince >= 1_000_000_000
            }
            if loaded { out.windowLoadedNs = steadySince - d.spawnedAtMonotonicNs }
        }
        BenchClock.sleep(config.rssSettle)
        out.fields = d.memory()
        out.armed = d.armed()
        if let r = try? RedisClient(endpoint: environment.redis) {
            out.firedAtStart = (try? r.command(["LLEN", prefix + ":schedule_executor"]))?.integer.map { Int($0) }
        }
        out.exitStatus = d.stop()
        return out
    }

    // MARK: Report helpers

    private func header(admin: RedisClient) -> [String] {
        let m = BenchEnvironment.machine()
        return [
            "Machine: \(m.cpus) CPUs (\(m.model)), kernel \(m.kernel); Redis \(info(admin, "redis_version")), "
                + "PostgreSQL \(postgresVersion()). Daemon: \(environment.heraldBinary).",
            "Dify poller peer: " + (peerVersions.map { "Tests/Support/bench_dify_poller.py (\($0))." } ?? "skipped."),
            "Columns: `herald` = the `herald run` binary on its own database and key prefix; `SQL-claim floor` = one set-based "
                + "claim statement per \(Fmt.grouped(config.floorBatch)) plans (FOR UPDATE SKIP LOCKED, `next_run_at` moved on) on a "
                + "copy of the same data, no enqueue; "
                + "`dify poller` = Dify's poll_workflow_schedules in Python on that copy. Every arrival is stamped by a "
                + "BRPOP/RPOP consumer in herald-bench (CLOCK_REALTIME).",
        ]
    }

    private func machineJSON(admin: RedisClient) -> BenchJSON {
        let m = BenchEnvironment.machine()
        return .object([
            ("cpus", .int(m.cpus)), ("model", .string(m.model)), ("kernel", .string(m.kernel)),
            ("redis", .string(info(admin, "redis_version"))), ("postgres", .string(postgresVersion())),
            ("peer", peerVersions.map(BenchJSON.string) ?? .null),
        ])
    }

    private func info(_ admin: RedisClient, _ field: String) -> String {
        guard let text = (try? admin.command(["INFO", "server"]))?.text,
            let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(field + ":") })
        else { return "?" }
        return String(line.dropFirst(field.count + 1))
    }

    private func postgresVersion() -> String {
        ((try? PostgresConnection(connInfo: environment.database).query("SHOW server_version"))?.rows.first?.first
            ?? nil) ?? "?"
    }

    private func progress(_ message: String) {
        FileHandle.standardError.write(Data("[schedules] \(message)\n".utf8))
    }
}
