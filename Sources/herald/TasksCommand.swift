// `herald tasks`: what this deployment would run, and when. It reads the topology
// and the environment exactly as the daemon does (LOG_TZ, CELERY_BEAT_SCHEDULER_TIME,
// the ENABLE_* flags with Dify's defaults), so an operator can check a change to
// either before restarting anything.

import ArgumentParser
import Foundation
import HeraldCore
import HeraldRuntime

/// `herald tasks [--topology FILE]`.
struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List every task: how it runs, its trigger, schedule, queue, dependencies and enable settings.",
        discussion: """
            RUNS: native (Herald's own implementation; "native (service)" runs continuously in \
            the daemon), celery (Herald enqueues Dify's own Celery task at each tick, once per \
            tick across instances) or off. TRIGGER: cron (a crontab in LOG_TZ), interval (every \
            N minutes, at multiples of N since the Unix epoch), events (an enabled route of the \
            topology), chain (another task depends on it, so triggering that task runs this one \
            first). SCHEDULE is resolved from the environment: {day} becomes \
            CELERY_BEAT_SCHEDULER_TIME and interval settings apply. QUEUE is the Celery queue \
            Dify's task goes to for celery, Herald's queue otherwise. ENABLED says whether the \
            task fires here: it reads the ENABLE_* settings with Dify's defaults (a HERALD_ \
            prefixed name overrides Dify's for Herald alone) and names the settings that turn \
            a task off; an off task is never enabled. SETTINGS lists the enable settings with \
            Dify's defaults. A bad setting value exits with status 2 naming the key.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The topology file (default: HERALD_TOPOLOGY, else \(TopologyFile.defaultPath)).", valueName: "file"))
    var topology: String?

    func run() throws {
        let command = "herald tasks"
        let resolved = try TopologyFile.resolve(TopologyFile.path(self.topology), command: command)
        let settings = TaskSettings(ProcessInfo.processInfo.environment)
        let rows: [[String]]
        do throws(TaskRowError) {
            let zone: CronZone
            do { zone = try settings.logTimeZone() } catch { throw .setting(error) }
            rows = try resolved.topology.graph.order.map { name throws(TaskRowError) in
                try Self.row(resolved.topology.task(name)!, resolved: resolved, settings: settings, zone: zone)
            }
        } catch {
            throw TopologyFile.fail(command, error.description, code: 2)
        }
        print(
            Self.table(
                header: ["TASK", "RUNS", "TRIGGER", "SCHEDULE", "QUEUE", "DEPENDS ON", "ENABLED", "SETTINGS"],
                rows: rows))
    }

    /// One line of the table.
    static func row(
        _ task: TaskDescriptor, resolved: ResolvedTopology, settings: TaskSettings, zone: CronZone
    ) throws(TaskRowError) -> [String] {
        let topology = resolved.topology
        let mode = resolved.mode(task.name)
        let service = resolved.isService(task.name)
        var triggers: [String] = []
        if service {
            triggers.append("timers")
        } else {
            switch task.schedule {
            case .cron?: triggers.append("cron")
            case .every?: triggers.append("interval")
            case nil: break
            }
        }
        if topology.routes(to: task.name).contains(where: \.enabled) { triggers.append("events") }
        if !topology.dependents(of: task.name).isEmpty { triggers.append("chain") }

        var schedule: String
        do {
            schedule =
                try task.schedule.map { s throws(TaskScheduleError) in try s.resolve(settings, zone: zone).description }
                ?? "-"
        } catch {
            throw .schedule(task: task.name, error)
        }
        if service {
            schedule =
                task.name == .triggerProviderRefresh
                ? "each subscription's due instant; sweep every HERALD_SWEEP_INTERVAL"
                : "each plan's own; sweep every HERALD_SWEEP_INTERVAL"
        }
        let off: [EnableSetting]
        do { off = try task.disablingSettings(settings) } catch { throw .setting(error) }
        let enabled: String
        if mode == .off {
            enabled = "no (run: off)"
        } else {
            enabled = off.isEmpty ? "yes" : "no (" + off.map(\.key).joined(separator: ", ") + ")"
        }
        let dependencies = task.dependencies.isEmpty ? "-" : task.dependencies.map(\.rawValue).joined(separator: ", ")
        let queue = mode == .celery ? (task.celery?.queue ?? task.queue) : task.queue
        let runs = service ? "native (service)" : mode.rawValue
        let enableSettings =
            task.enabledBy.isEmpty
            ? "-" : task.enabledBy.map { "\($0.key) (default \($0.defaultValue))" }.joined(separator: ", ")
        return [
            task.name.rawValue, runs, triggers.isEmpty ? "request" : triggers.joined(separator: "+"), schedule, queue,
            dependencies, enabled, enableSettings,
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
