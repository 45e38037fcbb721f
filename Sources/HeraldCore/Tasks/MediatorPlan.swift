// The vocabulary between the mediator and whoever carries its plans out: the
// inputs it accepts (a tick, a request, a finished run) and the steps it answers
// with (run, wait, coalesce, skip, chain finished, reject). Keeping these plain
// values is what lets routing and dependency logic be tested with no server.

/// Identifies one run of one task, from the moment it is planned.
public struct TaskRunID: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The identifier as logged and published (`herald_task_status.run_id`).
    public let rawValue: String
    /// Wraps an identifier.
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// Identifies one chain: a target task and the dependencies it pulled in.
public struct ChainID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// A sequence number, unique within one mediator.
    public let value: UInt64
    /// Wraps a sequence number.
    public init(_ value: UInt64) { self.value = value }
    public static func < (a: ChainID, b: ChainID) -> Bool { a.value < b.value }
    public var description: String { "chain-\(value)" }
}

/// What the mediator is told.
public enum MediatorInput: Sendable, Hashable {
    /// The task's schedule fired (a cron or interval timer, or a routed event).
    /// Disabled tasks are skipped.
    case tick(TaskName)
    /// Someone asked for the task now (`herald run-task`); it runs even when its
    /// enable settings are off. `dryRun` propagates to every run of the chain.
    case request(TaskName, dryRun: Bool)
    /// The executor reports that a run it was told to start has ended.
    case finished(TaskName, runID: TaskRunID, outcome: TaskOutcome)
}

/// Why a run was planned.
public enum RunCause: Sendable, Hashable, CustomStringConvertible {
    /// Its schedule fired.
    case tick
    /// Someone requested it.
    case request
    /// A chain whose target is `target` needs it first.
    case dependency(of: TaskName)

    public var description: String {
        switch self {
        case .tick: return "tick"
        case .request: return "request"
        case .dependency(let target): return "dependency of \(target)"
        }
    }
}

/// A run the executor must start now.
public struct TaskRun: Sendable, Hashable {
    /// The task to run.
    public let task: TaskName
    /// The run's identifier; report the end with `.finished(task, runID:, outcome:)`.
    public let runID: TaskRunID
    /// The chain that planned the run.
    public let chain: ChainID
    /// Whether the run must change nothing.
    public let dryRun: Bool
    /// Why it runs.
    public let cause: RunCause

    /// A planned run.
    public init(task: TaskName, runID: TaskRunID, chain: ChainID, dryRun: Bool, cause: RunCause) {
        self.task = task
        self.runID = runID
        self.chain = chain
        self.dryRun = dryRun
        self.cause = cause
    }
}

/// Why a task will not run in a chain.
public enum SkipReason: Sendable, Hashable, CustomStringConvertible {
    /// Its enable settings are off (a tick of a disabled task, or a disabled
    /// dependency, which then does not hold back the tasks after it).
    case disabled
    /// A task it needs failed; `task` is the one that failed, however far upstream.
    case dependencyFailed(TaskName, reason: String)
    /// A task it needs was skipped by the executor (lock held elsewhere, shutdown).
    case dependencySkipped(TaskName, reason: String)

    public var description: String {
        switch self {
        case .disabled: return "disabled by its enable settings"
        case .dependencyFailed(let task, let reason): return "dependency \(task) failed: \(reason)"
        case .dependencySkipped(let task, let reason): return "dependency \(task) skipped: \(reason)"
        }
    }
}

/// Why an input was refused.
public enum MediatorRejection: Sendable, Hashable, CustomStringConvertible {
    /// The topology declares no such task.
    case unknownTask
    /// No active run has this identifier (already finished, or never planned).
    case unknownRun(TaskRunID)
    /// The run is still waiting for its dependencies; it cannot have finished.
    case notStarted(TaskRunID)

    public var description: String {
        switch self {
        case .unknownTask: return "unknown task"
        case .unknownRun(let id): return "no active run \(id)"
        case .notStarted(let id): return "run \(id) has not started"
        }
    }
}

/// One thing the executor must do or know.
public enum PlanStep: Sendable, Hashable {
    /// Start this run now (subject to its queue's concurrency limit).
    case run(TaskRun)
    /// A run was planned but waits until `forDependencies` succeed; a later
    /// `.finished` input turns it into `.run` or `.skipped`.
    case waiting(TaskName, runID: TaskRunID, forDependencies: [TaskName])
    /// The task is already planned (`running` true: already running) as `into`, in
    /// the same dry-run mode; this trigger joins that run instead of starting another.
    case coalesced(TaskName, into: TaskRunID, running: Bool)
    /// The task will not run; `runID` is set when a waiting run is dropped.
    case skipped(TaskName, runID: TaskRunID?, reason: SkipReason)
    /// The chain's target has finished (or was skipped); `outcome` is the target's.
    case chainFinished(ChainID, target: TaskName, outcome: TaskOutcome)
    /// The input was refused.
    case rejected(TaskName, MediatorRejection)
}

/// The mediator's answer to one input.
public struct MediatorPlan: Sendable, Hashable {
    /// The chain the input started, if it started one.
    public var chain: ChainID?
    /// What to do, in order.
    public var steps: [PlanStep]

    /// A plan of `steps`.
    public init(chain: ChainID? = nil, steps: [PlanStep] = []) {
        self.chain = chain
        self.steps = steps
    }

    /// The runs to start now, in order.
    public var runs: [TaskRun] {
        steps.compactMap { if case .run(let run) = $0 { return run } else { return nil } }
    }

    /// The tasks the plan skips, with their reasons.
    public var skipped: [(task: TaskName, reason: SkipReason)] {
        steps.compactMap {
            if case .skipped(let task, _, let reason) = $0 { return (task, reason) } else { return nil }
        }
    }
}
