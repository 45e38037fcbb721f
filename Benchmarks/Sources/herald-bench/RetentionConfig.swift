// The sizes of the `retention` scenario and `herald-bench retention`, which runs it
// alone with the sizes adjustable for quick checks (quote only figures from the defaults).

import ArgumentParser

/// The sizes and settings of one `retention` run. Fixed defaults keep runs comparable.
struct RetentionConfig: Sendable {
    /// Expired messages (created more than 30 days ago), each with its children.
    var messages = 1_000_000
    /// Messages that must stay (created within the last 30 days), with the same children; nil = messages / 10.
    var recentMessages: Int?
    /// Expired messages of the smaller data set on which Herald and the peer run again with their default pauses.
    var pausedMessages = 100_000
    /// Ended workflow runs older than 30 days, each with its cascade.
    var runs = 100_000
    /// Runs that must stay: ended within the last 30 days (nil = runs / 10) and older than 30 days but not
    /// ended (running, paused, scheduled; nil = runs / 20).
    var recentRuns: Int?
    var unfinishedRuns: Int?
    /// SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE (Dify's default) for every column.
    var messageBatch = 1_000
    /// WORKFLOW_LOG_CLEANUP_BATCH_SIZE (Dify's default) for every column.
    var runBatch = 100
    /// SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL of the runs with pauses (Dify's default, ms).
    var pauseMaxIntervalMs = 200
    var retentionDays = 30
    var tenants = 10
    var apps = 100
    var python = true
    var pauses = true
    var includeMessages = true
    var includeRuns = true

    var keptMessages: Int { recentMessages ?? messages / 10 }
    var keptPausedMessages: Int { recentMessages.map { $0 * pausedMessages / max(1, messages) } ?? pausedMessages / 10 }
    var keptRecentRuns: Int { recentRuns ?? runs / 10 }
    var keptUnfinishedRuns: Int { unfinishedRuns ?? runs / 20 }

    var json: BenchJSON {
        .object([
            ("messages", .int(messages)), ("recent_messages", .int(keptMessages)),
            ("paused_messages", .int(pausedMessages)),
            ("recent_paused_messages", .int(keptPausedMessages)), ("runs", .int(runs)),
            ("recent_runs", .int(keptRecentRuns)),
            ("unfinished_runs", .int(keptUnfinishedRuns)), ("message_batch", .int(messageBatch)),
            ("run_batch", .int(runBatch)),
            ("pause_max_interval_ms", .int(pauseMaxIntervalMs)), ("retention_days", .int(retentionDays)),
            ("tenants", .int(tenants)), ("apps", .int(apps)),
        ])
    }
}

struct RetentionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Deleting expired messages and workflow runs: rows/s, longest batch, peak RSS."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Expired messages (older than the retention), each with its child rows.")
    var messages = RetentionConfig().messages

    @Option(name: .long, help: "Recent messages that must stay (default: --messages / 10).")
    var recentMessages: Int?

    @Option(name: .long, help: "Expired messages of the data set for the runs with default pauses.")
    var pausedMessages = RetentionConfig().pausedMessages

    @Option(name: .long, help: "Ended workflow runs older than the retention, each with its cascade.")
    var runs = RetentionConfig().runs

    @Option(name: .long, help: "Recent ended runs that must stay (default: --runs / 10).")
    var recentRuns: Int?

    @Option(
        name: .long,
        help: "Old runs that are not ended (running, paused, scheduled) and must stay (default: --runs / 20).")
    var unfinishedRuns: Int?

    @Option(name: .long, help: "Messages per batch (SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE) for every column.")
    var messageBatch = RetentionConfig().messageBatch

    @Option(name: .long, help: "Runs per batch (WORKFLOW_LOG_CLEANUP_BATCH_SIZE) for every column.")
    var runBatch = RetentionConfig().runBatch

    @Option(name: .long, help: "Max pause between message batches, ms, for the runs with pauses.")
    var pauseMaxInterval = RetentionConfig().pauseMaxIntervalMs

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPython = false

    @Flag(name: .long, help: "Skip the runs with default pauses.")
    var noPauses = false

    @Flag(name: .long, help: "Only the messages part.")
    var onlyMessages = false

    @Flag(name: .long, help: "Only the workflow-runs part.")
    var onlyRuns = false

    func validate() throws {
        guard messages >= 1, runs >= 1, pausedMessages >= 1, messageBatch >= 1, runBatch >= 1, pauseMaxInterval >= 0
        else {
            throw ValidationError("sizes and batches must be positive, --pause-max-interval at least 0")
        }
        for v in [recentMessages, recentRuns, unfinishedRuns] {
            if let v, v < 0 { throw ValidationError("kept counts must be at least 0") }
        }
        guard !(onlyMessages && onlyRuns) else {
            throw ValidationError("--only-messages and --only-runs exclude each other")
        }
    }

    func run() throws {
        var config = RetentionConfig()
        config.messages = messages
        config.recentMessages = recentMessages
        config.pausedMessages = pausedMessages
        config.runs = runs
        config.recentRuns = recentRuns
        config.unfinishedRuns = unfinishedRuns
        config.messageBatch = messageBatch
        config.runBatch = runBatch
        config.pauseMaxIntervalMs = pauseMaxInterval
        config.python = !noPython
        config.pauses = !noPauses
        config.includeMessages = !onlyRuns
        config.includeRuns = !onlyMessages
        let env = try BenchEnvironment.load()
        try BenchRegistry.publish(RetentionScenario(environment: env, config: config).run(), json: common.json)
    }
}
