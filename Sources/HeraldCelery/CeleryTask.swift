// One Celery task invocation as Herald hands it to the encoder: which task, on
// which queue, with which arguments and id. The optional fields mirror the
// per-call options of Celery's `apply_async` that Herald actually uses.

/// A task to enqueue: the Python task name, the queue, the arguments and the task id.
public struct CeleryTask: Sendable, Equatable {
    /// The registered Celery task name, e.g. `tasks.workflow_schedule_tasks.run_schedule_trigger`.
    public var name: String
    /// The queue (kombu routing key on the default exchange), e.g. `schedule_executor`.
    public var queue: String
    /// The task id (`headers.id`, `root_id`, `correlation_id`); see `CeleryMessage.taskID`.
    public var id: String
    /// Positional arguments (a Python tuple on the worker).
    public var args: [CeleryValue]
    /// Keyword arguments, in order.
    public var kwargs: [CeleryMember]
    /// The `ignore_result` header. Dify runs Celery with `task_ignore_result=True`, so its
    /// `.delay()`/`apply_async` calls send `true`. (`send_task` of an unregistered name sends
    /// `false` up to Celery 5.6 and `null` from 5.7; workers do not read it for JSON tasks.)
    public var ignoreResult: Bool?

    /// A task invocation. `ignoreResult` defaults to Dify's `task_ignore_result=True`.
    public init(
        name: String, queue: String, id: String, args: [CeleryValue] = [],
        kwargs: [CeleryMember] = [], ignoreResult: Bool? = true
    ) {
        self.name = name
        self.queue = queue
        self.id = id
        self.args = args
        self.kwargs = kwargs
        self.ignoreResult = ignoreResult
    }
}
