// The one normalized event every source produces. Sources do I/O and decode;
// they never decide what runs. Everything downstream (mediator, schedules,
// tasks) sees only this type.

/// Where an event came from; also the `source` label of `herald_events_total`.
public enum EventSourceKind: String, Sendable, CaseIterable, Hashable {
    case redisPubSub = "redis_pubsub"
    case redisExpiry = "redis_expiry"
    case postgresNotify = "postgres_notify"
    case timer = "timer"
    case sweep = "sweep"
}

/// A row-change announcement from the NOTIFY triggers (IDs only).
public struct TableChange: Sendable, Equatable {
    public enum Operation: String, Sendable {
        case insert = "INSERT", update = "UPDATE", delete = "DELETE"
    }
    public var table: String
    public var operation: Operation
    /// The row's id; nil for a bulk notice (a statement that touched more than 100 rows).
    public var id: String?

    public init(table: String, operation: Operation, id: String?) {
        self.table = table
        self.operation = operation
        self.id = id
    }
}

/// Why a sweep runs.
public enum SweepReason: String, Sendable, Equatable {
    case interval, reconnect, startup, manual
}

/// One normalized event.
public enum Event: Sendable, Equatable {
    /// `task_schedule_events`: the plan changed (re-read it); `runNow` adds one immediate fire.
    case scheduleChanged(scheduleID: String, runNow: Bool)
    /// `__keyevent@<db>__:expired` for a key under `herald:expiry:`; `name` is the part after the prefix.
    case keyExpired(name: String)
    /// `herald_events` NOTIFY from a trigger installed by `herald migrate`.
    case tableChanged(TableChange)
    /// An in-process timer named by its owner.
    case timerFired(name: String)
    /// The fallback sweep.
    case sweep(reason: SweepReason)

    public var source: EventSourceKind {
        switch self {
        case .scheduleChanged: return .redisPubSub
        case .keyExpired: return .redisExpiry
        case .tableChanged: return .postgresNotify
        case .timerFired: return .timer
        case .sweep: return .sweep
        }
    }
}

/// Fixed names on the wire: clients publish and listen on them (docs/events.md).
public enum Channels {
    public static let scheduleEvents = "task_schedule_events"
    public static let postgresEvents = "herald_events"
    public static let expiryKeyPrefix = "herald:expiry:"
    public static let taskStatus = "herald_task_status"

    /// `__keyevent@<db>__:expired`, as Redis' notify.c names it.
    public static func expiredKeyEvents(database: Int) -> String { "__keyevent@\(database)__:expired" }
}
