// The bytes Herald LPUSHes onto a Celery queue: the envelope kombu's Redis
// transport stores, wrapping a Celery protocol-v2 message with a JSON body.
// Field set, order and spelling were pinned against real Celery 5 (see
// docs/celery.md and Tests/Support/celery_reference.py); keep them in step.

/// Encodes Celery protocol-v2 messages exactly as Celery 5 + kombu's Redis transport write them.
///
/// The Redis list element is kombu's envelope
/// `{"body", "content-encoding", "content-type", "headers", "properties"}` written by Python's
/// `json.dumps`, whose `body` is the base64 of `json.dumps([args, kwargs, embed])`.
public enum CeleryMessage {
    /// `content-type` of every message Herald sends.
    public static let contentType = "application/json"
    /// `content-encoding` of every message Herald sends.
    public static let contentEncoding = "utf-8"

    /// The envelope for `task`, ready for `LPUSH <listKey> <envelope>`.
    ///
    /// - Parameters:
    ///   - origin: the `origin` header, Celery's `<name>@<host>` of the producer (e.g. `herald1234@web-1`).
    ///   - replyTo: the `reply_to` property; Celery puts its app's oid there, `""` when none.
    ///   - deliveryTag: kombu's per-message tag, a fresh `CeleryUUID.v4()` string.
    public static func encode(
        _ task: CeleryTask, origin: String, replyTo: String = "",
        deliveryTag: String
    ) -> [UInt8] {
        var writer = PythonJSONWriter(capacity: 1024)
        encode(task, origin: origin, replyTo: replyTo, deliveryTag: deliveryTag, into: &writer)
        return writer.bytes
    }

    /// Appends the envelope for `task` to `writer` (batch senders reuse one buffer).
    public static func encode(
        _ task: CeleryTask, origin: String, replyTo: String = "",
        deliveryTag: String, into writer: inout PythonJSONWriter
    ) {
        let body = encodeBody(task)
        writer.raw("{\"body\": \"")
        Base64.encode(body, into: &writer.bytes)
        writer.raw("\", \"content-encoding\": \"utf-8\", \"content-type\": \"application/json\", ")
        writer.raw("\"headers\": {\"lang\": \"py\", \"task\": ")
        writer.string(task.name)
        writer.raw(", \"id\": ")
        writer.string(task.id)
        writer.raw(", \"shadow\": null, \"eta\": null, \"expires\": null, \"group\": null, ")
        writer.raw("\"group_index\": null, \"retries\": 0, \"timelimit\": [null, null], \"root_id\": ")
        writer.string(task.id)
        writer.raw(", \"parent_id\": null, \"argsrepr\": ")
        writer.string(CeleryRepr.args(task.args))
        writer.raw(", \"kwargsrepr\": ")
        writer.string(CeleryRepr.kwargs(task.kwargs))
        writer.raw(", \"origin\": ")
        writer.string(origin)
        writer.raw(", \"ignore_result\": ")
        switch task.ignoreResult {
        case .some(true): writer.raw("true")
        case .some(false): writer.raw("false")
        case .none: writer.raw("null")
        }
        writer.raw(", \"replaced_task_nesting\": 0, \"stamped_headers\": null, \"stamps\": {}}, ")
        writer.raw("\"properties\": {\"correlation_id\": ")
        writer.string(task.id)
        writer.raw(", \"reply_to\": ")
        writer.string(replyTo)
        writer.raw(", \"delivery_mode\": 2, \"delivery_info\": {\"exchange\": \"\", \"routing_key\": ")
        writer.string(task.queue)
        writer.raw("}, \"priority\": 0, \"body_encoding\": \"base64\", \"delivery_tag\": ")
        writer.string(deliveryTag)
        writer.raw("}}")
    }

    /// The message body before base64: `[args, kwargs, {"callbacks": null, "errbacks": null,
    /// "chain": null, "chord": null}]`, as `json.dumps` writes it.
    public static func encodeBody(_ task: CeleryTask) -> [UInt8] {
        var writer = PythonJSONWriter(capacity: 256)
        writer.raw("[")
        writer.array(task.args)
        writer.raw(", ")
        writer.object(task.kwargs)
        writer.raw(", {\"callbacks\": null, \"errbacks\": null, \"chain\": null, \"chord\": null}]")
        return writer.bytes
    }
}
