// herald-bench: the benchmark runner behind `make bench`. One subcommand per
// scenario plus `all`, which runs every scenario registered in `BenchRegistry`
// (add `schedules` there). Each scenario measures Herald beside a reference
// taken in the same run and prints both side by side; see docs/benchmarks.md.

import ArgumentParser
import Foundation

struct HeraldBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-bench",
        abstract: "Herald's benchmarks: each figure beside its reference, measured in the same run.",
        discussion: """
            Servers come from HERALD_TEST_REDIS_URL / HERALD_TEST_DATABASE_URL (or HERALD_REDIS_URL / \
            HERALD_DATABASE_URL); the Python peer from HERALD_TEST_PYTHON; the daemon binary from HERALD_BIN. \
            `make bench` sets them all.
            """,
        subcommands: [SourcesBench.self, SchedulesBench.self, RetentionBench.self, TriggersBench.self, AllBench.self]
    )
}

/// Options every scenario command shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Merge every figure into this JSON file (one object per scenario).")
    var json: String?
}

/// The scenarios `all` runs, in order, each with its default sizes.
enum BenchRegistry {
    static let scenarios: [(name: String, run: @Sendable (BenchEnvironment) throws -> ScenarioReport)] = [
        (SourcesScenario.name, { env in try SourcesScenario(environment: env, config: SourcesConfig()).run() }),
        (SchedulesScenario.name, { env in try SchedulesScenario(environment: env, config: SchedulesConfig()).run() }),
        (RetentionScenario.name, { env in try RetentionScenario(environment: env, config: RetentionConfig()).run() }),
        (TriggersScenario.name, { env in try TriggersScenario(environment: env, config: TriggersConfig()).run() }),
    ]

    /// Prints a report and merges its JSON.
    static func publish(_ report: ScenarioReport, json: String?) throws {
        print(report.render())
        if let json {
            try BenchJSON.merge(report.fullJSON, as: report.name, into: json)
            print("Figures merged into \(json) under \"\(report.name)\".")
        }
    }
}

struct SourcesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources",
        abstract: "Redis/NOTIFY → handler latency, sustained rate without loss, idle RSS."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Paced messages per consumer and source.")
    var messages = SourcesConfig().messages

    @Option(name: .long, help: "Microseconds between paced messages.")
    var intervalUs = 500

    @Option(name: .long, help: "Rounds the paced messages are split into (consumer order rotates).")
    var rounds = SourcesConfig().rounds

    @Option(name: .long, help: "Messages in the live flood and in the drain test.")
    var floodMessages = SourcesConfig().floodMessages

    @Option(name: .long, help: "Publisher connections in the flood.")
    var floodConnections = SourcesConfig().floodConnections

    @Option(name: .long, help: "PUBLISH commands per pipelined batch.")
    var pipeline = SourcesConfig().pipeline

    @Option(name: .long, help: "NOTIFYs committed in one transaction for the burst test.")
    var notifyBurst = SourcesConfig().notifyBurst

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPython = false

    func validate() throws {
        guard messages >= 1, intervalUs >= 1, rounds >= 1, rounds <= messages else {
            throw ValidationError("--messages, --interval-us and --rounds must be positive, rounds ≤ messages")
        }
        guard floodMessages >= 2, floodConnections >= 1, pipeline >= 1, notifyBurst >= 2 else {
            throw ValidationError("flood and burst sizes must be at least 2, connections and pipeline at least 1")
        }
    }

    func run() throws {
        var config = SourcesConfig()
        config.messages = messages
        config.interval = .microseconds(intervalUs)
        config.rounds = rounds
        config.floodMessages = floodMessages
        config.drainMessages = floodMessages
        config.floodConnections = floodConnections
        config.pipeline = pipeline
        config.notifyBurst = notifyBurst
        config.python = !noPython
        let env = try BenchEnvironment.load()
        try BenchRegistry.publish(SourcesScenario(environment: env, config: config).run(), json: common.json)
    }
}

struct TriggersBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "triggers",
        abstract: "Trigger refresh: due → queue lateness beside Dify's publisher, messages per hour, sweep query."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Subscriptions in the lateness data set.")
    var subscriptions = TriggersConfig().subscriptions

    @Option(name: .long, help: "Of those, due over one window.")
    var due = TriggersConfig().due

    @Option(name: .long, help: "Seconds the due instants spread over.")
    var window = TriggersConfig().windowSeconds

    @Option(name: .long, help: "Subscriptions in the sweep-query data set.")
    var sweepRows = TriggersConfig().sweepRows

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPython = false

    func validate() throws {
        guard subscriptions >= due, due >= 1, window >= 1, sweepRows >= 1_000 else {
            throw ValidationError("need subscriptions ≥ due ≥ 1, window ≥ 1 and sweep-rows ≥ 1000")
        }
    }

    func run() throws {
        var config = TriggersConfig()
        config.subscriptions = subscriptions
        config.due = due
        config.windowSeconds = window
        config.sweepRows = sweepRows
        config.python = !noPython
        let env = try BenchEnvironment.load()
        try BenchRegistry.publish(TriggersScenario(environment: env, config: config).run(), json: common.json)
    }
}

struct AllBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Run every scenario with its default sizes."
    )

    @OptionGroup var common: CommonOptions

    func run() throws {
        let env = try BenchEnvironment.load()
        for scenario in BenchRegistry.scenarios {
            try BenchRegistry.publish(scenario.run(env), json: common.json)
        }
    }
}

HeraldBench.main()
