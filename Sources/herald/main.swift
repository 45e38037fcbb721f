// The `herald` executable: argument parsing and subcommands only. Everything
// else lives in the library targets.

import ArgumentParser

struct Herald: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: Dify's scheduled tasks, event-driven.",
        discussion: "Settings come from the environment (see docs/configuration.md).",
        subcommands: [RunCommand.self, PublishCommand.self, StatusCommand.self, CronCommand.self]
    )
}

Herald.main()
