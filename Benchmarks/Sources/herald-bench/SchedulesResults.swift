// The figures of one `schedules` run and how they are shown: one table per test
// (docs/benchmarks.md) with Herald beside its references from the same run, the
// targets judged from those figures (a missed one says MISSED), and the JSON
// object with every number.

/// The columns of the `schedules` tables.
enum ScheduleColumn: String, Sendable, CaseIterable {
    case herald, heraldNoLead = "herald_no_lead", floor, floorDifyJoin = "floor_dify_join", push, peer, relay, bare

    var title: String {
        switch self {
        case .herald: return "herald"
        case .heraldNoLead: return "herald, no lead"
        case .floor: return "SQL-claim floor"
        case .floorDifyJoin: return "SQL floor, Dify's join"
        case .push: return "LPUSH floor"
        case .peer: return "dify poller"
        case .relay: return "relay floor"
        case .bare: return "LPUSH→BRPOP"
        }
    }
}

/// Many plans due at one instant, for one column: lateness samples and throughput.
struct BurstOutcome: Sendable {
    var expected = 0
    /// Arrival − scheduled time, one per plan that reached the queue (or was claimed, for the floor).
    var samples: [Int64] = []
    var duplicates = 0
    var runs = 0
    /// Throughput window of each run: from the start (the due time, or Herald's first claim when
    /// earlier) to the last arrival, with the plans received in it.
    var windows: [(startNs: Int64, lastNs: Int64, dueNs: Int64, received: Int)] = []
    var errors: [String] = []
    var notes: [String] = []

    var received: Int { samples.count }
    var stats: LatencyStats? { LatencyStats(samples) }

    /// Fires per second over every run's window.
    var rate: Double? {
        let ns = windows.reduce(Int64(0)) { $0 + max(1, $1.lastNs - $1.startNs) }
        let n = windows.reduce(0) { $0 + $1.received }
        return n > 0 && ns > 0 ? Double(n) * 1e9 / Double(ns) : nil
    }

    mutating func add(expected n: Int, dueNs: Int64, startNs: Int64, stamps: [Int64], duplicates: Int) {
        expected += n
        runs += 1
        self.duplicates += duplicates
        var last: Int64 = 0, got = 0
        for s in stamps where s != 0 {
            samples.append(s - dueNs)
            last = max(last, s)
            got += 1
        }
        if got > 0 { windows.append((min(startNs, dueNs), last, dueNs, got)) }
    }

    var json: BenchJSON {
        .object([
            ("expected", .int(expected)), ("received", .int(received)), ("duplicates", .int(duplicates)),
            ("runs", .int(runs)),
            ("lateness", stats?.json ?? .null), ("fires_per_s", rate.map(BenchJSON.double) ?? .null),
            (
                "windows",
                .array(
                    windows.map { w in
                        .object([
                            ("start_ns", .int(w.startNs)), ("due_ns", .int(w.dueNs)), ("last_ns", .int(w.lastNs)),
                            ("received", .int(w.received)),
                        ])
                    })
            ),
            ("errors", .array(errors.map(BenchJSON.string))), ("notes", .array(notes.map(BenchJSON.string))),
        ])
    }
}

/// Event → message latencies of one column.
struct EventOutcome: Sendable {
    var expected = 0
    var samples: [Int64] = []
    var misdelivered = 0
    var errors: [String] = []

    var json: BenchJSON {
        .object([
            ("expected", .int(expected)), ("received", .int(samples.count)),
            ("latency", LatencyStats(samples)?.json ?? .null),
            ("misdelivered", .int(misdelivered)), ("errors", .array(errors.map(BenchJSON.string))),
        ])
    }
}

/// Resident memory of one process.
struct MemoryOutcome: Sendable {
    var fields: [String: Int] = [:]
    var armed: Int?
    var windowLoadedNs: Int64?
    var exitStatus: Int32?
    var firedAtStart: Int?
    var error: String?

    var json: BenchJSON {
        .object(
            fields.keys.sorted().map { ($0, BenchJSON.int(fields[$0]!)) } + [
                ("armed", armed.map(BenchJSON.int) ?? .null),
                ("window_loaded_ns", windowLoadedNs.map(BenchJSON.int) ?? .null),
                ("exit_status", exitStatus.map { .int(Int64($0)) } ?? .null),
                ("fired_at_start", firedAtStart.map(BenchJSON.int) ?? .null),
                ("error", error.map(BenchJSON.string) ?? .null),
            ])
    }
}

/// Everything `schedules` measured.
struct SchedulesResults: Sendable {
    var sameSecond: [ScheduleColumn: BurstOutcome] = [:]
    var atOnce: [ScheduleColumn: BurstOutcome] = [:]
    var runNow: [ScheduleColumn: EventOutcome] = [:]
    var sweep: [SweepQueryProbe.Result] = []
    var memory: [String: MemoryOutcome] = [:]
    var peerPhases: [String: [String: Int64]] = [:]
    /// Messages per second the observing drain empties a list at (its own ceiling).
    var drainRate: Double?
    var notes: [String] = []

    static let targetLatenessP99: Int64 = 10_000_000
    static let targetFloorRatio = 0.7
    static let targetPeerRatio = 20.0
    static let targetRunNowP50: Int64 = 1_000_000
    static let targetSweepNs: Int64 = 5_000_000
    static let targetRSSKiB = 100_000_000 / 1024

    static func median(_ v: [Int64]) -> Int64? { v.isEmpty ? nil : LatencyStats.percentile(v.sorted(), 0.5) }

    // MARK: Targets

    func targets(rssPlans: Int) -> [TargetCheck] {
        var out: [TargetCheck] = []
        let a = sameSecond[.herald]?.stats
        out.append(
            TargetCheck(
                name: "(a) lateness p99", required: "≤ 10 ms",
                measured: a.map { Fmt.duration(ns: $0.p99) } ?? "–", met: a.map { $0.p99 <= Self.targetLatenessP99 }))
        // Throughput is judged on the run without the lead: it starts claiming at the due time, as the floor does.
        let h = (atOnce[.heraldNoLead] ?? atOnce[.herald])?.rate, p = atOnce[.peer]?.rate
        for (column, name) in [
            (ScheduleColumn.floor, "(b) fires/s vs SQL-claim floor"),
            (.floorDifyJoin, "(b) fires/s vs floor with Dify's join"),
        ] {
            if let h, let f = atOnce[column]?.rate {
                out.append(
                    TargetCheck(
                        name: name, required: "≥ 0.7× floor",
                        measured: "\(Fmt.rate(h)) / \(Fmt.rate(f)) = \(Fmt.ratio(h, f))",
                        met: h >= Self.targetFloorRatio * f))
            } else {
                out.append(TargetCheck(name: name, required: "≥ 0.7× floor", measured: "–", met: nil))
            }
        }
        if let h, let p {
            out.append(
                TargetCheck(
                    name: "(b) fires/s vs dify poller", required: "≥ 20× dify poller",
                    measured: "\(Fmt.rate(h)) / \(Fmt.rate(p)) = \(Fmt.ratio(h, p))", met: h >= Self.targetPeerRatio * p
                ))
        } else {
            out.append(
                TargetCheck(name: "(b) fires/s vs dify poller", required: "≥ 20× dify poller", measured: "–", met: nil))
        }
        let c = runNow[.herald].flatMap { LatencyStats($0.samples) }
        out.append(
            TargetCheck(
                name: "(c) run_now → queue p50", required: "≤ 1 ms",
                measured: c.map { Fmt.duration(ns: $0.p50) } ?? "–", met: c.map { $0.p50 <= Self.targetRunNowP50 }))
        let big = sweep.max { $0.plans < $1.plans }
        let d = big.flatMap { Self.median($0.wallNs[.herald] ?? []) }
        out.append(
            TargetCheck(
                name: "(d) sweep query at \(Fmt.grouped(big?.plans ?? 0)) plans", required: "≤ 5 ms",
                measured: d.map { Fmt.duration(ns: $0) + " (median)" } ?? "–", met: d.map { $0 <= Self.targetSweepNs }))
        let rss = memory["herald_loaded"]?.fields["VmRSS"]
        out.append(
            TargetCheck(
                name: "(e) RSS at \(Fmt.grouped(rssPlans)) plans", required: "≤ 100 MB",
                measured: rss.map { Fmt.megabytes(kib: $0) } ?? "–", met: rss.map { $0 <= Self.targetRSSKiB }))
        return out
    }

    // MARK: JSON

    func json() -> [(String, BenchJSON)] {
        func bursts(_ m: [ScheduleColumn: BurstOutcome]) -> BenchJSON {
            .object(ScheduleColumn.allCases.compactMap { c in m[c].map { (c.rawValue, $0.json) } })
        }
        let sweepJSON = BenchJSON.array(
            sweep.map { r in
                .object(
                    [("plans", .int(r.plans))]
                        + SweepQueryProbe.Query.allCases.map { q in
                            (
                                q.rawValue,
                                .object([
                                    ("wall_median_ns", Self.median(r.wallNs[q] ?? []).map(BenchJSON.int) ?? .null),
                                    ("wall_ns", .array((r.wallNs[q] ?? []).map(BenchJSON.int))),
                                    ("server_median_ns", Self.median(r.serverNs[q] ?? []).map(BenchJSON.int) ?? .null),
                                    ("rows", r.rows[q].map(BenchJSON.int) ?? .null),
                                    ("app_triggers_scan", r.triggerScan[q].map(BenchJSON.string) ?? .null),
                                ])
                            )
                        } + [
                            ("claim_due_median_ns", Self.median(r.claimDueNs).map(BenchJSON.int) ?? .null),
                            ("claim_due_fires", .int(r.claimDueFires)),
                            ("read_one_median_ns", Self.median(r.readOneNs).map(BenchJSON.int) ?? .null),
                            ("claim_run_now_median_ns", Self.median(r.runNowClaimNs).map(BenchJSON.int) ?? .null),
                            ("error", r.error.map(BenchJSON.string) ?? .null),
                        ])
            })
        return [
            ("same_second", bursts(sameSecond)), ("at_once", bursts(atOnce)),
            ("run_now", .object(ScheduleColumn.allCases.compactMap { c in runNow[c].map { (c.rawValue, $0.json) } })),
            ("sweep", sweepJSON),
            ("memory", .object(memory.keys.sorted().map { ($0, memory[$0]!.json) })),
            (
                "peer_phases_ns",
                .object(
                    peerPhases.keys.sorted().map { k in
                        (k, .object(peerPhases[k]!.keys.sorted().map { ($0, BenchJSON.int(peerPhases[k]![$0]!)) }))
                    })
            ),
            ("drain_per_s", drainRate.map(BenchJSON.double) ?? .null),
            ("notes", .array(notes.map(BenchJSON.string))),
        ]
    }
}
