// `herald tasks`: what this deployment would run, and when. It reads the topology
// and the environment exactly as the daemon does (LOG_TZ, CELERY_BEAT_SCHEDULER_TIME,
// the ENABLE_* flags with Dify's defaults), so an operator can check a change to
// either before restarting anything.

import ArgumentParser
import Foundation
import HeraldCore

/// `herald tasks [--topology FILE]`.
struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List tasks with trigger, schedule, queue, dependencies and whether they are enabled.",
        discussion: """
            TRIGGER: cron (a crontab in LOG_TZ), interval (every N minutes), events (an enabled \
            route of the topology), chain (another task depends on it, so triggering that task \
            runs this one first). SCHEDULE is resolved from the environment: {day} becomes \
            CELERY_BEAT_SCHEDULER_TIME and interval settings apply. ENABLED reads the ENABLE_* \
            settings with Dify's defaults and names the settings that turn a task off. A bad \
            setting value exits with status 2 naming the key.
            """
    )

    @Option(name: .long, help: ArgumentHelp(
        "The topology file (default: HERALD_TOPOLOGY, else \(TopologyFile.defaultPath)).", valueName: "file"))
    var topology: String?

    func run() throws {
        let command = "herald tasks"
        let topology = try TopologyFile.load(TopologyFile.path(self.topology), command: command)
        let settings = TaskSettings(ProcessInfo.processInfo.environment)
        let rows: [[String]]
        do throws(TaskRowError) {
            let zone: CronZone
            do { zone = try settings.logTimeZone() } catch { throw .setting(error) }
            rows = try topology.graph.order.map { name throws(TaskRowError) in
                try Self.row(topology.task(name)!, topology: topology, settings: settings, zone: zone)
            }
        } catch {
            throw TopologyFile.fail(command, error.description, code: 2)
        }
        print(Self.table(header: ["TASK", "TRIGGER", "SCHEDULE", "QUEUE", "DEPENDS ON", "ENABLED"], rows: rows))
    }

    /// One line of the table.
    static func row(
        _ task: TaskDescriptor, topology: Topology, settings: TaskSettings, zone: CronZone
    ) throws(TaskRowError) -> [String] {
        var triggers: [String] = []
        switch task.schedule {
        case .cron?: triggers.append("cron")
        case .every?: triggers.append("interval")
        case nil: break
        }
        if topology.routes(to: task.name).contains(where: \.enabled) { triggers.append("events") }
        if !topology.dependents(of: task.name).isEmpty { triggers.append("chain") }

        let schedule: String
        do {
            schedule = try task.schedule.map { s throws(TaskScheduleError) in try s.resolve(settings, zone: zone).description }
                ?? "-"
        } catch {
            throw .schedule(task: task.name, error)
        }
        let off: [EnableSetting]
        do { off = try task.disablingSettings(settings) } catch { throw .setting(error) }
        let enabled = off.isEmpty ? "yes" : "no (" + off.map(\.key).joined(separator: ", ") + ")"
        let dependencies = task.dependencies.isEmpty ? "-" : task.dependencies.map(\.rawValue).joined(separator: ", ")
        return [
            task.name.rawValue, triggers.isEmpty ? "request" : triggers.joined(separator: "+"), schedule, task.queue,
            dependencies, enabled,
        ]
    }

    /// Left-aligned columns separated by two spaces.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// Why a task's row cannot be computed from the environment.
enum TaskRowError: Error, CustomStringConvertible {
    /// A setting the schedule reads is invalid.
    case schedule(task: TaskName, TaskScheduleError)
    /// An enable setting is not a boolean.
    case setting(TaskSettingError)

    var description: String {
        switch self {
        case .schedule(_, .setting(let error)): return error.description
        case .schedule(let task, let error): return "task '\(task)': \(error)"
        case .setting(let error): return error.description
        }
    }
}
