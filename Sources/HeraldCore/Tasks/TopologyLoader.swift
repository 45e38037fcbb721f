// Reads a topology file (JSON, parsed by HeraldCore's own JSONReader) into values,
// then validates the cross-references: names, queues, dependencies and cycles,
// schedules, sources, routes. Shape errors come first, in file order, then the
// semantic checks, so the first error reported is stable for a given file.

/// Parses and validates topology files; see docs/topology.md for the format.
public enum TopologyLoader {
    /// Nesting limit for topology files (deeper than any valid file needs).
    static let maxDepth = 16

    /// Parses `bytes` and validates the result.
    public static func load<C: Collection>(_ bytes: C) throws(TopologyError) -> Topology where C.Element == UInt8 {
        let root: JSONValue
        do { root = try JSONReader.parse(bytes, maxDepth: maxDepth) } catch { throw .json(error) }
        var top = try TopologyFields(root, path: "")
        guard let version = try top.integer("version", range: 0...Int(Int32.max)) else {
            throw .missingField(path: "top level", field: "version")
        }
        guard version == Topology.supportedVersion else {
            throw .unsupportedVersion(found: version, supported: Topology.supportedVersion)
        }
        let sources = try items(&top, "sources", parseSource)
        let queues = try items(&top, "queues", parseQueue)
        let tasks = try items(&top, "tasks", parseTask)
        let routes = try items(&top, "routes", parseRoute)
        try top.finish()
        return try validate(version: version, sources: sources, queues: queues, tasks: tasks, routes: routes)
    }

    // MARK: Shapes

    private static func items<T>(
        _ top: inout TopologyFields, _ field: String, _ parse: (JSONValue, String) throws(TopologyError) -> T
    ) throws(TopologyError) -> [T] {
        guard top.has(field) else { throw .missingField(path: "top level", field: field) }
        var result: [T] = []
        for (i, item) in try top.array(field).enumerated() { result.append(try parse(item, label(field, i, item))) }
        return result
    }

    /// `tasks[3] (clean_messages)` when the item has a string name, else `tasks[3]`.
    private static func label(_ field: String, _ index: Int, _ item: JSONValue) -> String {
        if case .string(let name)? = item["name"] { return "\(field)[\(index)] (\(name))" }
        return "\(field)[\(index)]"
    }

    private static func parseSource(_ value: JSONValue, _ path: String) throws(TopologyError) -> TopologySource {
        var fields = try TopologyFields(value, path: path)
        let name = try fields.requiredString("name")
        let kindText = try fields.requiredString("kind")
        guard let kind = EventSourceKind(rawValue: kindText), TopologySource.declarableKinds.contains(kind) else {
            throw .unknownSourceKind(source: name, kind: kindText)
        }
        let channelField = kind == .redisExpiry ? "key_prefix" : "channel"
        let channel = try fields.string(channelField) ?? TopologySource.contractChannel(for: kind) ?? ""
        try fields.finish()
        return TopologySource(name: name, kind: kind, channel: channel)
    }

    private static func parseQueue(_ value: JSONValue, _ path: String) throws(TopologyError) -> TopologyQueue {
        var fields = try TopologyFields(value, path: path)
        let name = try fields.requiredString("name")
        guard let concurrency = try fields.number("concurrency") else {
            throw .missingField(path: path, field: "concurrency")
        }
        let monitored = try fields.bool("monitor", default: false)
        try fields.finish()
        guard concurrency == concurrency.rounded(), concurrency >= 1, concurrency <= 1024 else {
            throw .badConcurrency(queue: name, value: concurrency)
        }
        return TopologyQueue(name: name, concurrency: Int(concurrency), monitored: monitored)
    }

    private static func parseTask(_ value: JSONValue, _ path: String) throws(TopologyError) -> TaskDescriptor {
        var fields = try TopologyFields(value, path: path)
        let name = TaskName(rawValue: try fields.requiredString("name"))
        let queue = try fields.requiredString("queue")
        let dependencies = try fields.strings("depends_on").map(TaskName.init(rawValue:))
        let schedule = try fields.value("schedule").map { v throws(TopologyError) in
            try parseSchedule(v, fields.path(of: "schedule"))
        }
        var enabledBy: [EnableSetting] = []
        for (i, item) in try fields.array("enabled_by").enumerated() {
            enabledBy.append(try parseEnableSetting(item, "\(fields.path(of: "enabled_by"))[\(i)]"))
        }
        let lock = try fields.value("lock").map { v throws(TopologyError) in
            try parseLock(v, fields.path(of: "lock"))
        }
        var missedRuns = MissedRunPolicy.skip
        if let text = try fields.string("missed_runs") {
            guard let policy = MissedRunPolicy(rawValue: text) else {
                throw .invalidValue(path: fields.path(of: "missed_runs"), value: text, expected: "skip or run_once")
            }
            missedRuns = policy
        }
        var run = TaskRunMode.auto
        if let text = try fields.string("run") {
            guard let mode = TaskRunMode(rawValue: text) else {
                throw .invalidValue(path: fields.path(of: "run"), value: text, expected: "auto, native, celery or off")
            }
            run = mode
        }
        let celery = try fields.value("celery").map { v throws(TopologyError) in
            try parseCeleryCall(v, fields.path(of: "celery"))
        }
        try fields.finish()
        if run == .celery, celery == nil {
            throw .invalidValue(
                path: fields.path(of: "run"), value: "celery",
                expected: "possible without a 'celery' object naming Dify's task and queue")
        }
        return TaskDescriptor(
            name: name, dependencies: dependencies, schedule: schedule, queue: queue, enabledBy: enabledBy,
            lock: lock, missedRuns: missedRuns, run: run, celery: celery)
    }

    private static func parseCeleryCall(_ value: JSONValue, _ path: String) throws(TopologyError) -> CeleryBeatCall {
        var fields = try TopologyFields(value, path: path)
        let task = try fields.requiredString("task")
        let queue = try fields.requiredString("queue")
        let args = try fields.array("args")
        var kwargs: [(key: String, value: JSONValue)] = []
        if let object = fields.value("kwargs") {
            guard case .object(let members) = object else {
                throw .wrongType(path: fields.path(of: "kwargs"), expected: "an object")
            }
            kwargs = members.map { (key: $0.key, value: $0.value) }
        }
        try fields.finish()
        let isTaskByte: (UInt8) -> Bool = { b in
            (97...122).contains(b) || (65...90).contains(b) || (48...57).contains(b) || b == 95 || b == 46
        }
        guard !task.isEmpty, task.utf8.count <= 255, task.utf8.allSatisfy(isTaskByte) else {
            throw .invalidValue(
                path: fields.path(of: "task"), value: task,
                expected: "a dotted Celery task name (letters, digits, '_' and '.')")
        }
        guard TaskName.isValid(queue) else {
            throw .invalidValue(
                path: fields.path(of: "queue"), value: queue,
                expected: "a queue name (a-z, 0-9, '_', '-', '.', starting with a letter)")
        }
        return CeleryBeatCall(task: task, queue: queue, args: args, kwargs: kwargs)
    }

    private static func parseSchedule(_ value: JSONValue, _ path: String) throws(TopologyError) -> TaskSchedule {
        var fields = try TopologyFields(value, path: path)
        let cron = try fields.string("cron")
        let minutes = try fields.number("every_minutes")
        let setting = try fields.string("setting")
        try fields.finish()
        switch (cron, minutes) {
        case (let text?, nil):
            if setting != nil { throw .unknownField(path: path, field: "setting") }
            return .cron(text)
        case (nil, let minutes?):
            if let setting, !isSettingName(setting) {
                throw .invalidValue(path: fields.path(of: "setting"), value: setting, expected: "an environment name")
            }
            return .every(minutes: minutes, setting: setting)
        default:
            let found = cron == nil ? "neither" : "both"
            throw .invalidValue(path: path, value: found, expected: "exactly one of 'cron' or 'every_minutes'")
        }
    }

    private static func parseEnableSetting(_ value: JSONValue, _ path: String) throws(TopologyError) -> EnableSetting {
        var fields = try TopologyFields(value, path: path)
        let key = try fields.requiredString("setting")
        guard fields.has("default") else { throw .missingField(path: path, field: "default") }
        let defaultValue = try fields.bool("default", default: false)
        try fields.finish()
        guard isSettingName(key) else {
            throw .invalidValue(
                path: fields.path(of: "setting"), value: key, expected: "an environment name (A-Z, 0-9, _)")
        }
        return EnableSetting(key, default: defaultValue)
    }

    private static func parseLock(_ value: JSONValue, _ path: String) throws(TopologyError) -> LockPolicy {
        if case .string(let word) = value {
            switch word {
            case "none": return LockPolicy.none
            default: throw .invalidValue(path: path, value: word, expected: "\"none\" or a lock object")
            }
        }
        var fields = try TopologyFields(value, path: path)
        let key = try fields.requiredString("key")
        guard let ttl = try fields.integer("ttl_seconds", range: 1...2_592_000) else {
            throw .missingField(path: path, field: "ttl_seconds")
        }
        var whenHeld = LockContention.skip
        if let text = try fields.string("when_held") {
            guard let contention = LockContention(rawValue: text) else {
                throw .invalidValue(path: fields.path(of: "when_held"), value: text, expected: "skip or fail")
            }
            whenHeld = contention
        }
        try fields.finish()
        guard !key.isEmpty, !key.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw .invalidValue(path: fields.path(of: "key"), value: key, expected: "a Redis key without spaces")
        }
        return .exclusive(TaskLock(key: key, ttlSeconds: ttl, whenHeld: whenHeld))
    }

    private static func parseRoute(_ value: JSONValue, _ path: String) throws(TopologyError) -> TopologyRoute {
        var fields = try TopologyFields(value, path: path)
        let name = try fields.requiredString("name")
        let source = try fields.requiredString("source")
        let eventText = try fields.requiredString("event")
        guard let event = TopologyEventKind(rawValue: eventText) else {
            throw .unknownEventKind(route: name, event: eventText)
        }
        let hasTables = fields.has("tables")
        let tables = try fields.strings("tables")
        let keyPrefix = try fields.string("key_prefix")
        let task = TaskName(rawValue: try fields.requiredString("task"))
        let enabled = try fields.bool("enabled", default: true)
        try fields.finish()
        if hasTables, event != .tableChanged { throw .filterNotApplicable(route: name, field: "tables", event: event) }
        if keyPrefix != nil, event != .keyExpired {
            throw .filterNotApplicable(route: name, field: "key_prefix", event: event)
        }
        return TopologyRoute(
            name: name, source: source, event: event, tables: tables, keyPrefix: keyPrefix, task: task,
            enabled: enabled)
    }

    /// `ENABLE_CLEAN_MESSAGES`: upper-case letters, digits and `_`, starting with a letter.
    static func isSettingName(_ text: String) -> Bool {
        guard let first = text.utf8.first, (65...90).contains(first), text.utf8.count <= 128 else { return false }
        return text.utf8.allSatisfy { (65...90).contains($0) || (48...57).contains($0) || $0 == 95 }
    }
}
