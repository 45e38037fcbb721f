// `herald migrate [--demo]`: creates or upgrades the schema idempotently (a
// second run changes nothing) and, with --demo, loads the newcomer's demo.

import ArgumentParser
import HeraldIO
import HeraldRuntime
import HeraldTasks

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract:
            "Create or upgrade the schema: the Dify tables Herald needs (when absent), Herald's tables, the NOTIFY triggers."
    )

    @Flag(name: .long, help: "Also load a small demo (a tenant, an app, two schedule plans).")
    var demo = false

    func run() throws {
        let settings = try CLI.settings()
        do {
            let conn = try PostgresConnection(connInfo: settings.database)
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
