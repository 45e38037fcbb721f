// How a task runs under Herald: natively (Herald's own implementation), by
// enqueuing Dify's own Celery task at each tick (as Celery beat would), or not at
// all. The topology declares the wish; which implementations exist is known only
// to the runtime, which resolves `auto` and refuses a wish it cannot honour.

/// How the topology asks a task to run.
public enum TaskRunMode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `native` when this build implements the task, else `celery` when the task
    /// declares Dify's Celery call; a task with neither is refused at load.
    case auto
    /// Herald's own implementation; refused at load when this build has none.
    case native
    /// Herald enqueues Dify's Celery task (its name, queue, args and kwargs) at each
    /// tick, once per tick across instances; Dify's workers do the work.
    case celery
    /// Never runs: no tick, no route, no request.
    case off

    public var description: String { rawValue }
}

/// How a task actually runs once the runtime resolved ``TaskRunMode/auto``.
public enum ResolvedRunMode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Herald's own implementation.
    case native
    /// Dify's Celery task, enqueued by Herald.
    case celery
    /// Not run at all.
    case off

    public var description: String { rawValue }

    /// Resolves `mode` for a task that Herald implements (`implemented`) and may
    /// declare a Celery call (`hasCelery`); nil when the wish cannot be honoured.
    public static func resolve(_ mode: TaskRunMode, implemented: Bool, hasCelery: Bool) -> ResolvedRunMode? {
        switch mode {
        case .auto: return implemented ? .native : (hasCelery ? .celery : nil)
        case .native: return implemented ? .native : nil
        case .celery: return hasCelery ? .celery : nil
        case .off: return .off
        }
    }
}

/// Dify's own Celery task for a beat entry: what Celery beat sends at each tick.
///
/// Arguments are JSON values as the topology writes them; keyword arguments are
/// sent in the order of their names (a JSON object has no order of its own).
public struct CeleryBeatCall: Sendable, Hashable, CustomStringConvertible {
    /// The registered Celery task name, e.g. `schedule.clean_messages.clean_messages`.
    public let task: String
    /// The Celery queue the task is declared on (its `@shared_task(queue=…)`), e.g. `retention`.
    public let queue: String
    /// Positional arguments (Dify's beat entries send none).
    public let args: [JSONValue]
    /// Keyword arguments, sorted by name (Dify's beat entries send none).
    public let kwargs: [(key: String, value: JSONValue)]

    /// A call of `task` on `queue`.
    public init(task: String, queue: String, args: [JSONValue] = [], kwargs: [(key: String, value: JSONValue)] = []) {
        self.task = task
        self.queue = queue
        self.args = args
        self.kwargs = kwargs.sorted { $0.key < $1.key }
    }

    /// `schedule.clean_messages.clean_messages on retention`.
    public var description: String { "\(task) on \(queue)" }

    public static func == (a: CeleryBeatCall, b: CeleryBeatCall) -> Bool {
        a.task == b.task && a.queue == b.queue && a.args == b.args
            && a.kwargs.map(\.key) == b.kwargs.map(\.key) && a.kwargs.map(\.value) == b.kwargs.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(task)
        hasher.combine(queue)
        hasher.combine(args.count)
        hasher.combine(kwargs.map(\.key))
    }
}
