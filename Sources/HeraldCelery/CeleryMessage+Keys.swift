// Where a message goes and what id it carries. kombu's Redis transport prefixes
// every key with `global_keyprefix`, and Dify sets that to `REDIS_KEY_PREFIX + ":"`;
// task ids are name-based UUIDs of (schedule, fire time) so a re-send after a crash
// is recognisably the same task.

extension CeleryMessage {
    /// Celery's `global_keyprefix` for Dify's `REDIS_KEY_PREFIX`: `""` when the prefix is
    /// empty, else `"<prefix>:"` (Dify adds the colon when it configures Celery).
    public static func globalKeyPrefix(redisKeyPrefix: String) -> String {
        redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
    }

    /// The Redis list a queue's messages are LPUSHed onto: `<global_keyprefix><queue>`.
    ///
    /// kombu prefixes the queue name verbatim (no separator of its own) and, at priority 0,
    /// uses the bare queue name as the list key. `keyPrefix` is the *global_keyprefix*, e.g.
    /// the result of `globalKeyPrefix(redisKeyPrefix:)`.
    public static func listKey(queue: String, keyPrefix: String) -> String {
        keyPrefix + queue
    }

    /// The namespace of Herald's task ids: `uuid5(NAMESPACE_DNS, "herald.celery.task-id")`
    /// = `43f36061-3e1a-561a-826b-b8e6085cf0be`.
    public static let taskIDNamespace = CeleryUUID(bytes: [
        0x43, 0xF3, 0x60, 0x61, 0x3E, 0x1A, 0x56, 0x1A, 0x82, 0x6B, 0xB8, 0xE6, 0x08, 0x5C, 0xF0, 0xBE,
    ])!

    /// The deterministic task id of one firing: `uuid5(taskIDNamespace, "<scheduleID>@<scheduledAt>")`
    /// in Python terms, with `scheduledAt` the planned fire time in Unix seconds (decimal).
    ///
    /// The same plan and planned time always give the same id, so a message re-sent after a
    /// crash between LPUSH and bookkeeping carries the id of the first one.
    public static func taskID(scheduleID: String, scheduledAt: Int64) -> String {
        CeleryUUID.v5(namespace: taskIDNamespace, name: "\(scheduleID)@\(scheduledAt)").description
    }
}
