// Every way a topology file can be refused, as one typed error whose message names
// the offending item (task, queue, source, route, or the JSON path when no name is
// known yet). `herald topology check` prints the first one; the daemon refuses to
// start, or keeps its current topology on SIGHUP, with the same line.

/// Why a topology cannot be loaded.
public enum TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not JSON.
    case json(JSONError)
    /// A value has the wrong JSON type; `path` is like `tasks[2] (clean_messages).depends_on`.
    case wrongType(path: String, expected: String)
    /// A required field is absent.
    case missingField(path: String, field: String)
    /// A field this format does not define (typos are errors, not silently ignored).
    case unknownField(path: String, field: String)
    /// A value outside the accepted set or range.
    case invalidValue(path: String, value: String, expected: String)
    /// `version` is not one this build reads.
    case unsupportedVersion(found: Int, supported: Int)
    /// A name with characters outside `a-z 0-9 _ - .` or not starting with a letter.
    case invalidName(path: String, name: String)
    /// Two items of one kind share a name.
    case duplicateName(kind: TopologyItemKind, name: String)
    /// A source's `kind` is not `redis_pubsub`, `redis_expiry` or `postgres_notify`.
    case unknownSourceKind(source: String, kind: String)
    /// A source's channel differs from the one fixed for its kind (docs/events.md).
    case unsupportedChannel(source: String, found: String, expected: String)
    /// A queue's concurrency is below 1 (or absurdly large).
    case badConcurrency(queue: String, value: Double)
    /// A task names a queue that is not declared.
    case unknownQueue(task: TaskName, queue: String)
    /// A task depends on a task that is not declared.
    case unknownDependency(task: TaskName, dependency: String)
    /// The dependencies form a cycle (path starts and ends with the same task).
    case cycle([TaskName])
    /// A task's schedule does not parse or is not positive.
    case badSchedule(task: TaskName, TaskScheduleError)
    /// A route's `event` is not a known event kind.
    case unknownEventKind(route: String, event: String)
    /// A route names a source that is not declared.
    case unknownSource(route: String, source: String)
    /// A route's event kind is not produced by its source's kind.
    case eventNotFromSource(route: String, event: TopologyEventKind, sourceKind: EventSourceKind)
    /// A route targets a task that is not declared.
    case unknownTask(route: String, task: String)
    /// A route filter that its event kind does not use (`tables` on a `key_expired` route).
    case filterNotApplicable(route: String, field: String, event: TopologyEventKind)
    /// A route's table has no NOTIFY trigger installed by `herald migrate`.
    case unknownTable(route: String, table: String)

    public var description: String {
        switch self {
        case .json(let error): return "not valid JSON: " + Self.text(error)
        case .wrongType(let path, let expected): return "\(path): expected \(expected)"
        case .missingField(let path, let field): return "\(path): missing field '\(field)'"
        case .unknownField(let path, let field): return "\(path): unknown field '\(field)'"
        case .invalidValue(let path, let value, let expected): return "\(path): '\(value)' is not \(expected)"
        case .unsupportedVersion(let found, let supported):
            return "version \(found) is not supported (this build reads version \(supported))"
        case .invalidName(let path, let name):
            return "\(path): '\(name)' is not a valid name (a-z, 0-9, '_', '-', '.', starting with a letter)"
        case .duplicateName(let kind, let name): return "\(kind) '\(name)' is declared twice"
        case .unknownSourceKind(let source, let kind):
            return "source '\(source)': unknown kind '\(kind)' (expected "
                + TopologySource.declarableKinds.map(\.rawValue).joined(separator: ", ") + ")"
        case .unsupportedChannel(let source, let found, let expected):
            return "source '\(source)': channel '\(found)' is not supported (expected '\(expected)')"
        case .badConcurrency(let queue, let value):
            return "queue '\(queue)': concurrency must be a whole number from 1 to 1024, got \(Self.number(value))"
        case .unknownQueue(let task, let queue): return "task '\(task)': unknown queue '\(queue)'"
        case .unknownDependency(let task, let dependency):
            return "task '\(task)': depends on unknown task '\(dependency)'"
        case .cycle(let path): return "dependency cycle: " + path.map(\.rawValue).joined(separator: " -> ")
        case .badSchedule(let task, let error): return "task '\(task)': bad schedule: \(error)"
        case .unknownEventKind(let route, let event):
            return "route '\(route)': unknown event '\(event)' (expected "
                + TopologyEventKind.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case .unknownSource(let route, let source): return "route '\(route)': unknown source '\(source)'"
        case .eventNotFromSource(let route, let event, let kind):
            return "route '\(route)': a \(kind.rawValue) source does not produce '\(event.rawValue)' events"
        case .unknownTask(let route, let task): return "route '\(route)': unknown task '\(task)'"
        case .filterNotApplicable(let route, let field, let event):
            return "route '\(route)': '\(field)' does not apply to '\(event.rawValue)' events"
        case .unknownTable(let route, let table):
            return "route '\(route)': table '\(table)' sends no NOTIFY (expected one of "
                + EventDecoder.notifyingTables.sorted().joined(separator: ", ") + ")"
        }
    }

    private static func text(_ error: JSONError) -> String {
        switch error {
        case .empty: return "the file is empty"
        case .unexpectedByte(let offset): return "unexpected character at byte \(offset)"
        case .unexpectedEnd: return "the file ends in the middle of a value"
        case .tooDeep(let limit): return "nested deeper than \(limit) levels"
        case .invalidUTF8(let offset): return "invalid UTF-8 at byte \(offset)"
        case .invalidEscape(let offset): return "invalid escape at byte \(offset)"
        case .invalidNumber(let offset): return "invalid number at byte \(offset)"
        case .trailingData(let offset): return "unexpected data after the document at byte \(offset)"
        }
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// The kinds of named item in a topology.
public enum TopologyItemKind: String, Sendable, Hashable, CustomStringConvertible {
    case source, queue, task, route

    public var description: String { rawValue }
}
