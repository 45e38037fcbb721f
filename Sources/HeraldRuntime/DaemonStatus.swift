// What /healthz and `herald status` show: a point-in-time view of the daemon (Daemon.status()),
// rendered by StatusJSON.

/// A point-in-time view of the daemon, for /healthz and `herald status`.
public struct DaemonStatus: Sendable {
    public var instanceID: String
    public var sources: [(name: String, state: String)]
    public var lastSweepWallSeconds: Double?
    public var lastSweepReason: String?
    public var sweeps: Int
    public var keyspaceEvents: Bool?
    public var startedWallSeconds: Double
    /// Plans armed as timers, when schedules run.
    public var armedPlans: Int?
    /// Completed loads of the schedule window (nil when schedules are off).
    public var scheduleWindowLoads: Int?
    /// The latest fires, newest first: (plan, scheduled Unix µs, via).
    public var recentFires: [(plan: String, scheduledAt: Int64, via: String)] = []
    /// Every task of the topology: how it runs, its next tick here, its last outcome here.
    public var tasks: [TaskStatusRow] = []
    /// What else keeps the daemon from being ready: the schema behind or ahead of this build, the
    /// topology missing or invalid, a source down (with its address, never a password).
    public var problems: [String] = []
    /// Schedule operations whose latest attempt failed: (operation, since Unix seconds, error).
    public var scheduleFailures: [(operation: String, since: Double, error: String)] = []
    /// The outside dependencies' breakers (shown, not part of readiness: the core work goes on).
    public var circuits: [(dependency: String, state: String, lastFailure: String?)] = []
    /// Ready when every source is up, nothing is in `problems`, and no schedule operation that
    /// finds due plans (window load, read, claim, sweep, re-send) is failing.
    public var healthy: Bool {
        sources.allSatisfy { $0.state == "ready" } && scheduleFailures.isEmpty && problems.isEmpty
    }
}

/// One task in `herald status`: how it runs, whether it fires here, its next tick and last outcome.
public struct TaskStatusRow: Sendable {
    public var task: String
    /// `native`, `native (service)`, `celery` or `off`.
    public var runs: String
    public var enabled: Bool
    /// The next tick armed on this instance (Unix seconds), if any.
    public var nextTick: Int64?
    /// The latest run's status on this instance and when it ended (Unix seconds).
    public var lastStatus: String?
    public var lastAt: Double?
    /// How long the latest run took (seconds), when it ran.
    public var lastSeconds: Double? = nil
}
