// Turns raw payloads into `Event`s, or into a precise rejection. Every rule of
// docs/events.md's payload table lives here, so sources stay thin and the rules are
// unit-tested without any server.

/// The outcome label of `herald_events_total`.
public enum EventOutcome: String, Sendable {
    case accepted, rejected, ignored
}

/// Why a payload was rejected (logged, counted, never fatal).
public enum EventRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(bytes: Int, limit: Int)
    case notJSON(JSONError)
    case notAnObject
    case missingField(String)
    case wrongType(field: String, expected: String)
    case invalidValue(field: String)

    public var description: String {
        switch self {
        case .tooLarge(let n, let limit): return "payload of \(n) bytes exceeds \(limit)"
        case .notJSON(let e): return "payload is not JSON (\(e))"
        case .notAnObject: return "payload is not a JSON object"
        case .missingField(let f): return "field \"\(f)\" is missing"
        case .wrongType(let f, let t): return "field \"\(f)\" must be \(t)"
        case .invalidValue(let f): return "field \"\(f)\" has an invalid value"
        }
    }
}

/// The decision for one payload.
public enum DecodeResult: Sendable, Equatable {
    case accepted(Event)
    case ignored(reason: String)
    case rejected(EventRejection)

    public var outcome: EventOutcome {
        switch self {
        case .accepted: return .accepted
        case .ignored: return .ignored
        case .rejected: return .rejected
        }
    }
}

/// Stateless decoding rules for every source.
public enum EventDecoder {
    /// Payloads are JSON objects of at most 8 KiB (docs/events.md).
    public static let maxPayloadBytes = 8192

    /// The tables whose triggers NOTIFY `herald_events`.
    public static let notifyingTables: Set<String> = [
        "workflow_schedule_plans", "app_triggers", "trigger_subscriptions", "tenant_plugin_auto_upgrade_strategies",
    ]

    /// A `task_schedule_events` message.
    public static func scheduleEvent<C: Collection>(_ payload: C) -> DecodeResult where C.Element == UInt8 {
        let object: JSONValue
        switch parseObject(payload) {
        case .failure(let r): return .rejected(r)
        case .success(let o): object = o
        }
        guard let rawID = object["schedule_id"] else { return .rejected(.missingField("schedule_id")) }
        guard case .string(let id) = rawID else {
            return .rejected(.wrongType(field: "schedule_id", expected: "a string"))
        }
        guard UUIDText.isValid(id) else { return .rejected(.invalidValue(field: "schedule_id")) }
        var runNow = false
        switch object["run_now"] {
        case nil, .null?: break
        case .bool(let b)?: runNow = b
        default: return .rejected(.wrongType(field: "run_now", expected: "a boolean"))
        }
        return .accepted(.scheduleChanged(scheduleID: UUIDText.normalized(id), runNow: runNow))
    }

    /// A `herald_events` NOTIFY payload.
    public static func tableEvent<C: Collection>(_ payload: C) -> DecodeResult where C.Element == UInt8 {
        let object: JSONValue
        switch parseObject(payload) {
        case .failure(let r): return .rejected(r)
        case .success(let o): object = o
        }
        guard let t = object["table"] else { return .rejected(.missingField("table")) }
        guard case .string(let table) = t else { return .rejected(.wrongType(field: "table", expected: "a string")) }
        guard let o = object["op"] else { return .rejected(.missingField("op")) }
        guard case .string(let opText) = o else { return .rejected(.wrongType(field: "op", expected: "a string")) }
        guard let op = TableChange.Operation(rawValue: opText) else { return .rejected(.invalidValue(field: "op")) }
        if case .bool(true)? = object["bulk"] {
            guard notifyingTables.contains(table) else { return .ignored(reason: "table \(table) is not watched") }
            return .accepted(.tableChanged(TableChange(table: table, operation: op, id: nil)))
        }
        guard let i = object["id"] else { return .rejected(.missingField("id")) }
        guard case .string(let id) = i else { return .rejected(.wrongType(field: "id", expected: "a string")) }
        guard UUIDText.isValid(id) else { return .rejected(.invalidValue(field: "id")) }
        guard notifyingTables.contains(table) else { return .ignored(reason: "table \(table) is not watched") }
        return .accepted(.tableChanged(TableChange(table: table, operation: op, id: UUIDText.normalized(id))))
    }

    /// The payload of an `expired` keyevent: the key name. `keyPrefix` is `REDIS_KEY_PREFIX`.
    public static func expiredKey<C: Collection>(_ payload: C, keyPrefix: String = "") -> DecodeResult
    where C.Element == UInt8 {
        let limit = 1024
        guard payload.count <= limit else { return .rejected(.tooLarge(bytes: payload.count, limit: limit)) }
        guard let key = String(validating: payload, as: UTF8.self) else {
            return .ignored(reason: "key is not UTF-8")
        }
        let prefix = keyPrefix + Channels.expiryKeyPrefix
        guard key.hasPrefix(prefix) else { return .ignored(reason: "key outside \(prefix)") }
        let name = String(key.dropFirst(prefix.count))
        guard !name.isEmpty else { return .rejected(.invalidValue(field: "key")) }
        return .accepted(.keyExpired(name: name))
    }

    static func parseObject<C: Collection>(_ payload: C) -> Result<JSONValue, EventRejection> where C.Element == UInt8 {
        guard payload.count <= maxPayloadBytes else {
            return .failure(.tooLarge(bytes: payload.count, limit: maxPayloadBytes))
        }
        do {
            let value = try JSONReader.parse(payload)
            guard case .object = value else { return .failure(.notAnObject) }
            return .success(value)
        } catch {
            return .failure(.notJSON(error))
        }
    }
}

/// Canonical textual UUIDs (8-4-4-4-12 hex), as Dify stores them.
public enum UUIDText {
    public static func isValid(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { u in
            guard u.count == 36 else { return false }
            for i in 0..<36 {
                let b = u[i]
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    if b != UInt8(ascii: "-") { return false }
                } else {
                    let hex = (b &- 48 < 10) || (b | 0x20) &- 97 < 6
                    if !hex { return false }
                }
            }
            return true
        }
    }

    /// Lower-case form; returns the same string when it is already lower-case.
    public static func normalized(_ s: String) -> String {
        s.utf8.contains { $0 >= 65 && $0 <= 70 } ? s.lowercased() : s
    }
}
