// The tables of the `schedules` scenario, one per test (a) to (e), Herald
// beside its references from the same run (paste-ready for docs/benchmarks.md).

extension SchedulesResults {
    func tables(config: SchedulesConfig) -> [BenchTable] {
        [sameSecondTable(config), atOnceTable(config), runNowTable(config)] + sweepTables(config) + [
            memoryTable(config)
        ]
    }

    private func cell(_ ns: Int64?) -> String { ns.map { Fmt.duration(ns: $0) } ?? "–" }

    private func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b else { return "–" }
        return Fmt.ratio(a, b)
    }

    private func sameSecondTable(_ config: SchedulesConfig) -> BenchTable {
        let cols: [ScheduleColumn] = [.herald, .floor, .push, .peer].filter { sameSecond[$0] != nil }
        var t = BenchTable(
            title:
                "(a) \(Fmt.grouped(config.sameSecondPlans)) plans due in the same second: lateness, scheduled time → message on the queue",
            columns: ["metric"] + cols.map(\.title) + ["herald/floor"])
        let stats = cols.map { sameSecond[$0]?.stats }
        for (i, name) in ["min", "p50", "p90", "p99", "p99.9", "max"].enumerated() {
            let v = stats.map { $0?.rows[i].1 }
            let h = cols.firstIndex(of: .herald).flatMap { v[$0] }, f = cols.firstIndex(of: .floor).flatMap { v[$0] }
            t.rows.append([name] + v.map(cell) + [ratio(h.map(Double.init), f.map(Double.init))])
        }
        t.rows.append(
            ["on the queue"]
                + cols.map { c in
                    sameSecond[c].map { "\(Fmt.grouped($0.received))/\(Fmt.grouped($0.expected))" } ?? "–"
                } + [""])
        t.rows.append(["duplicates"] + cols.map { Fmt.grouped(sameSecond[$0]?.duplicates ?? 0) } + [""])
        t.rows.append(["runs"] + cols.map { String(sameSecond[$0]?.runs ?? 0) } + [""])
        t.notes.append(
            "Every plan of a run has the same `next_run_at`, a whole second; lateness = arrival on the list "
                + "(CLOCK_REALTIME in the consumer) − that second; negative would mean early. The plans are set 5 s ahead, statistics are "
                + "refreshed (ANALYZE), and Herald is told with the bulk notice the NOTIFY trigger sends for such an UPDATE. The floor's \"arrival\" is the return of the statement that claimed the plan "
                + "(nothing is enqueued). The LPUSH floor pushes the same number of ready Celery messages at the due second, 250 per LPUSH in one pipeline (Herald's batching without its de-duplication markers): the least time to get them onto the list. The dify poller runs one tick starting exactly at the due second, the best case of its "
                + "once-a-minute poll: its lateness is the tick's processing time, to which production adds 0–60 s of poll phase."
        )
        if let r = drainRate {
            t.notes.append(
                "The observing consumer itself drains \(Fmt.rate(r)) (measured on a pre-filled list), so a burst of "
                    + "\(Fmt.grouped(config.sameSecondPlans)) takes it at least \(Fmt.duration(ns: Int64(Double(config.sameSecondPlans) / r * 1e9)))."
            )
        }
        appendDiagnostics(sameSecond, cols, to: &t, phases: peerPhases["same_second"])
        return t
    }

    private func atOnceTable(_ config: SchedulesConfig) -> BenchTable {
        let cols: [ScheduleColumn] = [.herald, .heraldNoLead, .floor, .floorDifyJoin, .peer].filter {
            atOnce[$0] != nil
        }
        let judged: ScheduleColumn = atOnce[.heraldNoLead] != nil ? .heraldNoLead : .herald
        var t = BenchTable(
            title: "(b) \(Fmt.grouped(config.atOncePlans)) plans due at once: fires per second",
            columns: ["metric"] + cols.map(\.title) + ["\(judged.title)/floor", "\(judged.title)/dify"])
        let h = atOnce[judged]?.rate
        t.rows.append(
            ["fires/s"] + cols.map { atOnce[$0]?.rate.map(Fmt.rate) ?? "–" }
                + [ratio(h, atOnce[.floor]?.rate), ratio(h, atOnce[.peer]?.rate)])
        func each(_ f: @escaping ((startNs: Int64, lastNs: Int64, dueNs: Int64, received: Int)) -> Int64) -> [String] {
            cols.map { c in
                guard let w = atOnce[c]?.windows, !w.isEmpty else { return "–" }
                return w.map { Fmt.duration(ns: f($0)) }.joined(separator: ", ")
            }
        }
        t.rows.append(
            ["fires/s of each run"]
                + cols.map { c in
                    guard let w = atOnce[c]?.windows, !w.isEmpty else { return "–" }
                    return w.map { Fmt.rate(Double($0.received) * 1e9 / Double(max(1, $0.lastNs - $0.startNs))) }
                        .joined(separator: ", ")
                } + ["", ""])
        t.rows.append(["start of the work → last message"] + each { $0.lastNs - $0.startNs } + ["", ""])
        t.rows.append(["due time → last message"] + each { $0.lastNs - $0.dueNs } + ["", ""])
        t.rows.append(["work started before the due time"] + each { $0.dueNs - $0.startNs } + ["", ""])
        let stats = cols.map { atOnce[$0]?.stats }
        for (name, i) in [("lateness p50", 1), ("lateness max", 5)] {
            t.rows.append([name] + stats.map { cell($0?.rows[i].1) } + ["", ""])
        }
        t.rows.append(
            ["on the queue"]
                + cols.map { c in
                    atOnce[c].map { "\(Fmt.grouped($0.received))/\(Fmt.grouped($0.expected))" } ?? "–"
                } + ["", ""])
        t.rows.append(["duplicates"] + cols.map { Fmt.grouped(atOnce[$0]?.duplicates ?? 0) } + ["", ""])
        let peak: [ScheduleColumn: Int] = [
            .herald: memory["herald_after_at_once"]?.fields["VmHWM"], .peer: memory["peer"]?.fields["VmHWM"],
        ]
        .compactMapValues { $0 }
        t.rows.append(
            ["process peak RSS (VmHWM)"] + cols.map { c in peak[c].map { Fmt.megabytes(kib: $0) } ?? "–" } + ["", ""])
        t.notes.append(
            "fires/s = plans on the queue / (last arrival − start of the work), over all runs of the column. The start is the due time, or "
                + "Herald's first claim (`min(claimed_at)` in herald.schedule_fires) when it claimed ahead; the floor's arrivals "
                + "are its statements' returns. `herald` runs with its defaults: it claims up to 2 s ahead (HERALD_SCHEDULE_LEAD) and "
                + "releases the fires at their second, so its window includes that wait. `herald, no lead` is the same daemon restarted "
                + "with HERALD_SCHEDULE_LEAD=0 after (c): it starts claiming at the due time, like the floor, and its fires/s is the "
                + "throughput the targets judge. `SQL-claim floor` claims \(Fmt.grouped(config.floorBatch)) plans per statement with "
                + "`t.tenant_id = p.tenant_id` in its join to app_triggers (Dify's index app_trigger_tenant_app_idx then serves "
                + "it); `SQL floor, Dify's join` is the same statement with Dify's join (app_id, node_id), which makes "
                + "PostgreSQL read all of app_triggers and sort every due plan for each statement. Peak RSS: Herald's VmHWM "
                + "read right after this run (it includes (a)); the peer's at its end.")
        appendDiagnostics(atOnce, cols, to: &t, phases: peerPhases["at_once"])
        return t
    }

    private func appendDiagnostics(
        _ m: [ScheduleColumn: BurstOutcome], _ cols: [ScheduleColumn], to t: inout BenchTable,
        phases: [String: Int64]?
    ) {
        for c in cols {
            guard let o = m[c] else { continue }
            for n in Set(o.notes).sorted() { t.notes.append("\(c.title): \(n)") }
            for e in Set(o.errors).sorted() { t.notes.append("\(c.title) error: \(e)") }
        }
        if let p = phases, !p.isEmpty {
            let total = p.values.reduce(0, +)
            let parts = ["select", "cron", "dispatch", "update_commit"].compactMap { k in
                p[k].map { "\(k) \(Fmt.fixed(100 * Double($0) / Double(max(1, total)), 0))%" }
            }
            t.notes.append("dify poller, where its tick's time went: " + parts.joined(separator: ", ") + ".")
        }
    }

    private func runNowTable(_ config: SchedulesConfig) -> BenchTable {
        let cols: [ScheduleColumn] = [.herald, .relay, .bare].filter { runNow[$0] != nil }
        var t = BenchTable(
            title:
                "(c) `run_now` event → message on the queue (\(Fmt.grouped(config.runNowEvents)) events, one at a time)",
            columns: ["metric"] + cols.map(\.title) + ["herald/relay"])
        let stats = cols.map { runNow[$0].flatMap { LatencyStats($0.samples) } }
        for (i, name) in ["min", "p50", "p90", "p99", "p99.9", "max"].enumerated() {
            let v = stats.map { $0?.rows[i].1 }
            let h = cols.firstIndex(of: .herald).flatMap { v[$0] }, r = cols.firstIndex(of: .relay).flatMap { v[$0] }
            t.rows.append([name] + v.map(cell) + [ratio(h.map(Double.init), r.map(Double.init))])
        }
        t.rows.append(
            ["on the queue"]
                + cols.map { c in
                    runNow[c].map { "\(Fmt.grouped($0.samples.count))/\(Fmt.grouped($0.expected))" } ?? "–"
                } + [""])
        t.notes.append(
            "Latency = arrival on the list − CLOCK_REALTIME just before PUBLISH `{\"schedule_id\": …, \"run_now\": true}` "
                + "(LPUSH for the last column). Each event is sent after the previous one arrived, at most one per "
                + "\(Fmt.duration(ns: config.runNowInterval.nanoseconds)), after \(config.runNowWarmup) unmeasured ones. `relay floor` = a "
                + "bare HeraldIO subscriber that encodes the same Celery message and LPUSHes it, no database. Herald also re-reads the "
                + "plan and records the fire in PostgreSQL before pushing. Dify has no such event: a plan changed in Dify waits for "
                + "the next poll (up to 60 s).")
        for c in cols {
            guard let o = runNow[c] else { continue }
            if o.misdelivered > 0 {
                t.notes.append("\(c.title): \(o.misdelivered) PUBLISH replies did not count exactly one receiver.")
            }
            for e in Set(o.errors).sorted() { t.notes.append("\(c.title) error: \(e)") }
        }
        return t
    }

    private func sweepTables(_ config: SchedulesConfig) -> [BenchTable] {
        let qs = SweepQueryProbe.Query.allCases
        var wall = BenchTable(
            title: "(d) sweep claim query with \(config.sweepDue) due: wall time, median of \(config.sweepRuns) runs",
            columns: ["plans"] + qs.map(\.title) + ["herald/dify", "herald claimDue call"])
        var server = BenchTable(
            title:
                "(d) the same queries: server execution time (EXPLAIN ANALYZE, median of 3) and the scan of app_triggers",
            columns: ["plans"] + qs.map(\.title))
        for r in sweep {
            let med = qs.map { Self.median(r.wallNs[$0] ?? []) }
            let h = med[qs.firstIndex(of: .herald)!], d = med[qs.firstIndex(of: .dify)!]
            wall.rows.append(
                [Fmt.grouped(r.plans)] + med.map(cell)
                    + [ratio(h.map(Double.init), d.map(Double.init)), cell(Self.median(r.claimDueNs))])
            server.rows.append(
                [Fmt.grouped(r.plans)]
                    + qs.map { q in
                        "\(cell(Self.median(r.serverNs[q] ?? []))), \(r.triggerScan[q] ?? "?")"
                    })
            for q in qs where (r.rows[q] ?? config.sweepDue) != config.sweepDue {
                wall.notes.append(
                    "\(Fmt.grouped(r.plans)) plans: \(q.title) returned \(r.rows[q] ?? 0) rows, not \(config.sweepDue)."
                )
            }
            if let e = r.error { wall.notes.append("\(Fmt.grouped(r.plans)) plans error: \(e)") }
        }
        wall.notes.append(
            "Each query runs in a transaction that is rolled back, the four in rotation after 2 warm-up rounds; "
                + "wall time = send → last row on a HeraldIO libpq connection. `herald claim query` is the SELECT … FOR UPDATE OF p "
                + "SKIP LOCKED of PlanStore.claimDue(ids: nil) (the sweep), copied; it joins app_triggers on `t.tenant_id = p.tenant_id` "
                + "too, which lets PostgreSQL use Dify's index app_trigger_tenant_app_idx (tenant_id, app_id); `with Dify's join` is "
                + "the same query joined on (app_id, node_id) only, as Herald did before; `floor` claims through the next_run_at index alone. `herald claimDue call` times the real call: claim, "
                + "cron, UPDATE, INSERT of the fire rows, COMMIT (the plans are put back after each call). The remaining plans are "
                + "spread over the next 24 hours.")
        var events = BenchTable(
            title:
                "(d) Herald's per-event queries on one plan, by table size: wall time, median of \(config.sweepRuns) runs",
            columns: ["plans", "PlanStore.read (re-read on an event)", "PlanStore.claimRunNow (run_now)"])
        for r in sweep {
            events.rows.append([
                Fmt.grouped(r.plans), cell(Self.median(r.readOneNs)), cell(Self.median(r.runNowClaimNs)),
            ])
        }
        events.notes.append(
            "The real calls, on a plan in the middle of the table that is not due (claimRunNow inserts a fire "
                + "row; the rows are deleted afterwards). Both join app_triggers the way the claim query does, so they grow with "
                + "the number of triggers: this is most of the gap between Herald and the relay floor in (c).")
        return [wall, server, events]
    }

    private func memoryTable(_ config: SchedulesConfig) -> BenchTable {
        let big = Fmt.grouped(config.sweepSizes.max() ?? 0)
        let keys = [
            ("herald_loaded", "herald, \(big) plans"), ("herald_empty", "herald, empty database"),
            ("peer", "dify poller (after its ticks)"),
        ].filter { memory[$0.0] != nil }
        var t = BenchTable(
            title: "(e) resident memory of `herald run` with \(big) plans",
            columns: ["metric"] + keys.map(\.1) + ["target"])
        func mb(_ field: String) -> [String] {
            keys.map { k in memory[k.0]?.fields[field].map { Fmt.megabytes(kib: $0) } ?? "–" }
        }
        t.rows.append(["VmRSS"] + mb("VmRSS") + ["≤ 100 MB"])
        t.rows.append(["  of which anonymous (RssAnon)"] + mb("RssAnon") + [""])
        t.rows.append(["  of which mapped files (RssFile)"] + mb("RssFile") + [""])
        t.rows.append(["PSS"] + mb("Pss") + [""])
        t.rows.append(["VmHWM (peak)"] + mb("VmHWM") + [""])
        t.rows.append(["plans armed"] + keys.map { k in memory[k.0]?.armed.map(Fmt.grouped) ?? "–" } + [""])
        t.rows.append(["start → window loaded"] + keys.map { k in cell(memory[k.0]?.windowLoadedNs) } + [""])
        t.rows.append(
            ["messages pushed at start"] + keys.map { k in memory[k.0]?.firedAtStart.map(Fmt.grouped) ?? "–" } + [""])
        t.rows.append(["threads"] + keys.map { k in memory[k.0]?.fields["Threads"].map(String.init) ?? "–" } + [""])
        t.rows.append(
            ["exit status after SIGTERM"] + keys.map { k in memory[k.0]?.exitStatus.map(String.init) ?? "–" } + ["0"])
        t.notes.append(
            "The plans: \(config.sweepDue) overdue, the rest spread over the next 24 hours (about 1/288 within Herald's "
                + "5-minute window). Read from /proc/<pid>/status after the number of armed plans stayed the same for 1 s, then "
                + "\(Fmt.duration(ns: config.rssSettle.nanoseconds)). The peer's figures are the Python poller's own, after its (a) and "
                + "(b) ticks; it keeps at most one batch of plans in memory.")
        if let m = memory["herald_after_at_once"]?.fields["VmHWM"] {
            t.notes.append(
                "For comparison, the peak (VmHWM) of the (a)–(c) daemon after firing \(Fmt.grouped(config.atOncePlans)) "
                    + "plans at once: \(Fmt.megabytes(kib: m)) (see (b)).")
        }
        for k in keys { if let e = memory[k.0]?.error { t.notes.append("\(k.1) error: \(e)") } }
        return t
    }
}
