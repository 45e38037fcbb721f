// The declarative pipeline wiring the daemon loads at start and on SIGHUP: event
// sources, routes, queues with their concurrency, and the tasks with their
// schedules and dependencies. A `Topology` value exists only once validated, so
// everything downstream can trust its cross-references; route matching lives here
// so the daemon asks "what does this event trigger?" instead of hard-coding it.

/// A loaded, validated topology (see docs/topology.md for the file format).
public struct Topology: Sendable {
    /// The format version this build reads.
    public static let supportedVersion = 1

    /// The file's format version.
    public let version: Int
    /// Declared event sources.
    public let sources: [TopologySource]
    /// Declared queues.
    public let queues: [TopologyQueue]
    /// The tasks as a checked dependency graph (declarations in file order).
    public let graph: TaskGraph
    /// Declared routes.
    public let routes: [TopologyRoute]

    /// Assembles parts that ``TopologyLoader`` has already validated.
    init(
        version: Int, sources: [TopologySource], queues: [TopologyQueue], graph: TaskGraph, routes: [TopologyRoute]
    ) {
        self.version = version
        self.sources = sources
        self.queues = queues
        self.graph = graph
        self.routes = routes
    }

    /// Parses and validates a topology from JSON bytes.
    public static func load<C: Collection>(json bytes: C) throws(TopologyError) -> Topology where C.Element == UInt8 {
        try TopologyLoader.load(bytes)
    }

    /// Builds and validates a topology from values (tests, tools); same rules as a file.
    public static func make(
        sources: [TopologySource] = [], queues: [TopologyQueue], tasks: [TaskDescriptor],
        routes: [TopologyRoute] = []
    ) throws(TopologyError) -> Topology {
        try TopologyLoader.validate(
            version: supportedVersion, sources: sources, queues: queues, tasks: tasks, routes: routes)
    }

    /// The task declarations, in file order.
    public var tasks: [TaskDescriptor] { graph.descriptors }

    /// The declaration of `name`.
    public func task(_ name: TaskName) -> TaskDescriptor? { graph.descriptor(name) }

    /// The queue called `name`.
    public func queue(_ name: String) -> TopologyQueue? { queues.first { $0.name == name } }

    /// The source called `name`.
    public func source(_ name: String) -> TopologySource? { sources.first { $0.name == name } }

    /// The enabled routes `event` matches (kind, filters and source kind), in file order.
    public func routes(matching event: Event) -> [TopologyRoute] {
        routes.filter { $0.matches(event) && source($0.source)?.kind == event.source }
    }

    /// The tasks an event triggers through enabled routes, in dependency order, each once.
    public func tasks(triggeredBy event: Event) -> [TaskName] {
        graph.sorted(Set(routes(matching: event).map(\.task)))
    }

    /// The channel (or key prefix) of the first declared source of `kind`, if any.
    public func channel(of kind: EventSourceKind) -> String? {
        sources.first { $0.kind == kind }?.channel
    }

    /// The routes that trigger `task` (enabled or not), in file order.
    public func routes(to task: TaskName) -> [TopologyRoute] { routes.filter { $0.task == task } }

    /// The tasks that depend on `task` directly.
    public func dependents(of task: TaskName) -> [TaskName] { graph.dependents(of: task) }

    /// The tasks disabled by `settings` (their enable settings off, Dify's defaults when unset).
    public func disabledTasks(_ settings: TaskSettings) throws(TaskSettingError) -> Set<TaskName> {
        var off: Set<TaskName> = []
        for task in tasks where !(try task.isEnabled(settings)) { off.insert(task.name) }
        return off
    }
}

// MARK: Sources, queues and routes

/// An event source the topology wires in (one of the three external ones).
public struct TopologySource: Sendable, Hashable {
    /// The source's name in the topology (routes refer to it).
    public let name: String
    /// Which transport it is: `redis_pubsub`, `redis_expiry` or `postgres_notify`.
    public let kind: EventSourceKind
    /// The channel it listens on (`task_schedule_events`, `herald_events`), or for
    /// `redis_expiry` the key prefix it watches (`herald:expiry:`).
    public let channel: String

    /// A declared source.
    public init(name: String, kind: EventSourceKind, channel: String) {
        self.name = name
        self.kind = kind
        self.channel = channel
    }

    /// The kinds a topology may declare: timers and the sweep are built in.
    public static let declarableKinds: [EventSourceKind] = [.redisPubSub, .redisExpiry, .postgresNotify]

    /// The channel (or key prefix) fixed for `kind` (docs/events.md).
    public static func contractChannel(for kind: EventSourceKind) -> String? {
        switch kind {
        case .redisPubSub: return Channels.scheduleEvents
        case .redisExpiry: return Channels.expiryKeyPrefix
        case .postgresNotify: return Channels.postgresEvents
        case .timer, .sweep: return nil
        }
    }
}

/// A queue: the name Dify gives it and how many of its runs may execute at once.
public struct TopologyQueue: Sendable, Hashable {
    /// Dify's queue name (`dataset`, `retention`, `schedule_executor` …).
    public let name: String
    /// The most runs (or dispatches) of this queue in flight at once on one instance; at least 1.
    public let concurrency: Int
    /// Whether the Celery list of this name is measured (`herald_queue_length`, the queue monitor).
    public let monitored: Bool

    /// A declared queue.
    public init(name: String, concurrency: Int, monitored: Bool = false) {
        self.name = name
        self.concurrency = concurrency
        self.monitored = monitored
    }
}

/// The kinds of normalized event a route can match.
public enum TopologyEventKind: String, Sendable, Hashable, CaseIterable {
    /// `task_schedule_events`: a schedule changed or asks to run now.
    case scheduleChanged = "schedule_changed"
    /// A `herald:expiry:` key expired.
    case keyExpired = "key_expired"
    /// A NOTIFY from a table trigger.
    case tableChanged = "table_changed"

    /// The source kind that produces this event.
    public var sourceKind: EventSourceKind {
        switch self {
        case .scheduleChanged: return .redisPubSub
        case .keyExpired: return .redisExpiry
        case .tableChanged: return .postgresNotify
        }
    }

    /// The kind of `event`, or nil for timer and sweep events (never routed).
    public init?(_ event: Event) {
        switch event {
        case .scheduleChanged: self = .scheduleChanged
        case .keyExpired: self = .keyExpired
        case .tableChanged: self = .tableChanged
        case .timerFired, .sweep: return nil
        }
    }
}

/// Which events trigger which task.
public struct TopologyRoute: Sendable, Hashable {
    /// The route's name (for errors and logs).
    public let name: String
    /// The source it listens to (a ``TopologySource`` name).
    public let source: String
    /// The event kind it matches.
    public let event: TopologyEventKind
    /// For `table_changed`: the tables that match; empty matches every table.
    public let tables: [String]
    /// For `key_expired`: the key-name prefix after `herald:expiry:` that matches; nil matches all.
    public let keyPrefix: String?
    /// The task a matching event triggers.
    public let task: TaskName
    /// False for a route that is declared but not yet acted on.
    public let enabled: Bool

    /// A declared route.
    public init(
        name: String, source: String, event: TopologyEventKind, tables: [String] = [], keyPrefix: String? = nil,
        task: TaskName, enabled: Bool = true
    ) {
        self.name = name
        self.source = source
        self.event = event
        self.tables = tables
        self.keyPrefix = keyPrefix
        self.task = task
        self.enabled = enabled
    }

    /// Whether `event` matches this route's kind and filters (the source is checked by the topology).
    public func matches(_ event: Event) -> Bool {
        guard enabled, TopologyEventKind(event) == self.event else { return false }
        switch event {
        case .tableChanged(let change):
            return tables.isEmpty || tables.contains(change.table)
        case .keyExpired(let name):
            return keyPrefix.map { name.hasPrefix($0) } ?? true
        case .scheduleChanged, .timerFired, .sweep:
            return true
        }
    }
}
