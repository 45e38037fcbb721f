// `herald run`: the daemon in the foreground until SIGTERM or SIGINT.

import ArgumentParser
import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import Logging

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon in the foreground (SIGTERM/SIGINT stop it, SIGHUP reloads the topology)."
    )

    @Option(name: .long, help: "Topology file (default: HERALD_TOPOLOGY or topology/default.json).")
    var topology: String?

    func run() throws {
        var settings = try CLI.settings()
        if let t = topology { settings.topologyPath = t }
        // Task settings too stop start-up when invalid (the topology's own problems are the daemon's
        // to report: it then runs without tasks).
        let file = FileManager.default.contents(atPath: settings.topologyPath).flatMap { try? Topology.load(json: $0) }
        if let problem = TaskSettingsCheck.problem(environment: ProcessInfo.processInfo.environment, topology: file) {
            CLI.fail(problem, code: 2)
        }
        HeraldLogHandler.bootstrap(format: settings.logFormat, level: settings.logLevel)
        let logger = Logger(label: "herald")
        let loop: EventLoop
        do { loop = try EventLoop() } catch { CLI.fail(error.description, code: 1) }
        let daemon = Daemon(settings: settings, loop: loop, logger: logger)
        daemon.onStopped = { loop.stop() }
        loop.start()
        let started = StartResult()
        loop.execute {
            do { try daemon.start() } catch {
                started.error = "\(error)"
                loop.stop()
            }
        }
        loop.waitUntilStopped()
        if let e = started.error { CLI.fail("cannot start: \(e)", code: 1) }
        if let problem = daemon.fatalProblem { CLI.fail(problem, code: 1) }
    }
}

/// Carries a start-up failure from the loop thread back to main.
final class StartResult: @unchecked Sendable {
    var error: String?
}
