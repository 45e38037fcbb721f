// The dependency graph of the tasks: checked once when a topology loads (every
// dependency known, no cycle, the cycle's names in the error) and then queried by
// the mediator for the chain a task needs. Orders are deterministic (declaration
// order breaks ties) so plans, logs and tests read the same on every run.

/// Why a set of task declarations does not form a usable graph.
public enum TaskGraphError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Two declarations share a name.
    case duplicateTask(TaskName)
    /// `task` depends on a name no declaration has.
    case unknownDependency(task: TaskName, dependency: TaskName)
    /// The dependencies loop; the path starts and ends with the same task (`a → b → a`).
    case cycle([TaskName])

    public var description: String {
        switch self {
        case .duplicateTask(let name): return "task '\(name)' is declared twice"
        case .unknownDependency(let task, let dependency):
            return "task '\(task)' depends on unknown task '\(dependency)'"
        case .cycle(let path):
            return "dependency cycle: " + path.map(\.rawValue).joined(separator: " -> ")
        }
    }
}

/// Validated task declarations with their dependency order.
public struct TaskGraph: Sendable {
    /// The declarations in the order given.
    public let descriptors: [TaskDescriptor]
    /// Every task, dependencies before dependents (ties in declaration order).
    public let order: [TaskName]

    private let index: [TaskName: Int]
    private let position: [TaskName: Int]

    /// Checks names, dependencies and cycles.
    public init(_ descriptors: [TaskDescriptor]) throws(TaskGraphError) {
        var index: [TaskName: Int] = [:]
        for (i, descriptor) in descriptors.enumerated() {
            guard index[descriptor.name] == nil else { throw .duplicateTask(descriptor.name) }
            index[descriptor.name] = i
        }
        for descriptor in descriptors {
            for dependency in descriptor.dependencies where index[dependency] == nil {
                throw .unknownDependency(task: descriptor.name, dependency: dependency)
            }
        }
        if let cycle = Self.findCycle(descriptors, index: index) { throw .cycle(cycle) }
        self.descriptors = descriptors
        self.index = index
        self.order = Self.topologicalOrder(descriptors, index: index)
        var position: [TaskName: Int] = [:]
        for (i, name) in order.enumerated() { position[name] = i }
        self.position = position
    }

    /// The declaration of `name`, if declared.
    public func descriptor(_ name: TaskName) -> TaskDescriptor? { index[name].map { descriptors[$0] } }

    /// Whether `name` is declared.
    public func contains(_ name: TaskName) -> Bool { index[name] != nil }

    /// The direct dependencies of `name`.
    public func dependencies(of name: TaskName) -> [TaskName] { descriptor(name)?.dependencies ?? [] }

    /// The tasks that depend directly on `name`, in declaration order.
    public func dependents(of name: TaskName) -> [TaskName] {
        descriptors.filter { $0.dependencies.contains(name) }.map(\.name)
    }

    /// `target` and everything it depends on, transitively, dependencies first:
    /// the chain that running `target` runs. Empty when `target` is unknown.
    public func chain(for target: TaskName) -> [TaskName] {
        guard contains(target) else { return [] }
        var members: Set<TaskName> = []
        var stack = [target]
        while let name = stack.popLast() {
            guard members.insert(name).inserted else { continue }
            stack.append(contentsOf: dependencies(of: name))
        }
        return sorted(members)
    }

    /// `names` in dependency order.
    public func sorted<S: Sequence>(_ names: S) -> [TaskName] where S.Element == TaskName {
        names.sorted { (position[$0] ?? Int.max, $0.rawValue) < (position[$1] ?? Int.max, $1.rawValue) }
    }

    /// Kahn's algorithm; among ready tasks the earliest declared goes first.
    private static func topologicalOrder(_ descriptors: [TaskDescriptor], index: [TaskName: Int]) -> [TaskName] {
        var remaining = descriptors.map { Set($0.dependencies) }
        var dependents = Array(repeating: [Int](), count: descriptors.count)
        for (i, descriptor) in descriptors.enumerated() {
            for dependency in Set(descriptor.dependencies) { dependents[index[dependency]!].append(i) }
        }
        var ready = descriptors.indices.filter { remaining[$0].isEmpty }
        var order: [TaskName] = []
        while !ready.isEmpty {
            ready.sort()
            let next = ready.removeFirst()
            order.append(descriptors[next].name)
            for dependent in dependents[next] {
                remaining[dependent].remove(descriptors[next].name)
                if remaining[dependent].isEmpty { ready.append(dependent) }
            }
        }
        return order
    }

    /// A depth-first search that returns the first cycle found as a closed path.
    private static func findCycle(_ descriptors: [TaskDescriptor], index: [TaskName: Int]) -> [TaskName]? {
        enum Mark { case unvisited, onPath, done }
        var marks = Array(repeating: Mark.unvisited, count: descriptors.count)
        var path: [Int] = []

        func visit(_ node: Int) -> [TaskName]? {
            marks[node] = .onPath
            path.append(node)
            for dependency in descriptors[node].dependencies {
                let next = index[dependency]!
                switch marks[next] {
                case .onPath:
                    let start = path.lastIndex(of: next)!
                    return (path[start...] + [next]).map { descriptors[$0].name }
                case .unvisited:
                    if let cycle = visit(next) { return cycle }
                case .done:
                    continue
                }
            }
            path.removeLast()
            marks[node] = .done
            return nil
        }

        for node in descriptors.indices where marks[node] == .unvisited {
            if let cycle = visit(node) { return cycle }
        }
        return nil
    }
}
