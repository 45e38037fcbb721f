// Read-only views of what Herald recorded, for an operator who would otherwise need SQL:
// `herald runs [TASK]` (task runs), `herald fires [PLAN]` (schedule fires and whether they
// reached the broker), `herald plan show ID` (a plan, its trigger, its quarantine and last
// fires), `herald plan pause|resume ID` and `herald quarantine list|release ID`. Only pause,
// resume and release write, each in Herald's own tables, and announce the plan, so running
// daemons re-read it at once.

import ArgumentParser
import Foundation
import HeraldIO
import HeraldRuntime

/// One connection to the configured database, or exit 1 naming the target.
private func connect() -> PostgresConnection {
    let settings: Settings
    do {
        settings = try Settings.load(from: ProcessInfo.processInfo.environment)
    } catch {
        CLI.fail(error.description, code: 2)
    }
    do { return try PostgresConnection(connInfo: settings.database) } catch {
        CLI.fail("cannot connect to \(settings.database.redacted): \(error)", code: 1)
    }
}

/// Runs `sql` and prints its rows as a table with `header`; "(none)" when empty.
private func printQuery(_ c: PostgresConnection, header: [String], _ sql: String, _ params: [String?]) {
    do {
        let rows = try c.query(sql, params).rows.map { $0.map { StatusCommand.printable($0 ?? "-") } }
        print(rows.isEmpty ? "(none)" : TasksCommand.table(header: header, rows: rows))
    } catch {
        CLI.fail("\(error)", code: 1)
    }
}

/// Runs `sql`, which must change one row of Herald's tables about `plan` (else exit 1: "plan …
/// `unchanged`"), announces the plan as changed, so every daemon re-reads (and re-arms or
/// disarms) it now, and prints "`done` <plan>".
private func changeOne(
    _ c: PostgresConnection, _ plan: String, _ sql: String, _ params: [String?], unchanged: String, done: String
) throws {
    let r = try c.query(sql, params)
    guard r.affected == 1 else { CLI.fail("plan \(plan) \(unchanged)", code: 1) }
    try c.query(
        "SELECT pg_notify('herald_events', json_build_object('table', 'workflow_schedule_plans', 'op', 'UPDATE', 'id', $1::text)::text)",
        [plan])
    print("\(done) \(plan)")
}

/// A canonical lower-case UUID, or exit 2.
private func uuid(_ text: String, _ what: String) -> String {
    guard let u = UUID(uuidString: text) else { CLI.fail("\(what) must be a UUID, got \"\(text)\"", code: 2) }
    return u.uuidString.lowercased()
}

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "The latest task runs (herald.task_runs), newest first.")

    @Argument(help: "Only this task (e.g. clean_messages).")
    var task: String?

    @Option(name: .long, help: "How many runs.")
    var limit = 20

    func run() throws {
        let c = connect()
        printQuery(
            c, header: ["RUN", "TASK", "CAUSE", "STATUS", "STARTED", "SECONDS", "ERROR"],
            """
            SELECT run_id, task, cause || CASE WHEN dry_run THEN ' (dry run)' ELSE '' END, status,
                   to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   coalesce(round(extract(epoch from finished_at - started_at)::numeric, 3)::text, '-'),
                   coalesce(left(error, 120), '')
              FROM herald.task_runs WHERE $1::text IS NULL OR task = $1
             ORDER BY started_at DESC LIMIT $2
            """, [task, String(max(1, min(limit, 10_000)))])
    }
}

struct FiresCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fires",
        abstract: "The latest schedule fires (herald.schedule_fire_log), newest first; ENQUEUED is empty until sent.")

    @Argument(help: "Only this plan (workflow_schedule_plans.id).")
    var plan: String?

    @Option(name: .long, help: "How many fires.")
    var limit = 20

    func run() throws {
        let id = plan.map { uuid($0, "PLAN") }
        let c = connect()
        printQuery(
            c, header: ["PLAN", "SCHEDULED", "KIND", "VIA", "CLAIMED BY", "ENQUEUED", "TASK ID"],
            """
            SELECT plan_id::text, to_char(scheduled_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), kind, via, claimed_by,
                   coalesce(to_char(enqueued_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'), ''), task_id::text
              FROM herald.schedule_fire_log WHERE $1::uuid IS NULL OR plan_id = $1::uuid
             ORDER BY scheduled_at DESC LIMIT $2
            """, [id, String(max(1, min(limit, 10_000)))])
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Look at, pause or resume one schedule plan.",
        subcommands: [Show.self, Pause.self, Resume.self])

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pause",
            abstract: "Stop firing a plan until `herald plan resume` (Dify's plan and trigger are left as they are).")

        @Argument(help: "workflow_schedule_plans.id")
        var id: String

        @Option(name: .long, help: "Why (shown by `plan show`).")
        var note = ""

        func run() throws {
            let plan = uuid(id, "ID")
            let c = connect()
            do {
                let exists = try c.query("SELECT 1 FROM workflow_schedule_plans WHERE id = $1::uuid", [plan])
                guard !exists.rows.isEmpty else { CLI.fail("no plan \(plan) in workflow_schedule_plans", code: 1) }
                let who =
                    (ProcessInfo.processInfo.environment["USER"] ?? "operator") + "@" + ProcessInfo.processInfo.hostName
                try changeOne(
                    c, plan,
                    "INSERT INTO herald.schedule_paused (plan_id, paused_by, note) VALUES ($1::uuid, $2, $3) ON CONFLICT DO NOTHING",
                    [plan, who, note], unchanged: "is already paused", done: "paused")
            } catch {
                CLI.fail("\(error)", code: 1)
            }
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Fire a paused plan again: an overdue one fires once at once, then at its next time.")

        @Argument(help: "workflow_schedule_plans.id")
        var id: String

        func run() throws {
            let plan = uuid(id, "ID")
            let c = connect()
            do {
                try changeOne(
                    c, plan, "DELETE FROM herald.schedule_paused WHERE plan_id = $1::uuid", [plan],
                    unchanged: "is not paused", done: "resumed")
            } catch {
                CLI.fail("\(error)", code: 1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "A plan, its trigger, its quarantine (if any) and its latest fires.")

        @Argument(help: "workflow_schedule_plans.id")
        var id: String

        func run() throws {
            let plan = uuid(id, "ID")
            let c = connect()
            print("plan")
            printQuery(
                c, header: ["ID", "CRON", "ZONE", "NEXT RUN (UTC)", "TRIGGER", "APP", "TENANT"],
                """
                SELECT p.id::text, p.cron_expression, p.timezone, coalesce(p.next_run_at::text, '-'),
                       coalesce(t.status, '(no trigger)'), p.app_id::text, p.tenant_id::text
                  FROM workflow_schedule_plans p
                  LEFT JOIN app_triggers t ON t.tenant_id = p.tenant_id AND t.app_id = p.app_id AND t.node_id = p.node_id
                       AND t.trigger_type = 'trigger-schedule'
                 WHERE p.id = $1::uuid
                """, [plan])
            print("\npaused")
            printQuery(
                c, header: ["SINCE", "BY", "NOTE"],
                "SELECT paused_at::text, paused_by, note FROM herald.schedule_paused WHERE plan_id = $1::uuid", [plan])
            print("\nquarantine")
            printQuery(
                c, header: ["SINCE", "OCCURRENCES", "ERROR"],
                "SELECT first_seen_at::text, occurrences::text, error FROM herald.schedule_quarantine WHERE plan_id = $1::uuid",
                [plan])
            print("\nlatest fires")
            printQuery(
                c, header: ["SCHEDULED", "KIND", "VIA", "CLAIMED BY", "ENQUEUED"],
                """
                SELECT scheduled_at::text, kind, via, claimed_by, coalesce(enqueued_at::text, '')
                  FROM herald.schedule_fire_log WHERE plan_id = $1::uuid ORDER BY scheduled_at DESC LIMIT 10
                """, [plan])
        }
    }
}

struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "Plans Herald skips because they cannot be computed.",
        subcommands: [List.self, Release.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every quarantined plan.")

        func run() throws {
            printQuery(
                connect(), header: ["PLAN", "CRON", "ZONE", "SINCE", "OCCURRENCES", "ERROR"],
                """
                SELECT plan_id::text, cron_expression, timezone, to_char(first_seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       occurrences::text, error
                  FROM herald.schedule_quarantine ORDER BY first_seen_at
                """, [])
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Release a plan from quarantine (it is tried again at once; if still bad, it returns).")

        @Argument(help: "workflow_schedule_plans.id")
        var id: String

        func run() throws {
            let plan = uuid(id, "ID")
            let c = connect()
            do {
                try changeOne(
                    c, plan, "DELETE FROM herald.schedule_quarantine WHERE plan_id = $1::uuid", [plan],
                    unchanged: "is not in quarantine", done: "released")
            } catch {
                CLI.fail("\(error)", code: 1)
            }
        }
    }
}
