// Everything Herald knows about a task except how to run it: its name, what must
// run before it, when it fires, which queue limits it, which settings enable it,
// and its lock and missed-run policies (explicit here, implicit in Dify). The
// topology produces these; the mediator, the executor and `herald tasks` read them.

/// The declaration of one task.
public struct TaskDescriptor: Sendable, Hashable {
    /// The task's name (Dify's, see ``TaskName``).
    public let name: TaskName
    /// Tasks that must succeed, in the same chain, before this one runs.
    public let dependencies: [TaskName]
    /// When the task fires on its own; nil when only events, requests or dependents start it.
    public let schedule: TaskSchedule?
    /// The queue whose concurrency limit applies to the task's runs.
    public let queue: String
    /// Settings that must all be true for the task to fire on its schedule; empty means always.
    public let enabledBy: [EnableSetting]
    /// Whether runs exclude each other across instances.
    public let lock: LockPolicy
    /// What happens to fires missed while Herald was down.
    public let missedRuns: MissedRunPolicy
    /// How the topology asks the task to run (`auto` unless it says otherwise).
    public let run: TaskRunMode
    /// Dify's own Celery task for this beat entry, when the topology declares it.
    public let celery: CeleryBeatCall?

    /// A declaration; `lock` defaults to ``TaskLock/standard(for:)``, missed runs to `skip`
    /// and the run mode to `auto`.
    public init(
        name: TaskName, dependencies: [TaskName] = [], schedule: TaskSchedule? = nil, queue: String,
        enabledBy: [EnableSetting] = [], lock: LockPolicy? = nil, missedRuns: MissedRunPolicy = .skip,
        run: TaskRunMode = .auto, celery: CeleryBeatCall? = nil
    ) {
        self.name = name
        self.dependencies = dependencies
        self.schedule = schedule
        self.queue = queue
        self.enabledBy = enabledBy
        self.lock = lock ?? .exclusive(.standard(for: name))
        self.missedRuns = missedRuns
        self.run = run
        self.celery = celery
    }

    /// The same declaration with another lock policy (a `celery` run takes no lock of its
    /// own: the tick claim makes it once, and Dify's task locks what it needs).
    public func with(lock: LockPolicy) -> TaskDescriptor {
        TaskDescriptor(
            name: name, dependencies: dependencies, schedule: schedule, queue: queue, enabledBy: enabledBy,
            lock: lock, missedRuns: missedRuns, run: run, celery: celery)
    }

    /// Whether every enable setting is true in `settings` (Dify's defaults when unset).
    public func isEnabled(_ settings: TaskSettings) throws(TaskSettingError) -> Bool {
        for setting in enabledBy where !(try settings.bool(setting.key, default: setting.defaultValue)) {
            return false
        }
        return true
    }

    /// The enable settings that are false in `settings` (empty when the task is enabled).
    public func disablingSettings(_ settings: TaskSettings) throws(TaskSettingError) -> [EnableSetting] {
        var off: [EnableSetting] = []
        for setting in enabledBy where !(try settings.bool(setting.key, default: setting.defaultValue)) {
            off.append(setting)
        }
        return off
    }
}

// MARK: Policies

/// One setting that must be true for a task to run on its schedule (Dify's `ENABLE_*`).
public struct EnableSetting: Sendable, Hashable, CustomStringConvertible {
    /// The environment name, e.g. `ENABLE_CLEAN_MESSAGES`.
    public let key: String
    /// Dify's default when the setting is unset.
    public let defaultValue: Bool

    /// A setting and its default.
    public init(_ key: String, default defaultValue: Bool) {
        self.key = key
        self.defaultValue = defaultValue
    }

    /// `ENABLE_CLEAN_MESSAGES (default false)`.
    public var description: String { "\(key) (default \(defaultValue))" }
}

/// What a run does when another run of the same task holds its lock.
public enum LockContention: String, Sendable, Hashable, CaseIterable {
    /// Report the run as skipped: another instance is doing the work.
    case skip
    /// Report the run as failed (Dify's retention jobs raise `LockError`).
    case fail
}

/// A distributed lock one run of a task holds while it runs.
public struct TaskLock: Sendable, Hashable {
    /// The Redis key, before `REDIS_KEY_PREFIX` is applied.
    public let key: String
    /// How long the lock lives if its holder dies without releasing it.
    public let ttlSeconds: Int
    /// What a run that finds the lock held does.
    public let whenHeld: LockContention

    /// A lock on `key` for at most `ttlSeconds`.
    public init(key: String, ttlSeconds: Int, whenHeld: LockContention) {
        self.key = key
        self.ttlSeconds = ttlSeconds
        self.whenHeld = whenHeld
    }

    /// The lock a task gets when the topology does not name one:
    /// `herald:lock:task:<name>` for an hour, skipping when held.
    public static func standard(for task: TaskName) -> TaskLock {
        TaskLock(key: "herald:lock:task:\(task.rawValue)", ttlSeconds: 3600, whenHeld: .skip)
    }
}

/// Whether runs of a task exclude each other across all Herald instances.
public enum LockPolicy: Sendable, Hashable, CustomStringConvertible {
    /// No lock: the task is safe to run concurrently (it claims rows with `SKIP LOCKED`
    /// or locks finer-grained items itself).
    case none
    /// One run at a time across every instance, through `lock`.
    case exclusive(TaskLock)

    /// `none` or `<key> ttl=<s>s when_held=<skip|fail>`.
    public var description: String {
        switch self {
        case .none: return "none"
        case .exclusive(let lock): return "\(lock.key) ttl=\(lock.ttlSeconds)s when_held=\(lock.whenHeld.rawValue)"
        }
    }
}

/// What happens to scheduled fire times that passed while no instance was running.
public enum MissedRunPolicy: String, Sendable, Hashable, CaseIterable {
    /// Forget them; the next fire is the next scheduled time.
    case skip
    /// Run once at start-up if at least one fire was missed (Celery beat's behaviour
    /// with its persistent schedule), then follow the schedule.
    case runOnce = "run_once"
}
