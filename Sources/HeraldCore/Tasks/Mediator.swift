// The mediator decides what runs: given a tick, a request or a finished run and
// the runs already in flight, it returns a plan (run, wait, coalesce, skip). It is
// a pure state machine, no I/O, no clock, no threads: the executor feeds it inputs
// on one thread and carries out the plans, so every rule here is unit-tested.

/// Resolves triggers into ordered runs over the task graph.
///
/// Rules:
/// - Triggering a task runs its dependencies first (transitively), each after its
///   own dependencies have succeeded: a *chain*.
/// - At most one run of a task is planned at a time per dry-run mode; a trigger for a
///   task already planned or running *coalesces* into that run.
/// - A failed or skipped run skips every waiting run that needs it, with the reason.
/// - A tick of a disabled task is skipped; a request runs its target anyway. A
///   disabled dependency is skipped and does not hold back the tasks after it.
public struct Mediator: Sendable {
    /// A planned run, waiting or running.
    public struct ActiveRun: Sendable, Hashable {
        /// The task.
        public let task: TaskName
        /// The run's identifier.
        public let runID: TaskRunID
        /// Whether the run changes nothing.
        public let dryRun: Bool
        /// The chain that planned it.
        public let chain: ChainID
        /// Why it was planned.
        public let cause: RunCause
        /// True once the executor was told to start it.
        public internal(set) var isRunning: Bool
        /// Dependencies it still waits for (empty once running).
        public internal(set) var waitingFor: Set<TaskName>
        /// Chains whose target this run is.
        var targetOf: [ChainID]
    }

    private struct Key: Hashable {
        let task: TaskName
        let dryRun: Bool
    }

    /// The task graph in use (replaced by ``reload(graph:disabled:)``).
    public private(set) var graph: TaskGraph
    /// Tasks whose enable settings are off.
    public private(set) var disabled: Set<TaskName>
    private let runIDPrefix: String
    private var runs: [Key: ActiveRun] = [:]
    private var keysByRunID: [TaskRunID: Key] = [:]
    private var nextRun: UInt64 = 1
    private var nextChain: UInt64 = 1

    /// A mediator over `graph`. Run IDs are `runIDPrefix` plus a sequence number;
    /// give each instance its own prefix (e.g. its instance id) to keep them unique.
    public init(graph: TaskGraph, disabled: Set<TaskName> = [], runIDPrefix: String = "run-") {
        self.graph = graph
        self.disabled = disabled
        self.runIDPrefix = runIDPrefix
    }

    /// Uses a new graph and enable state (SIGHUP) for triggers from now on; runs
    /// already planned finish under the rules they were planned with.
    public mutating func reload(graph: TaskGraph, disabled: Set<TaskName>) {
        self.graph = graph
        self.disabled = disabled
    }

    /// Every planned run, waiting or running, in dependency order.
    public var activeRuns: [ActiveRun] {
        let sorted = graph.sorted(Set(runs.keys.map(\.task)))
        return sorted.flatMap { task in [false, true].compactMap { runs[Key(task: task, dryRun: $0)] } }
    }

    /// The planned run with identifier `runID`, if still active.
    public func activeRun(_ runID: TaskRunID) -> ActiveRun? { keysByRunID[runID].flatMap { runs[$0] } }

    /// Takes one input and returns what to do.
    public mutating func handle(_ input: MediatorInput) -> MediatorPlan {
        switch input {
        case .tick(let task):
            return trigger(task, dryRun: false, cause: .tick)
        case .request(let task, let dryRun):
            return trigger(task, dryRun: dryRun, cause: .request)
        case .finished(let task, let runID, let outcome):
            return finish(task, runID: runID, outcome: outcome)
        }
    }

    // MARK: Triggers

    private mutating func trigger(_ target: TaskName, dryRun: Bool, cause: RunCause) -> MediatorPlan {
        guard graph.contains(target) else { return MediatorPlan(steps: [.rejected(target, .unknownTask)]) }
        if cause == .tick, disabled.contains(target) {
            return MediatorPlan(steps: [.skipped(target, runID: nil, reason: .disabled)])
        }
        let chain = ChainID(nextChain)
        nextChain += 1

        // Which members are new, which join runs already planned, which are skipped.
        var fresh: Set<TaskName> = []
        var joined: Set<TaskName> = []
        var off: Set<TaskName> = []
        var stack: [(TaskName, isTarget: Bool)] = [(target, true)]
        while let (name, isTarget) = stack.popLast() {
            if fresh.contains(name) || joined.contains(name) || off.contains(name) { continue }
            if runs[Key(task: name, dryRun: dryRun)] != nil {
                joined.insert(name)
            } else if !isTarget, disabled.contains(name) {
                off.insert(name)
            } else {
                fresh.insert(name)
                stack.append(contentsOf: graph.dependencies(of: name).map { ($0, false) })
            }
        }

        var steps: [PlanStep] = []
        for name in graph.sorted(fresh.union(joined).union(off)) {
            let key = Key(task: name, dryRun: dryRun)
            if off.contains(name) {
                steps.append(.skipped(name, runID: nil, reason: .disabled))
            } else if let existing = runs[key], joined.contains(name) {
                steps.append(.coalesced(name, into: existing.runID, running: existing.isRunning))
            } else {
                let waitingFor = Set(graph.dependencies(of: name).filter { !off.contains($0) })
                let runID = TaskRunID(rawValue: "\(runIDPrefix)\(nextRun)")
                nextRun += 1
                let run = ActiveRun(
                    task: name, runID: runID, dryRun: dryRun, chain: chain,
                    cause: name == target ? cause : .dependency(of: target),
                    isRunning: waitingFor.isEmpty, waitingFor: waitingFor, targetOf: [])
                runs[key] = run
                keysByRunID[runID] = key
                steps.append(
                    waitingFor.isEmpty
                        ? .run(Self.taskRun(run))
                        : .waiting(name, runID: runID, forDependencies: graph.sorted(waitingFor)))
            }
        }
        runs[Key(task: target, dryRun: dryRun)]!.targetOf.append(chain)
        return MediatorPlan(chain: chain, steps: steps)
    }

    // MARK: Finished runs

    private mutating func finish(_ task: TaskName, runID: TaskRunID, outcome: TaskOutcome) -> MediatorPlan {
        guard let key = keysByRunID[runID], let run = runs[key], run.task == task else {
            return MediatorPlan(steps: [.rejected(task, .unknownRun(runID))])
        }
        guard run.isRunning else { return MediatorPlan(steps: [.rejected(task, .notStarted(runID))]) }
        var steps: [PlanStep] = []
        remove(key, outcome: outcome, into: &steps)
        switch outcome {
        case .succeeded:
            for dependent in waiters(on: task, dryRun: key.dryRun) {
                runs[dependent]!.waitingFor.remove(task)
                if runs[dependent]!.waitingFor.isEmpty {
                    runs[dependent]!.isRunning = true
                    steps.append(.run(Self.taskRun(runs[dependent]!)))
                }
            }
        case .failed(let reason):
            skipWaiters(on: task, dryRun: key.dryRun, reason: .dependencyFailed(task, reason: reason), into: &steps)
        case .skipped(let reason):
            skipWaiters(on: task, dryRun: key.dryRun, reason: .dependencySkipped(task, reason: reason), into: &steps)
        }
        return MediatorPlan(steps: steps)
    }

    /// Drops every run waiting (directly or transitively) on `task`, with `reason`.
    private mutating func skipWaiters(on task: TaskName, dryRun: Bool, reason: SkipReason, into steps: inout [PlanStep])
    {
        var queue = [task]
        while !queue.isEmpty {
            let upstream = queue.removeFirst()
            for dependent in waiters(on: upstream, dryRun: dryRun) {
                guard let run = runs[dependent] else { continue }
                steps.append(.skipped(run.task, runID: run.runID, reason: reason))
                remove(dependent, outcome: .skipped(reason: reason.description), into: &steps)
                queue.append(run.task)
            }
        }
    }

    /// Forgets a run and finishes the chains it was the target of.
    private mutating func remove(_ key: Key, outcome: TaskOutcome, into steps: inout [PlanStep]) {
        guard let run = runs.removeValue(forKey: key) else { return }
        keysByRunID[run.runID] = nil
        for chain in run.targetOf.sorted() {
            steps.append(.chainFinished(chain, target: run.task, outcome: outcome))
        }
    }

    /// Waiting runs (same dry-run mode) that still need `task`, in dependency order.
    private func waiters(on task: TaskName, dryRun: Bool) -> [Key] {
        let names = runs.values.filter { $0.dryRun == dryRun && !$0.isRunning && $0.waitingFor.contains(task) }
        return graph.sorted(names.map(\.task)).map { Key(task: $0, dryRun: dryRun) }
    }

    private static func taskRun(_ run: ActiveRun) -> TaskRun {
        TaskRun(task: run.task, runID: run.runID, chain: run.chain, dryRun: run.dryRun, cause: run.cause)
    }
}
