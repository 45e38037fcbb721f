// Tasks are found by their typed name. The registry is where implementations are
// registered at start-up and on reload; a duplicate name is a programming error
// reported at once with a typed error rather than one task silently replacing
// another, and a topology that names a task nobody implemented is caught here.

/// Why a task cannot be registered or bound.
public enum TaskRegistryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Two tasks were registered under one name.
    case duplicateName(TaskName)
    /// The registered tasks' declarations do not form a graph.
    case graph(TaskGraphError)
    /// The topology declares tasks that no registered implementation provides.
    case notImplemented([TaskName])

    public var description: String {
        switch self {
        case .duplicateName(let name): return "task '\(name)' is registered twice"
        case .graph(let error): return "\(error)"
        case .notImplemented(let names):
            return "no implementation for task" + (names.count == 1 ? " " : "s ")
                + names.map { "'\($0)'" }.joined(separator: ", ")
        }
    }
}

/// Task implementations by name.
public struct TaskRegistry: Sendable {
    private var tasks: [TaskName: any HeraldTask] = [:]
    private var insertionOrder: [TaskName] = []

    /// An empty registry.
    public init() {}

    /// A registry holding `tasks`; throws on the first duplicate name.
    public init(_ tasks: [any HeraldTask]) throws(TaskRegistryError) {
        for task in tasks { try register(task) }
    }

    /// Adds `task`; a second task with the same name is refused.
    public mutating func register(_ task: any HeraldTask) throws(TaskRegistryError) {
        guard tasks[task.name] == nil else { throw .duplicateName(task.name) }
        tasks[task.name] = task
        insertionOrder.append(task.name)
    }

    /// The task registered as `name`.
    public subscript(name: TaskName) -> (any HeraldTask)? { tasks[name] }

    /// Registered names, in registration order.
    public var names: [TaskName] { insertionOrder }

    /// How many tasks are registered.
    public var count: Int { insertionOrder.count }

    /// The registered tasks' declarations as a checked dependency graph.
    public func graph() throws(TaskRegistryError) -> TaskGraph {
        do {
            return try TaskGraph(insertionOrder.map { tasks[$0]!.descriptor })
        } catch {
            throw .graph(error)
        }
    }

    /// Checks that every task `graph` declares has an implementation here.
    public func checkImplements(_ graph: TaskGraph) throws(TaskRegistryError) {
        let missing = graph.order.filter { tasks[$0] == nil }
        if !missing.isEmpty { throw .notImplemented(missing) }
    }
}
