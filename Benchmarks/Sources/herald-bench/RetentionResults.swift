// What the `retention` scenario measured and how it is printed: per part
// (messages without pauses, messages with default pauses, workflow runs) one
// outcome per column, turned into tables with Herald beside the SQL floor and
// the Dify peer, the result checks (printed loudly when anything is wrong),
// targets and JSON.

import Foundation

/// A column of the `retention` tables.
enum RetentionColumn: String, Sendable, CaseIterable {
    case herald
    /// Herald with HERALD_RETENTION_MAX_BATCH_GROWTH=1: never more than the configured batch, as the references.
    case heraldFixed = "herald_fixed_batch"
    case floor
    case peer

    var title: String {
        switch self {
        case .herald: return "herald"
        case .heraldFixed: return "herald, fixed batch"
        case .floor: return "SQL floor"
        case .peer: return "dify peer"
        }
    }

    var short: String {
        switch self {
        case .herald: return "herald"
        case .heraldFixed: return "fixed"
        case .floor: return "floor"
        case .peer: return "peer"
        }
    }

    var isHerald: Bool { self == .herald || self == .heraldFixed }
}

/// One column's run on its copy of the data.
struct RetentionRun: Sendable {
    var column: RetentionColumn
    /// False when the column could not run here (no such task in the binary, peer skipped).
    var available = true
    var error: String?
    var note: String?
    /// The work: herald's task run (started_at → finished_at), the peer's first SELECT → last COMMIT,
    /// the floor's CALL.
    var workNs: Int64?
    /// posix_spawn → exit (herald, peer).
    var processWallNs: Int64?
    /// What the column says it deleted (messages or runs; rows over all tables).
    var reportedParents: Int?
    var reportedRows: Int?
    var batches: Int?
    /// The longest transaction that deleted a batch.
    var longestBatchNs: Int64?
    var maxRSSKiB: Int?
    /// Time the peer slept between batches.
    var pausedNs: Int64?
    /// Herald's report counts as recorded.
    var counts: [(String, Int)] = []
    var verification: RetentionVerification?

    init(column: RetentionColumn) { self.column = column }

    static func unavailable(_ column: RetentionColumn, _ why: String) -> RetentionRun {
        var r = RetentionRun(column: column)
        r.available = false
        r.note = why
        return r
    }

    var measured: Bool { available && error == nil && workNs != nil }

    func perSecond(_ n: Int?) -> Double? {
        guard measured, let n, let w = workNs, w > 0 else { return nil }
        return Double(n) / (Double(w) / 1e9)
    }

    var deletedParents: Int? { verification?.deletedParents ?? reportedParents }
    var deletedRows: Int? { verification?.deletedRows ?? reportedRows }

    var checkText: String {
        guard available else { return "–" }
        guard let v = verification else { return error == nil ? "not checked" : "FAILED" }
        return v.ok ? "ok" : "MISMATCH (\(v.issues.count))"
    }

    var json: BenchJSON {
        func opt(_ v: Int?) -> BenchJSON { v.map(BenchJSON.int) ?? .null }
        func opt64(_ v: Int64?) -> BenchJSON { v.map(BenchJSON.int) ?? .null }
        return .object([
            ("available", .bool(available)), ("error", error.map(BenchJSON.string) ?? .null),
            ("note", note.map(BenchJSON.string) ?? .null),
            ("work_ns", opt64(workNs)), ("process_wall_ns", opt64(processWallNs)),
            ("reported_deleted", opt(reportedParents)), ("reported_rows", opt(reportedRows)), ("batches", opt(batches)),
            ("longest_batch_ns", opt64(longestBatchNs)), ("max_rss_kib", opt(maxRSSKiB)),
            ("paused_ns", opt64(pausedNs)),
            ("parents_per_second", perSecond(deletedParents).map(BenchJSON.double) ?? .null),
            ("rows_per_second", perSecond(deletedRows).map(BenchJSON.double) ?? .null),
            ("report_counts", .object(counts.map { ($0.0, .int($0.1)) })),
            ("verification", verification?.json ?? .null),
        ])
    }
}

/// One part of the scenario: a data set and the columns run on copies of it.
struct RetentionPart: Sendable {
    var key: String
    var task: RetentionTask
    var parents: Int
    var keptParents: Int
    var batch: Int
    var maxIntervalMs: Int
    /// Rows in every table of the template, and how many must stay.
    var census: [String: RetentionBenchData.Count] = [:]
    var loadNs: Int64 = 0
    var databaseBytes: Int?
    var runs: [RetentionColumn: RetentionRun] = [:]

    var totalRows: Int { census.values.reduce(0) { $0 + $1.total } }
    var expiredRows: Int { census.values.reduce(0) { $0 + $1.total - $1.kept } }

    var json: BenchJSON {
        .object([
            ("task", .string(task.heraldTask)), ("expired", .int(parents)), ("kept", .int(keptParents)),
            ("batch", .int(batch)),
            ("max_interval_ms", .int(maxIntervalMs)), ("rows", .int(totalRows)), ("expired_rows", .int(expiredRows)),
            ("load_ns", .int(loadNs)), ("database_bytes", databaseBytes.map(BenchJSON.int) ?? .null),
            ("columns", .object(RetentionColumn.allCases.compactMap { c in runs[c].map { (c.rawValue, $0.json) } })),
        ])
    }
}

/// Everything the scenario measured.
struct RetentionResults: Sendable {
    var messages: RetentionPart?
    var pausedMessages: RetentionPart?
    var runs: RetentionPart?
    var notes: [String] = []

    func tables(config: RetentionConfig) -> [BenchTable] {
        var out: [BenchTable] = []
        if let p = messages { out.append(mainTable(p, unit: "messages", config: config)) }
        if let p = pausedMessages { out.append(pausedTable(p, config: config)) }
        if let p = runs { out.append(mainTable(p, unit: "runs", config: config)) }
        return out
    }

    private func mainTable(_ p: RetentionPart, unit: String, config: RetentionConfig) -> BenchTable {
        let columns: [RetentionColumn] = [.herald, .heraldFixed, .floor, .peer].filter { p.runs[$0] != nil }
        let tables = p.census.count
        let what =
            unit == "messages"
            ? "Expired messages: \(Fmt.grouped(p.parents)) messages older than \(config.retentionDays) days"
            : "Ended workflow runs older than \(config.retentionDays) days: \(Fmt.grouped(p.parents)) runs"
        var t = BenchTable(
            title: "\(what) and their rows in \(tables) tables (\(Fmt.grouped(p.expiredRows)) rows to delete, "
                + "\(Fmt.grouped(p.totalRows - p.expiredRows)) to keep), batch \(Fmt.grouped(p.batch)), no pauses",
            columns: [])
        let ratios: [(RetentionColumn, RetentionColumn)] = [
            (.herald, .floor), (.herald, .peer), (.heraldFixed, .floor),
        ]
        .filter { p.runs[$0.0] != nil && p.runs[$0.1] != nil }
        t.columns = ["metric"] + columns.map(\.title) + ratios.map { "\($0.0.short)/\($0.1.short)" }
        addRows(&t, p, columns: columns, unit: unit, ratios: ratios)
        t.notes = partNotes(p, columns: columns)
        if unit == "runs" {
            t.notes.append(
                "Pauses: Dify's clean_workflow_runlogs_precise has none and Herald's WORKFLOW_LOG_CLEANUP_BATCH_MAX_INTERVAL "
                    + "defaults to 0, so this run is also both with their default pauses.")
        }
        return t
    }

    private func pausedTable(_ p: RetentionPart, config: RetentionConfig) -> BenchTable {
        let columns: [RetentionColumn] = [.herald, .peer]
        var t = BenchTable(
            title:
                "Expired messages with default pauses (SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL=\(p.maxIntervalMs) ms): "
                + "a smaller data set, \(Fmt.grouped(p.parents)) messages (\(Fmt.grouped(p.expiredRows)) rows to delete, "
                + "\(Fmt.grouped(p.totalRows - p.expiredRows)) to keep), batch \(Fmt.grouped(p.batch))",
            columns: ["metric"] + columns.map(\.title) + ["herald/peer"])
        addRows(&t, p, columns: columns, unit: "messages", ratios: [(.herald, .peer)])
        t.notes = partNotes(p, columns: columns)
        let peerBatches = p.runs[.peer]?.batches ?? p.parents / max(1, p.batch)
        t.notes.append(
            "Both sleep a random uniform(0, \(p.maxIntervalMs)) ms after each deleting batch: the peer after each of its "
                + "\(Fmt.grouped(peerBatches)) batches (about \(Fmt.grouped(peerBatches)) × \(p.maxIntervalMs / 2) ms in all), Herald "
                + "after each of its own, whose size adapts (it does not report its pause time). The smaller data set "
                + "(\(Fmt.grouped(p.parents)) instead of \(Fmt.grouped(config.messages))) keeps the benchmark short.")
        return t
    }

    private func addRows(
        _ t: inout BenchTable, _ p: RetentionPart, columns: [RetentionColumn], unit: String,
        ratios: [(RetentionColumn, RetentionColumn)]
    ) {
        func cells(
            _ value: (RetentionRun) -> String?, ratio: ((RetentionRun, RetentionRun) -> String?)? = nil
        ) -> [String] {
            var out = columns.map { c -> String in
                guard let r = p.runs[c] else { return "–" }
                guard r.available else { return "n/a" }
                return value(r) ?? "–"
            }
            for (num, den) in ratios {
                guard let ratio, let h = p.runs[num], h.measured, let o = p.runs[den], o.measured else {
                    out.append("")
                    continue
                }
                out.append(ratio(h, o) ?? "")
            }
            return out
        }
        func timeRatio(_ f: @escaping (RetentionRun) -> Int64?) -> (RetentionRun, RetentionRun) -> String? {
            { a, b in
                guard let x = f(a), let y = f(b) else { return nil }
                return Fmt.ratio(Double(x), Double(y))
            }
        }
        func rateRatio(_ f: @escaping (RetentionRun) -> Double?) -> (RetentionRun, RetentionRun) -> String? {
            { a, b in
                guard let x = f(a), let y = f(b) else { return nil }
                return Fmt.ratio(x, y)
            }
        }
        t.rows.append(["\(unit) deleted"] + cells({ r in r.deletedParents.map(Fmt.grouped) }))
        t.rows.append(["rows deleted (all tables)"] + cells({ r in r.deletedRows.map(Fmt.grouped) }))
        t.rows.append(
            ["time"]
                + cells({ r in r.measured ? r.workNs.map { Fmt.duration(ns: $0) } : nil }, ratio: timeRatio(\.workNs)))
        t.rows.append(
            ["\(unit)/s"]
                + cells(
                    { r in r.perSecond(r.deletedParents).map(Fmt.rate) },
                    ratio: rateRatio { $0.perSecond($0.deletedParents) }))
        t.rows.append(
            ["rows/s"]
                + cells(
                    { r in r.perSecond(r.deletedRows).map(Fmt.rate) },
                    ratio: rateRatio { $0.perSecond($0.deletedRows) }))
        t.rows.append(["batches"] + cells({ r in r.batches.map(Fmt.grouped) }))
        t.rows.append(
            ["longest batch transaction"]
                + cells(
                    { r in r.longestBatchNs.map { Fmt.duration(ns: $0) } },
                    ratio: timeRatio(\.longestBatchNs)))
        if columns.contains(.peer), p.runs[.peer]?.pausedNs ?? 0 > 0 {
            t.rows.append(["of the time, pauses"] + cells({ r in r.pausedNs.map { Fmt.duration(ns: $0) } }))
        }
        t.rows.append(
            ["peak RSS (VmHWM)"]
                + cells(
                    { r in r.column == .floor ? "in the server" : r.maxRSSKiB.map(Fmt.megabytes) },
                    ratio: { a, b in
                        guard b.column != .floor, let x = a.maxRSSKiB, let y = b.maxRSSKiB else { return nil }
                        return Fmt.ratio(Double(x), Double(y))
                    }))
        t.rows.append(["process start → exit"] + cells({ r in r.processWallNs.map { Fmt.duration(ns: $0) } }))
        t.rows.append(["result check"] + cells({ r in r.checkText }))
    }

    private func partNotes(_ p: RetentionPart, columns: [RetentionColumn]) -> [String] {
        var out: [String] = []
        for c in columns {
            guard let r = p.runs[c] else { continue }
            if !r.available { out.append("\(c.title): not run: \(r.note ?? "unavailable").") }
            if let e = r.error { out.append("\(c.title): ERROR: \(e)") }
            if let v = r.verification, !v.ok {
                out.append("\(c.title): RESULT MISMATCH: " + v.issues.joined(separator: "; ") + ".")
            }
            if let v = r.verification, let reported = r.reportedParents, reported != v.deletedParents {
                out.append(
                    "\(c.title): reports \(Fmt.grouped(reported)) \(p.task.parentKey) deleted, the count says \(Fmt.grouped(v.deletedParents))."
                )
            }
            if c.isHerald, r.measured, let size = r.counts.first(where: { $0.0 == "batch_size" })?.1 {
                let retries = r.counts.first(where: { $0.0 == "retries" })?.1 ?? 0
                let how =
                    c == .herald
                    ? "starts at the configured \(Fmt.grouped(p.batch)) and adapts with its defaults (HERALD_RETENTION_BATCH_TARGET_MS, "
                        + "HERALD_RETENTION_MAX_BATCH_GROWTH)"
                    : "is at most the configured \(Fmt.grouped(p.batch)) (HERALD_RETENTION_MAX_BATCH_GROWTH=1), as the floor's and the "
                        + "peer's, and shrinks only to stay under HERALD_RETENTION_BATCH_TARGET_MS"
                out.append(
                    "\(c.title): its batch size \(how); it ended at \(Fmt.grouped(size)), with \(retries) retried batches. "
                        + "A batch that finds fewer rows than it asked for ends the run (an extra, empty one when the rows divide evenly)."
                )
            }
            if let v = r.verification, let reported = r.reportedRows, reported != v.deletedRows {
                out.append(
                    "\(c.title): reports \(Fmt.grouped(reported)) rows deleted, the counts say \(Fmt.grouped(v.deletedRows))."
                )
            }
        }
        return out
    }

    /// The result of every column, Herald's judged as a target.
    func targets() -> [TargetCheck] {
        var out: [TargetCheck] = []
        for (label, part) in [
            ("clean_messages", messages), ("clean_messages, pauses", pausedMessages),
            ("clean_workflow_runlogs_precise", runs),
        ] {
            guard let part else { continue }
            for column in [RetentionColumn.herald, .heraldFixed] {
                guard let h = part.runs[column] else { continue }
                let measured: String
                let met: Bool?
                if !h.available {
                    measured = "not run"
                    met = nil
                } else if let v = h.verification {
                    measured = v.ok ? "exact" : v.issues.joined(separator: "; ")
                    met = v.ok && h.error == nil
                } else {
                    measured = h.error ?? "not checked"
                    met = false
                }
                let name = column == .herald ? label : "\(label) (\(column.title))"
                out.append(
                    TargetCheck(
                        name: "\(name): every expired row deleted, every other row kept",
                        required: "exact", measured: measured, met: met))
                // The scenario's targets: ≥ 0.8× the floor's rate (runs without pauses), no batch holding
                // its locks over 200 ms, peak RSS under 50 MB.
                if let floor = part.runs[.floor], let hr = h.perSecond(h.deletedRows),
                    let fr = floor.perSecond(floor.deletedRows)
                {
                    out.append(
                        TargetCheck(
                            name: "\(name): rows/s vs the SQL floor", required: "≥ 0.80×",
                            measured: Fmt.ratio(hr, fr), met: hr >= 0.8 * fr))
                }
                if h.measured, let longest = h.longestBatchNs {
                    out.append(
                        TargetCheck(
                            name: "\(name): longest batch holding locks", required: "≤ 200 ms",
                            measured: Fmt.duration(ns: longest), met: longest <= 200_000_000))
                }
                if h.measured, let rss = h.maxRSSKiB, rss > 0 {
                    out.append(
                        TargetCheck(
                            name: "\(name): peak RSS", required: "< 50 MB",
                            measured: Fmt.megabytes(kib: rss), met: rss * 1024 < 50_000_000))
                }
            }
        }
        return out
    }

    func json() -> [(String, BenchJSON)] {
        var out: [(String, BenchJSON)] = []
        if let p = messages { out.append(("messages", p.json)) }
        if let p = pausedMessages { out.append(("messages_paused", p.json)) }
        if let p = runs { out.append(("runs", p.json)) }
        out.append(("notes", .array(notes.map(BenchJSON.string))))
        return out
    }
}
