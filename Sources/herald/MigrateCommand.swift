// `herald migrate [--demo] [--create-dify-tables] [--status]`: creates or upgrades the schema
// idempotently (a second run changes nothing) and, with --demo, loads the newcomer's demo. It
// names its target first, and refuses a database without Dify's tables unless asked to create
// Herald's look-alikes of them (a trial or test database): pointed at the wrong database by
// mistake, it changes nothing.

import ArgumentParser
import HeraldIO
import HeraldRuntime
import HeraldTasks

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract:
            "Create or upgrade the schema: Herald's tables and the NOTIFY triggers on Dify's (and Dify's tables, when asked)."
    )

    @Flag(
        name: .long,
        help: "Also load a small demo (a tenant, an app, two schedule plans); implies --create-dify-tables.")
    var demo = false

    @Flag(
        name: .long,
        help: "Create Herald's look-alikes of Dify's tables where they are missing (a trial or test database).")
    var createDifyTables = false

    @Flag(name: .long, help: "List the applied and pending migrations of the target; change nothing.")
    var status = false

    /// The Dify tables whose absence means "not Dify's database".
    static let coreDifyTables = ["tenants", "apps", "app_triggers", "workflow_schedule_plans"]

    func run() throws {
        let settings = try CLI.settings()
        print("target: \(settings.database.redacted)")
        do {
            let conn = try PostgresConnection(connInfo: settings.database)
            if status {
                let applied = Set(try Migrator.appliedVersions(conn))
                for m in Migrations.all.sorted(by: { $0.version < $1.version }) {
                    print("\(applied.contains(m.version) ? "applied" : "pending") \(m.version) \(m.name)")
                }
                let ahead = applied.filter { $0 > Migrations.latestVersion }.sorted()
                for v in ahead { print("unknown \(v) (applied by a newer Herald)") }
                return
            }
            if !(createDifyTables || demo) {
                let missing = try Self.coreDifyTables.filter { table in
                    try conn.query("SELECT to_regclass($1) IS NULL", ["public." + table]).rows.first?[0] == "t"
                }
                if !missing.isEmpty {
                    CLI.fail(
                        "migrate: the target has no \(missing.joined(separator: ", ")): is it Dify's database? "
                            + "Point Herald at it (DB_* or HERALD_DATABASE_URL), or pass --create-dify-tables "
                            + "to create Herald's look-alikes of Dify's tables (a trial or test database)",
                        code: 1)
                }
            }
            let report = try Migrator.migrate(conn)
            if report.applied.isEmpty {
                print("schema up to date (version \(Migrations.latestVersion))")
            } else {
                for m in report.applied { print("applied \(m)") }
            }
            if demo {
                let n = try DemoData.load(conn)
                print(n > 0 ? "demo loaded: \(n) schedule plans" : "demo already present")
            }
        } catch {
            CLI.fail("migrate: \(error)", code: 1)
        }
    }
}
