// `herald publish schedule ID [--run-now]`: publishes a schedule event exactly
// as Dify's API would, for operators and tests.

import ArgumentParser
import HeraldCore
import HeraldIO
import HeraldRuntime

struct PublishCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish an event, as the platform API would.",
        subcommands: [PublishSchedule.self]
    )
}

struct PublishSchedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract:
            "Publish {\"schedule_id\": ID} on task_schedule_events (re-read the plan; --run-now fires it once now)."
    )

    @Argument(help: "The workflow_schedule_plans id (a UUID).")
    var id: String

    @Flag(name: .long, help: "Also fire the plan once, now.")
    var runNow = false

    func validate() throws {
        guard UUIDText.isValid(id) else { throw ValidationError("ID must be a UUID, got \"\(id)\"") }
    }

    func run() throws {
        let settings = try CLI.settings()
        var payload = "{\"schedule_id\":\"\(UUIDText.normalized(id))\""
        if runNow { payload += ",\"run_now\":true" }
        payload += "}"
        do {
            let client = try RedisClient(endpoint: settings.redis)
            let reply = try client.command(["PUBLISH", Channels.scheduleEvents, payload])
            guard let n = reply.integer else { CLI.fail("PUBLISH failed: \(reply)", code: 1) }
            print("published to \(Channels.scheduleEvents) (\(n) subscriber\(n == 1 ? "" : "s")): \(payload)")
        } catch {
            CLI.fail(error.description, code: 1)
        }
    }
}
