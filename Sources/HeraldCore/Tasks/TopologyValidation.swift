// The semantic checks of a topology, shared by files and by topologies built in
// code: names are well formed and unique per kind, every reference resolves
// (queue, dependency, source, task, table), schedules parse, and the dependency
// graph has no cycle. The first failure is thrown, naming the item at fault.

extension TopologyLoader {
    /// Validates parsed parts and assembles the topology.
    static func validate(
        version: Int, sources: [TopologySource], queues: [TopologyQueue], tasks: [TaskDescriptor],
        routes: [TopologyRoute]
    ) throws(TopologyError) -> Topology {
        try checkSources(sources)
        try checkQueues(queues)
        let graph = try checkTasks(tasks, queues: Set(queues.map(\.name)))
        try checkRoutes(routes, sources: sources, graph: graph)
        return Topology(version: version, sources: sources, queues: queues, graph: graph, routes: routes)
    }

    private static func checkSources(_ sources: [TopologySource]) throws(TopologyError) {
        var seen: Set<String> = []
        for (i, source) in sources.enumerated() {
            try checkName(source.name, path: "sources[\(i)].name")
            guard seen.insert(source.name).inserted else { throw .duplicateName(kind: .source, name: source.name) }
            guard TopologySource.declarableKinds.contains(source.kind),
                let expected = TopologySource.contractChannel(for: source.kind)
            else {
                throw .unknownSourceKind(source: source.name, kind: source.kind.rawValue)
            }
            guard source.channel == expected else {
                throw .unsupportedChannel(source: source.name, found: source.channel, expected: expected)
            }
        }
    }

    private static func checkQueues(_ queues: [TopologyQueue]) throws(TopologyError) {
        var seen: Set<String> = []
        for (i, queue) in queues.enumerated() {
            try checkName(queue.name, path: "queues[\(i)].name")
            guard seen.insert(queue.name).inserted else { throw .duplicateName(kind: .queue, name: queue.name) }
            guard (1...1024).contains(queue.concurrency) else {
                throw .badConcurrency(queue: queue.name, value: Double(queue.concurrency))
            }
        }
    }

    private static func checkTasks(_ tasks: [TaskDescriptor], queues: Set<String>) throws(TopologyError) -> TaskGraph {
        var seen: Set<TaskName> = []
        for (i, task) in tasks.enumerated() {
            try checkName(task.name.rawValue, path: "tasks[\(i)].name")
            guard seen.insert(task.name).inserted else { throw .duplicateName(kind: .task, name: task.name.rawValue) }
            guard queues.contains(task.queue) else { throw .unknownQueue(task: task.name, queue: task.queue) }
            if let schedule = task.schedule {
                do { try schedule.validate() } catch { throw .badSchedule(task: task.name, error) }
            }
        }
        for task in tasks {
            for dependency in task.dependencies where !seen.contains(dependency) {
                throw .unknownDependency(task: task.name, dependency: dependency.rawValue)
            }
        }
        do {
            return try TaskGraph(tasks)
        } catch {
            switch error {
            case .duplicateTask(let name): throw .duplicateName(kind: .task, name: name.rawValue)
            case .unknownDependency(let task, let dependency):
                throw .unknownDependency(task: task, dependency: dependency.rawValue)
            case .cycle(let path): throw .cycle(path)
            }
        }
    }

    private static func checkRoutes(
        _ routes: [TopologyRoute], sources: [TopologySource], graph: TaskGraph
    ) throws(TopologyError) {
        var seen: Set<String> = []
        for (i, route) in routes.enumerated() {
            try checkName(route.name, path: "routes[\(i)].name")
            guard seen.insert(route.name).inserted else { throw .duplicateName(kind: .route, name: route.name) }
            guard let source = sources.first(where: { $0.name == route.source }) else {
                throw .unknownSource(route: route.name, source: route.source)
            }
            guard route.event.sourceKind == source.kind else {
                throw .eventNotFromSource(route: route.name, event: route.event, sourceKind: source.kind)
            }
            guard graph.contains(route.task) else { throw .unknownTask(route: route.name, task: route.task.rawValue) }
            if !route.tables.isEmpty, route.event != .tableChanged {
                throw .filterNotApplicable(route: route.name, field: "tables", event: route.event)
            }
            if route.keyPrefix != nil, route.event != .keyExpired {
                throw .filterNotApplicable(route: route.name, field: "key_prefix", event: route.event)
            }
            for table in route.tables where !EventDecoder.notifyingTables.contains(table) {
                throw .unknownTable(route: route.name, table: table)
            }
        }
    }

    private static func checkName(_ name: String, path: String) throws(TopologyError) {
        guard TaskName.isValid(name) else { throw .invalidName(path: path, name: name) }
    }
}
