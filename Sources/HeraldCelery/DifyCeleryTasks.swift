// The Dify task names and queues Herald enqueues onto, in one place, with the
// argument shapes Dify's own producers use (positional for run_schedule_trigger,
// keywords for trigger_subscription_refresh), so a worker sees the same call.

/// A Celery task name and the queue Dify routes it to.
public struct CeleryTaskName: Sendable, Hashable, CustomStringConvertible {
    /// The dotted Python name the worker registered.
    public let name: String
    /// The queue the task is declared on (`@shared_task(queue=...)`).
    public let queue: String

    /// A name bound to its queue.
    public init(_ name: String, queue: String) {
        self.name = name
        self.queue = queue
    }

    /// The dotted name.
    public var description: String { name }
}

/// Dify's Celery tasks that Herald enqueues, with the argument shapes Dify's own producers use.
public enum DifyCeleryTasks {
    /// `tasks.workflow_schedule_tasks.run_schedule_trigger(schedule_id)` on `schedule_executor`.
    public static let runScheduleTrigger = CeleryTaskName(
        "tasks.workflow_schedule_tasks.run_schedule_trigger", queue: "schedule_executor")

    /// `tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh(tenant_id=, subscription_id=)`
    /// on `trigger_refresh_executor`.
    public static let triggerSubscriptionRefresh = CeleryTaskName(
        "tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh", queue: "trigger_refresh_executor")

    /// `tasks.process_tenant_plugin_autoupgrade_check_task.process_tenant_plugin_autoupgrade_check_task(
    /// tenant_id, strategy_setting, upgrade_time_of_day, upgrade_mode, exclude_plugins, include_plugins)`
    /// on `plugin`.
    public static let processTenantPluginAutoupgradeCheck = CeleryTaskName(
        "tasks.process_tenant_plugin_autoupgrade_check_task.process_tenant_plugin_autoupgrade_check_task",
        queue: "plugin")

    /// Every name above, for workers and checks that need the whole set.
    public static let all: [CeleryTaskName] = [
        runScheduleTrigger, triggerSubscriptionRefresh, processTenantPluginAutoupgradeCheck,
    ]

    /// A schedule firing: positional `[schedule_id]`, as the poller's `run_schedule_trigger.s(schedule_id)`.
    public static func runScheduleTrigger(scheduleID: String, taskID: String) -> CeleryTask {
        CeleryTask(
            name: runScheduleTrigger.name, queue: runScheduleTrigger.queue, id: taskID,
            args: [.string(scheduleID)])
    }

    /// A credential/subscription refresh: keywords `tenant_id`, `subscription_id`, in that order.
    public static func triggerSubscriptionRefresh(
        tenantID: String, subscriptionID: String,
        taskID: String
    ) -> CeleryTask {
        CeleryTask(
            name: triggerSubscriptionRefresh.name, queue: triggerSubscriptionRefresh.queue, id: taskID,
            kwargs: [
                CeleryMember("tenant_id", .string(tenantID)),
                CeleryMember("subscription_id", .string(subscriptionID)),
            ])
    }

    /// The per-tenant plugin upgrade check, positional as Dify's `.delay(...)` sends it.
    /// `upgradeTimeOfDay` is seconds after UTC midnight.
    public static func processTenantPluginAutoupgradeCheck(
        tenantID: String, strategySetting: String, upgradeTimeOfDay: Int64, upgradeMode: String,
        excludePlugins: [String], includePlugins: [String], taskID: String
    ) -> CeleryTask {
        let task = processTenantPluginAutoupgradeCheck
        return CeleryTask(
            name: task.name, queue: task.queue, id: taskID,
            args: [
                .string(tenantID), .string(strategySetting), .int(upgradeTimeOfDay), .string(upgradeMode),
                .array(excludePlugins.map { .string($0) }), .array(includePlugins.map { .string($0) }),
            ])
    }
}
