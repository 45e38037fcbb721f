// Scenario `retention` (docs/benchmarks.md): Herald deleting expired Dify messages
// (clean_messages) and ended workflow runs (clean_workflow_runlogs_precise)
// beside two references on the same data in the same run: the SQL floor (the
// same batched deletes as a PL/pgSQL procedure inside the server) and the Dify
// peer (Dify's algorithm in Python). Each data set is generated once into a
// template database; every column gets a file copy of it, a checkpoint, its
// run, and a census of every table afterwards: the rows that must stay are
// all there and no expired row is left. Herald runs twice on the full data
// sets: with its default batch sizing and with its batches held to the
// configured size, as the references'. Messages run without pauses, then
// Herald and the peer again with their default pauses on a smaller data set.

import Foundation
import HeraldCore
import HeraldIO

/// Runs the `retention` scenario.
final class RetentionScenario {
    static let name = "retention"
    private let environment: BenchEnvironment
    private let config: RetentionConfig
    private var results = RetentionResults()
    private let keyPrefix = "hbret\(getpid())"
    private var peerVersions: String?
    /// Tasks the herald binary does not implement (found on the first try; later parts skip it).
    private var heraldMissing: [RetentionTask: String] = [:]

    init(environment: BenchEnvironment, config: RetentionConfig) {
        self.environment = environment
        self.config = config
    }

    private func database(_ part: String, _ suffix: String) -> String {
        RetentionBenchData.databasePrefix + "_\(part)_\(suffix)"
    }

    func run() throws -> ScenarioReport {
        let started = BenchClock.monotonicNs()
        let data = try RetentionBenchData(environment: environment)
        data.dropLeftovers()
        defer {
            progress("cleaning up")
            data.dropLeftovers()
            if let r = try? RedisClient(endpoint: environment.redis) {
                ScheduleBenchData.deleteKeys(r, prefix: keyPrefix + ":")
            }
        }
        let base = try data.serverNowUTC()
        let cutoff =
            try PostgresConnection(connInfo: environment.database)
            .query(
                "SELECT ($1::timestamp - make_interval(days => $2::int))::text", [base, String(config.retentionDays)]
            )
            .rows.first?.first ?? nil
        guard let cutoff else { throw BenchFailure("cannot compute the cutoff") }

        if config.includeMessages {
            let n = config.messages, k = config.keptMessages
            results.messages = try measure(
                "msg", task: .messages, parents: n, kept: k, batch: config.messageBatch, maxIntervalMs: 0,
                columns: [.floor, .herald, .heraldFixed, .peer],
                statements: data.messageStatements(expired: n, recent: k, base: base, config: config),
                tables: RetentionBenchData.messageTables, census: RetentionBenchData.messageCensusSQL(cutoff: cutoff),
                data: data)
            if config.pauses {
                let pn = config.pausedMessages, pk = config.keptPausedMessages
                results.pausedMessages = try measure(
                    "msgp", task: .messages, parents: pn, kept: pk, batch: config.messageBatch,
                    maxIntervalMs: config.pauseMaxIntervalMs, columns: [.herald, .peer],
                    statements: data.messageStatements(expired: pn, recent: pk, base: base, config: config),
                    tables: RetentionBenchData.messageTables,
                    census: RetentionBenchData.messageCensusSQL(cutoff: cutoff), data: data)
            }
        }
        if config.includeRuns {
            let r = config.runs, rr = config.keptRecentRuns, ru = config.keptUnfinishedRuns
            results.runs = try measure(
                "runs", task: .runs, parents: r, kept: rr + ru, batch: config.runBatch, maxIntervalMs: 0,
                columns: [.floor, .herald, .heraldFixed, .peer],
                statements: data.runStatements(expired: r, recent: rr, unfinished: ru, base: base, config: config),
                tables: RetentionBenchData.runTables, census: RetentionBenchData.runCensusSQL(cutoff: cutoff),
                data: data)
        }

        var report = ScenarioReport(name: Self.name)
        report.header = header() + results.notes
        report.tables = results.tables(config: config)
        report.targets = results.targets()
        report.json = [("machine", machineJSON()), ("config", config.json)] + results.json()
        report.elapsedNs = BenchClock.monotonicNs() - started
        return report
    }

    /// Loads one data set into a template, then runs each column on a copy of it and checks the result.
    private func measure(
        _ key: String, task: RetentionTask, parents: Int, kept: Int, batch: Int, maxIntervalMs: Int,
        columns: [RetentionColumn], statements: [String], tables: [String], census: [(String, String)],
        data: RetentionBenchData
    ) throws -> RetentionPart {
        var part = RetentionPart(
            key: key, task: task, parents: parents, keptParents: kept, batch: batch, maxIntervalMs: maxIntervalMs)
        let template = database(key, "tmpl")
        let noun = task == .messages ? "messages" : "runs"
        progress(
            "\(key): loading \(Fmt.grouped(parents)) expired and \(Fmt.grouped(kept)) kept \(noun) into \(template)")
        let t0 = BenchClock.monotonicNs()
        try data.create(template)
        try data.load(template, tables: tables, statements: statements)
        part.loadNs = BenchClock.monotonicNs() - t0
        part.census = try data.census(template, census)
        part.databaseBytes = data.size(template)
        results.notes.append(
            "Data `\(key)`: \(Fmt.grouped(part.totalRows)) rows (\(Fmt.grouped(part.expiredRows)) expired) "
                + "loaded, indexed and vacuumed in \(Fmt.duration(ns: part.loadNs)); "
                + "database \(part.databaseBytes.map { Fmt.megabytes(kib: $0 / 1024) } ?? "?").")
        defer { data.drop(template) }

        for column in columns {
            if column.isHerald, let why = heraldMissing[task] {
                part.runs[column] = .unavailable(column, why)
                continue
            }
            if column == .peer, peerScript() == nil {
                part.runs[column] = .unavailable(
                    .peer, config.python ? "no Python with psycopg (HERALD_TEST_PYTHON)" : "--no-python")
                continue
            }
            let db = database(key, column.rawValue)
            progress("\(key): \(column.title): copying the data")
            try data.copy(template, to: db)
            defer { data.drop(db) }
            progress(
                "\(key): \(column.title): deleting" + (maxIntervalMs > 0 ? " (pauses up to \(maxIntervalMs) ms)" : ""))
            var run = execute(column, task: task, database: db, batch: batch, maxIntervalMs: maxIntervalMs, data: data)
            if column.isHerald, !run.available { heraldMissing[task] = run.note ?? "unavailable" }
            if run.available {
                do {
                    run.verification = RetentionVerification(
                        parent: task.parentTable, before: part.census, after: try data.census(db, census))
                } catch {
                    run.error = (run.error.map { $0 + "; " } ?? "") + "census failed: \(error)"
                }
            }
            let summary =
                run.measured
                ? "\(Fmt.duration(ns: run.workNs ?? 0)), \(run.checkText)"
                : (run.available ? "failed: \(run.error ?? "?")" : "not run: \(run.note ?? "")")
            progress("\(key): \(column.title): \(summary)")
            if let v = run.verification, !v.ok {
                progress("!!! \(key): \(column.title): RESULT MISMATCH: " + v.issues.joined(separator: "; "))
            }
            part.runs[column] = run
        }
        return part
    }

    private func execute(
        _ column: RetentionColumn, task: RetentionTask, database db: String, batch: Int, maxIntervalMs: Int,
        data: RetentionBenchData
    ) -> RetentionRun {
        switch column {
        case .floor:
            var run = RetentionRun(column: .floor)
            do {
                let c = try PostgresConnection(connInfo: data.info(db))
                try RetentionFloor.install(c, runs: task == .runs)
                data.checkpoint()
                let o = try RetentionFloor.run(c, runs: task == .runs, days: config.retentionDays, batch: batch)
                run.workNs = o.wallNs
                run.reportedParents = o.deleted
                run.reportedRows = o.rows
                run.batches = o.batches
                run.longestBatchNs = o.longestBatchUs * 1000
            } catch {
                run.error = "\(error)"
            }
            return run
        case .herald, .heraldFixed:
            data.checkpoint()
            let runner = RetentionHeraldRunner(environment: environment, keyPrefix: keyPrefix)
            var settings = RetentionHeraldRunner.settings(
                task: task, days: config.retentionDays, batch: batch, maxIntervalMs: maxIntervalMs)
            if column == .heraldFixed { settings["HERALD_RETENTION_MAX_BATCH_GROWTH"] = "1" }
            return runner.run(
                task, column: column, databaseURL: data.url(db), database: data.info(db), settings: settings)
        case .peer:
            guard let (python, script) = peerScript() else { return .unavailable(.peer, "no peer") }
            data.checkpoint()
            let run = RetentionPeerRunner(python: python, script: script)
                .run(
                    task, databaseURL: data.url(db), days: config.retentionDays, batch: batch,
                    maxIntervalMs: maxIntervalMs)
            if let n = run.note { peerVersions = n }
            return run
        }
    }

    private func peerScript() -> (String, String)? {
        guard config.python, let python = environment.python, let root = BenchEnvironment.repositoryRoot() else {
            return nil
        }
        let script = root + "/Tests/Support/bench_retention_peer.py"
        return FileManager.default.fileExists(atPath: script) ? (python, script) : nil
    }

    // MARK: Report helpers

    private func header() -> [String] {
        let m = BenchEnvironment.machine()
        return [
            "Machine: \(m.cpus) CPUs (\(m.model)), kernel \(m.kernel); PostgreSQL \(postgresVersion()). Herald: \(environment.heraldBinary).",
            "Dify peer: " + (peerVersions.map { "Tests/Support/bench_retention_peer.py (\($0))." } ?? "not run."),
            "Columns: `herald` = `herald run-task clean_messages` / `clean_workflow_runlogs_precise` as a child process with its "
                + "default batch sizing (its time is the task run's started_at → finished_at in herald.task_runs); `herald, fixed "
                + "batch` = the same with HERALD_RETENTION_MAX_BATCH_GROWTH=1 (batches never above the configured size, as the "
                + "references'); `SQL floor` = the same batched deletes "
                + "as one PL/pgSQL procedure in the server (keyset SELECT, deletes by id, COMMIT per batch); `dify peer` = Dify's "
                + "MessagesCleanService (billing off) and clean_workflow_runlogs_precise in Python (psycopg 3, its SQL). "
                + "Every column runs alone on its own file copy of the same template database, after a CHECKPOINT; the rows "
                + "deleted are counted by a census of every table afterwards.",
        ]
    }

    private func machineJSON() -> BenchJSON {
        let m = BenchEnvironment.machine()
        return .object([
            ("cpus", .int(m.cpus)), ("model", .string(m.model)), ("kernel", .string(m.kernel)),
            ("postgres", .string(postgresVersion())), ("peer", peerVersions.map(BenchJSON.string) ?? .null),
        ])
    }

    private func postgresVersion() -> String {
        ((try? PostgresConnection(connInfo: environment.database).query("SHOW server_version"))?.rows.first?.first
            ?? nil) ?? "?"
    }

    private func progress(_ message: String) {
        FileHandle.standardError.write(Data("[retention] \(message)\n".utf8))
    }
}
