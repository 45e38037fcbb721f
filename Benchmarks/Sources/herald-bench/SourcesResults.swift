// The figures of one `sources` run and how they are shown: tables with Herald
// and its references side by side, the targets of docs/benchmarks.md judged from the same
// figures (missed ones say MISSED), and the JSON object with every number.

/// Latency of one consumer on one source, over every round.
struct LatencyResult: Sendable {
    var samples: [Int64] = []
    var expected = 0
    var lost = 0
    var disconnects = 0
    /// Publisher sends that started more than one interval late (VM stalls).
    var late = 0
    /// PUBLISH replies that did not count exactly one receiver.
    var misdelivered = 0
    var errors: [String] = []
    var note: String?
}

/// Throughput of one consumer in one flood, drain or burst.
struct RateResult: Sendable {
    var sent: Int
    var offeredRate: Double?
    var delivered: Int?
    var commitNs: Int64?
    var consumedRate: Double?
    var received = 0
    var disconnects = 0
    var error: String?
    var note: String?

    var lost: Int { sent - received }

    mutating func absorb(_ run: ConsumerRun) {
        received = run.accepted
        consumedRate = run.rate
        disconnects = run.disconnects
        note = run.note
        if let e = run.error { error = error.map { $0 + "; " + e } ?? e }
    }

    var json: BenchJSON {
        .object([
            ("sent", .int(sent)), ("received", .int(received)), ("lost", .int(lost)),
            ("consumed_per_s", consumedRate.map(BenchJSON.double) ?? .null),
            ("offered_per_s", offeredRate.map(BenchJSON.double) ?? .null),
            ("publish_receivers", delivered.map(BenchJSON.int) ?? .null),
            ("commit_ns", commitNs.map(BenchJSON.int) ?? .null), ("disconnects", .int(disconnects)),
            ("error", error.map(BenchJSON.string) ?? .null), ("note", note.map(BenchJSON.string) ?? .null),
        ])
    }
}

/// Everything `sources` measured.
struct SourcesResults: Sendable {
    let kinds: [ConsumerKind]
    var latency: [BenchSource: [ConsumerKind: LatencyResult]] = [:]
    var flood: [ConsumerKind: RateResult] = [:]
    var drain: [ConsumerKind: RateResult] = [:]
    var burst: [ConsumerKind: RateResult] = [:]
    var rss = IdleRSSProbe.Result()

    /// The targets (docs/benchmarks.md, scenario `sources`): events/s, p50 vs the floor, idle RSS.
    static let targetRate = 200_000.0
    static let targetP50Ratio = 1.5
    static let targetRSSKiB = 30_000_000 / 1024

    private var columns: [String] { ["metric"] + kinds.map(\.title) + ["herald/floor"] }

    // MARK: Tables

    func tables(config: SourcesConfig) -> [BenchTable] {
        var out: [BenchTable] = []
        for (source, title) in [
            (BenchSource.redis, "Redis PUBLISH → handler latency"),
            (.postgres, "PostgreSQL NOTIFY → handler latency"),
        ] {
            out.append(latencyTable(source, title: title, config: config))
        }
        out.append(
            rateTable(
                flood,
                title: "Redis live flood: \(Fmt.grouped(config.floodMessages)) PUBLISH, "
                    + "\(config.floodConnections) connections × pipeline \(config.pipeline), flat out",
                offered: "publisher rate"))
        out.append(
            rateTable(
                drain,
                title: "Redis drain: \(Fmt.grouped(config.drainMessages)) queued while the consumer was paused "
                    + "(client-output-buffer-limit pubsub 0 0 0 for this test)",
                offered: nil))
        out.append(
            rateTable(
                burst,
                title: "PostgreSQL burst: \(Fmt.grouped(config.notifyBurst)) NOTIFY committed in one transaction",
                offered: nil))
        let settle = Fmt.duration(ns: config.rssSettle.nanoseconds)
        var rssTable = BenchTable(
            title: "Idle memory of `herald run` (all sources connected, /healthz 200, then \(settle) idle)",
            columns: ["metric", "herald", "target"])
        rssTable.row("VmRSS", rss.rssKiB.map { Fmt.megabytes(kib: $0) } ?? "–", "< 30 MB")
        rssTable.row("  of which anonymous (RssAnon)", rss.anonKiB.map { Fmt.megabytes(kib: $0) } ?? "–", "")
        rssTable.row("  of which mapped files (RssFile)", rss.fileKiB.map { Fmt.megabytes(kib: $0) } ?? "–", "")
        rssTable.row("PSS (shared pages split)", rss.pssKiB.map { Fmt.megabytes(kib: $0) } ?? "–", "")
        rssTable.row("VmHWM (peak)", rss.hwmKiB.map { Fmt.megabytes(kib: $0) } ?? "–", "")
        rssTable.row("start → /healthz 200", rss.readyNs.map { Fmt.duration(ns: $0) } ?? "–", "")
        rssTable.row("threads", rss.threads.map { String($0) } ?? "–", "")
        rssTable.row("exit status after SIGTERM", rss.exitStatus.map { String($0) } ?? "–", "0")
        if let d = rss.database { rssTable.notes.append("Database: \(d).") }
        if let e = rss.error { rssTable.notes.append("Error: \(e)") }
        out.append(rssTable)
        return out
    }

    private func latencyTable(_ source: BenchSource, title: String, config: SourcesConfig) -> BenchTable {
        let results = latency[source] ?? [:]
        let stats = results.mapValues { LatencyStats($0.samples) }
        var t = BenchTable(
            title: "\(title) (\(Fmt.grouped(config.messages)) paced messages per consumer, one per "
                + "\(Fmt.duration(ns: config.interval.nanoseconds)))",
            columns: columns)
        let names = ["min", "p50", "p90", "p99", "p99.9", "max"]
        for (i, name) in names.enumerated() {
            var cells = [name]
            for k in kinds { cells.append((stats[k]??.rows[i].1).map { Fmt.duration(ns: $0) } ?? "–") }
            let h = stats[.herald]??.rows[i].1, f = stats[.floor]??.rows[i].1
            cells.append(h.flatMap { h in f.map { Fmt.ratio(Double(h), Double($0)) } } ?? "–")
            t.rows.append(cells)
        }
        t.rows.append(
            ["received"]
                + kinds.map { k in
                    let r = results[k]
                    return "\(Fmt.grouped(r?.samples.count ?? 0))/\(Fmt.grouped(r?.expected ?? 0))"
                } + [""])
        t.rows.append(["lost"] + kinds.map { Fmt.grouped(results[$0]?.lost ?? 0) } + [""])
        t.notes.append(
            "Each consumer ran alone on the channel, in \(config.rounds) rounds (order rotated), after "
                + "\(config.warmup) unmeasured warm-up messages per run. Latency = CLOCK_REALTIME in the handler − "
                + "CLOCK_REALTIME just before the send. p99 and max describe this VM's wake-up latency more than the software."
        )
        let late = kinds.compactMap { results[$0]?.late }.reduce(0, +)
        if late > 0 {
            t.notes.append(
                "The publisher started \(Fmt.grouped(late)) sends more than one interval late (VM stalls), then caught up."
            )
        }
        for k in kinds {
            guard let r = results[k] else { continue }
            if r.misdelivered > 0 {
                t.notes.append("\(k.title): \(r.misdelivered) PUBLISH replies did not count exactly one receiver.")
            }
            if r.disconnects > 0 { t.notes.append("\(k.title): \(r.disconnects) disconnects.") }
            if let n = r.note, k == .peer { t.notes.append("python peer: \(n).") }
            for e in Set(r.errors) { t.notes.append("\(k.title) error: \(e)") }
        }
        return t
    }

    private func rateTable(_ results: [ConsumerKind: RateResult], title: String, offered: String?) -> BenchTable {
        var t = BenchTable(title: title, columns: columns)
        func ratio(_ a: Double?, _ b: Double?) -> String {
            guard let a, let b else { return "–" }
            return Fmt.ratio(a, b)
        }
        if let offered {
            t.rows.append([offered] + kinds.map { results[$0]?.offeredRate.map(Fmt.rate) ?? "–" } + [""])
        }
        if results.values.contains(where: { $0.commitNs != nil }) {
            t.rows.append(
                ["commit time"] + kinds.map { results[$0]?.commitNs.map { Fmt.duration(ns: $0) } ?? "–" } + [""])
        }
        t.rows.append(
            ["consumed (first→last arrival)"] + kinds.map { results[$0]?.consumedRate.map(Fmt.rate) ?? "–" }
                + [ratio(results[.herald]?.consumedRate, results[.floor]?.consumedRate)])
        if offered == nil {
            // Only without a publisher in the way is 1/rate the consumer's own cost per message.
            let perMessage = kinds.map { k in results[k]?.consumedRate.map { 1e9 / $0 } }
            let h = kinds.firstIndex(of: .herald).flatMap { perMessage[$0] }
            let f = kinds.firstIndex(of: .floor).flatMap { perMessage[$0] }
            t.rows.append(
                ["time per message"] + perMessage.map { $0.map { Fmt.fixed($0 / 1000, 2) + " µs" } ?? "–" }
                    + [ratio(h, f)])
        }
        t.rows.append(
            ["received"]
                + kinds.map { k in
                    results[k].map { "\(Fmt.grouped($0.received))/\(Fmt.grouped($0.sent))" } ?? "–"
                } + [""])
        t.rows.append(["lost"] + kinds.map { results[$0].map { Fmt.grouped($0.lost) } ?? "–" } + [""])
        t.rows.append(["disconnects"] + kinds.map { results[$0].map { String($0.disconnects) } ?? "–" } + [""])
        for k in kinds {
            guard let r = results[k] else { continue }
            if let e = r.error { t.notes.append("\(k.title) error: \(e)") }
            if let d = r.delivered, d != r.sent {
                t.notes.append(
                    "\(k.title): Redis delivered \(Fmt.grouped(d)) of \(Fmt.grouped(r.sent)) messages to a subscriber "
                        + "(PUBLISH replies); the rest found no subscriber (it had been disconnected).")
            }
        }
        return t
    }

    // MARK: Targets

    func targets() -> [TargetCheck] {
        var out: [TargetCheck] = []
        for (source, name) in [(BenchSource.redis, "Redis p50 vs floor"), (.postgres, "NOTIFY p50 vs floor")] {
            let h = latency[source]?[.herald].flatMap { LatencyStats($0.samples) }
            let f = latency[source]?[.floor].flatMap { LatencyStats($0.samples) }
            if let h, let f {
                let r = Double(h.p50) / Double(f.p50)
                out.append(
                    TargetCheck(
                        name: name, required: "≤ 1.5× floor",
                        measured: "\(Fmt.duration(ns: h.p50)) / \(Fmt.duration(ns: f.p50)) = \(Fmt.fixed(r, 2))×",
                        met: r <= Self.targetP50Ratio))
            } else {
                out.append(TargetCheck(name: name, required: "≤ 1.5× floor", measured: "–", met: nil))
            }
        }
        for (results, name) in [(flood, "Redis live flood, nothing lost"), (drain, "Redis drain, nothing lost")] {
            if let h = results[.herald], let rate = h.consumedRate {
                out.append(
                    TargetCheck(
                        name: name, required: "≥ 200,000/s, 0 lost",
                        measured: "\(Fmt.rate(rate)), \(Fmt.grouped(h.lost)) lost",
                        met: rate >= Self.targetRate && h.lost == 0))
            } else {
                out.append(TargetCheck(name: name, required: "≥ 200,000/s, 0 lost", measured: "–", met: nil))
            }
        }
        out.append(
            TargetCheck(
                name: "Idle RSS", required: "< 30 MB", measured: rss.rssKiB.map { Fmt.megabytes(kib: $0) } ?? "–",
                met: rss.rssKiB.map { $0 < Self.targetRSSKiB }))
        return out
    }

    // MARK: JSON

    func json() -> [(String, BenchJSON)] {
        func latencyJSON(_ source: BenchSource) -> BenchJSON {
            .object(
                kinds.map { k in
                    let r = latency[source]?[k] ?? LatencyResult()
                    return (
                        k.rawValue,
                        .object([
                            ("stats", LatencyStats(r.samples)?.json ?? .null), ("expected", .int(r.expected)),
                            ("lost", .int(r.lost)), ("disconnects", .int(r.disconnects)), ("late_sends", .int(r.late)),
                            ("misdelivered", .int(r.misdelivered)), ("errors", .array(r.errors.map(BenchJSON.string))),
                            ("note", r.note.map(BenchJSON.string) ?? .null),
                        ])
                    )
                })
        }
        func rates(_ m: [ConsumerKind: RateResult]) -> BenchJSON {
            .object(kinds.map { ($0.rawValue, m[$0]?.json ?? .null) })
        }
        return [
            ("latency", .object([("redis", latencyJSON(.redis)), ("postgres", latencyJSON(.postgres))])),
            ("redis_flood", rates(flood)), ("redis_drain", rates(drain)), ("notify_burst", rates(burst)),
            ("idle_rss", rss.json),
        ]
    }
}
