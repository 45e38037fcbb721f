// The sizes of the `schedules` scenario and `herald-bench schedules`, which runs it
// alone with the sizes adjustable for quick checks (quote only figures from the defaults).

import ArgumentParser

/// The sizes of one `schedules` run. Fixed defaults keep runs comparable.
struct SchedulesConfig: Sendable {
    var sameSecondPlans = 10_000
    var sameSecondRounds = 3
    var atOncePlans = 100_000
    /// Runs of (b) for Herald and the floor (the other columns run once).
    var atOnceRounds = 2
    var runNowEvents = 1_000
    var runNowWarmup = 50
    var runNowInterval: Duration = .milliseconds(5)
    var sweepSizes = [10_000, 100_000, 1_000_000]
    var sweepDue = 100
    var sweepRuns = 11
    var floorBatch = 2_000
    var peerBatch = 100
    /// The peer's tick in (b) is stopped after this long (its rate is steady; 100,000 would take minutes).
    var peerMaxSeconds = 30.0
    var warmupPlans = 200
    var rssSettle: Duration = .seconds(3)
    var python = true

    var json: BenchJSON {
        .object([
            ("same_second_plans", .int(sameSecondPlans)), ("same_second_rounds", .int(sameSecondRounds)),
            ("at_once_plans", .int(atOncePlans)), ("at_once_rounds", .int(atOnceRounds)),
            ("run_now_events", .int(runNowEvents)), ("run_now_warmup", .int(runNowWarmup)),
            ("run_now_interval_ns", .int(runNowInterval.nanoseconds)),
            ("sweep_sizes", .array(sweepSizes.map(BenchJSON.int))),
            ("sweep_due", .int(sweepDue)), ("sweep_runs", .int(sweepRuns)), ("floor_batch", .int(floorBatch)),
            ("peer_batch", .int(peerBatch)), ("peer_max_seconds", .double(peerMaxSeconds)),
            ("warmup_plans", .int(warmupPlans)),
            ("rss_settle_ns", .int(rssSettle.nanoseconds)),
        ])
    }
}

struct SchedulesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "Schedule fires: lateness, fires/s, run_now → queue, sweep query, RSS at 1M plans."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Plans due in the same second, per round (a).")
    var sameSecond = SchedulesConfig().sameSecondPlans

    @Option(name: .long, help: "Rounds of (a).")
    var rounds = SchedulesConfig().sameSecondRounds

    @Option(name: .long, help: "Plans due at once (b); also the size of the data set of (a)–(c).")
    var atOnce = SchedulesConfig().atOncePlans

    @Option(name: .long, help: "run_now events (c).")
    var runNow = SchedulesConfig().runNowEvents

    @Option(
        name: .long, parsing: .upToNextOption, help: "Plan counts for the sweep query (d); the largest is used for (e)."
    )
    var sweepSizes = SchedulesConfig().sweepSizes

    @Option(name: .long, help: "Seconds after which the Dify poller's tick in (b) is stopped.")
    var peerMaxSeconds = SchedulesConfig().peerMaxSeconds

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPython = false

    func validate() throws {
        guard sameSecond >= 1, rounds >= 1, atOnce >= sameSecond * rounds, atOnce > SchedulesConfig().warmupPlans,
            runNow >= 1, !sweepSizes.isEmpty, sweepSizes.allSatisfy({ $0 > SchedulesConfig().sweepDue })
        else {
            throw ValidationError("sizes must be positive, --at-once ≥ --same-second × --rounds, sweep sizes > 100")
        }
    }

    func run() throws {
        var config = SchedulesConfig()
        config.sameSecondPlans = sameSecond
        config.sameSecondRounds = rounds
        config.atOncePlans = atOnce
        config.runNowEvents = runNow
        config.sweepSizes = sweepSizes
        config.peerMaxSeconds = peerMaxSeconds
        config.python = !noPython
        let env = try BenchEnvironment.load()
        try BenchRegistry.publish(SchedulesScenario(environment: env, config: config).run(), json: common.json)
    }
}
