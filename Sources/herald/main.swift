// The `herald` executable: argument parsing and subcommands only. Everything
// else lives in the library targets. Exit codes: 0 ok, 1 failure,
// 2 bad usage or bad input, so ArgumentParser's usage code 64 becomes 2.

import ArgumentParser
import Foundation
import HeraldRuntime

struct Herald: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: Dify's scheduled tasks, event-driven.",
        discussion: "Settings come from the environment (see docs/configuration.md).",
        version: HeraldVersion.string,
        subcommands: [
            RunCommand.self, MigrateCommand.self, PublishCommand.self, StatusCommand.self, CronCommand.self,
            TasksCommand.self, TopologyCommand.self, RunTaskCommand.self, RunsCommand.self, FiresCommand.self,
            PlanCommand.self, QuarantineCommand.self,
        ]
    )
}

do {
    var command = try Herald.parseAsRoot()
    try command.run()
} catch {
    let code = Herald.exitCode(for: error)
    if code == .validationFailure {
        let message = Herald.fullMessage(for: error)
        FileHandle.standardError.write(Data("herald: \(message)\n".utf8))
        exit(2)
    }
    Herald.exit(withError: error)
}
