// `herald topology check [FILE]`: validate a topology file without starting the
// daemon, so an operator (or CI) sees the first error, with the offending name,
// before a deploy or a SIGHUP. Also the shared file loading `herald tasks` uses.

import ArgumentParser
import Foundation
import HeraldCore
import HeraldRuntime

/// `herald topology …`: topology file tools.
struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Inspect topology files (sources, routes, queues, tasks; see docs/topology.md).",
        subcommands: [Check.self]
    )

    /// `herald topology check [FILE]`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate a topology file.",
            discussion: """
                Prints "ok: N tasks, M queues", how each task runs (native, celery or off) and the \
                resolved routing table (route, source, what it matches, task, how the task handles \
                the event) when the file is valid. Otherwise prints the first error on standard \
                error, naming the offending task, queue, source or route (a dependency cycle, an \
                unknown task or queue, a bad cron, a duplicate name, a task or route without a \
                handler …) and exits with status 2; a file that cannot be read exits with status 1.
                """
        )

        @Argument(
            help: ArgumentHelp(
                "The topology file (default: HERALD_TOPOLOGY, else \(TopologyFile.defaultPath)).", valueName: "file"))
        var file: String?

        func run() throws {
            let path = TopologyFile.path(file)
            let resolved = try TopologyFile.resolve(path, command: "herald topology check")
            let topology = resolved.topology
            print("ok: \(topology.tasks.count) tasks, \(topology.queues.count) queues")
            print("")
            let runs = topology.graph.order.map { name in
                [name.rawValue, resolved.mode(name).rawValue, resolved.handling(name)]
            }
            print(TasksCommand.table(header: ["TASK", "RUNS", "HANDLER"], rows: runs))
            print("")
            if topology.routes.isEmpty {
                print("no routes")
            } else {
                print(
                    TasksCommand.table(
                        header: ["ROUTE", "SOURCE", "MATCH", "TASK", "HANDLED BY"],
                        rows: resolved.routingTable))
            }
        }
    }
}

/// Finding, reading and validating a topology file for the subcommands.
enum TopologyFile {
    /// Where the topology is when neither an argument nor `HERALD_TOPOLOGY` says.
    static let defaultPath = "topology/default.json"

    /// `explicit`, else `HERALD_TOPOLOGY`, else ``defaultPath``.
    static func path(_ explicit: String?) -> String {
        if let explicit { return explicit }
        if let fromEnvironment = ProcessInfo.processInfo.environment["HERALD_TOPOLOGY"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return defaultPath
    }

    /// Reads and validates `path`; prints `<command>: <path>: <reason>` on stderr and
    /// throws exit status 1 when the file cannot be read, 2 when it is invalid.
    static func load(_ path: String, command: String) throws(ExitCode) -> Topology {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw fail(command, "\(path): \(reason)", code: 1)
        }
        do {
            return try Topology.load(json: bytes)
        } catch {
            throw fail(command, "\(path): \(error)", code: 2)
        }
    }

    /// ``load(_:command:)``, then resolves how every task runs; a task or route without a
    /// handler in this build exits with status 2, naming the file and the route or task.
    static func resolve(_ path: String, command: String) throws(ExitCode) -> ResolvedTopology {
        let topology = try load(path, command: command)
        do {
            return try HeraldTaskCatalog.resolve(topology, path: path)
        } catch {
            throw fail(command, error.description, code: 2)
        }
    }

    /// Prints `<command>: <message>` on stderr; the caller throws the returned status.
    static func fail(_ command: String, _ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("\(command): \(message)\n".utf8))
        return ExitCode(code)
    }
}
