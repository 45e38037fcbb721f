// Task names are stable identifiers: they appear in the topology, logs, metrics
// labels and status events, and they are Dify's own (the `api/schedule` module
// names), so an operator who knows Dify's beat table recognises every task. One
// typed constant per Dify beat entry lives here and nowhere else.

/// The name of a task, as the topology, logs and metrics spell it.
///
/// Names are lower-case ASCII letters, digits, `_`, `-` and `.`; the constants below
/// are Dify's beat tasks (the `beat_schedule` of Dify's `api/extensions/ext_celery.py`),
/// named after their `api/schedule` module.
public struct TaskName: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The name as written.
    public let rawValue: String

    /// Wraps `rawValue` without checking it; see ``isValid(_:)``.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A literal name (tests and the constants below).
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }

    public static func < (a: TaskName, b: TaskName) -> Bool { a.rawValue < b.rawValue }

    /// Whether `text` is an acceptable task (or queue, source, route) name:
    /// 1–128 characters from `a-z 0-9 _ - .`, starting with a letter.
    public static func isValid(_ text: String) -> Bool {
        guard let first = text.utf8.first, (97...122).contains(first), text.utf8.count <= 128 else { return false }
        return text.utf8.allSatisfy { b in
            (97...122).contains(b) || (48...57).contains(b) || b == 95 || b == 45 || b == 46
        }
    }

    // MARK: Dify's beat tasks (`beat_schedule` in Dify's api/extensions/ext_celery.py)

    /// `workflow_schedule_task`: claims due workflow schedule plans and enqueues their runs.
    public static let workflowSchedule: TaskName = "workflow_schedule_task"
    /// `trigger_provider_refresh_task`: enqueues refreshes of expiring trigger credentials.
    public static let triggerProviderRefresh: TaskName = "trigger_provider_refresh_task"
    /// `queue_monitor_task`: Celery queue lengths and the backlog alert mail.
    public static let queueMonitor: TaskName = "queue_monitor_task"
    /// `clean_messages`: plan-aware deletion of expired messages.
    public static let cleanMessages: TaskName = "clean_messages"
    /// `clean_unused_datasets_task`: disables the documents of stale datasets.
    public static let cleanUnusedDatasets: TaskName = "clean_unused_datasets_task"
    /// `clean_embedding_cache_task`: deletes expired embedding cache rows.
    public static let cleanEmbeddingCache: TaskName = "clean_embedding_cache_task"
    /// `clean_workflow_runlogs_precise`: cascades ended workflow runs and their logs.
    public static let cleanWorkflowRunLogsPrecise: TaskName = "clean_workflow_runlogs_precise"
    /// `clean_workflow_runs_task` (Dify ≥ 1.11.3, SaaS): free-plan workflow run cleanup.
    public static let cleanWorkflowRuns: TaskName = "clean_workflow_runs_task"
    /// `clean_oauth_access_tokens_task` (Dify main after 1.14.2): expired OAuth tokens.
    public static let cleanOAuthAccessTokens: TaskName = "clean_oauth_access_tokens_task"
    /// `create_tidb_serverless_task`: keeps the pool of idle TiDB Serverless clusters.
    public static let createTiDBServerless: TaskName = "create_tidb_serverless_task"
    /// `update_tidb_serverless_status_task`: moves CREATING clusters to ACTIVE.
    public static let updateTiDBServerlessStatus: TaskName = "update_tidb_serverless_status_task"
    /// `check_upgradable_plugin_task`: dispatches per-tenant plugin upgrade checks.
    public static let checkUpgradablePlugin: TaskName = "check_upgradable_plugin_task"
    /// `mail_clean_document_notify_task`: mails owners about auto-disabled documents.
    public static let mailCleanDocumentNotify: TaskName = "mail_clean_document_notify_task"
    /// `update_api_token_last_used_task` (Dify ≥ 1.13): flushes API token last-used times.
    public static let updateAPITokenLastUsed: TaskName = "update_api_token_last_used_task"
    /// `human_input_form_timeout` (Dify's tasks package, not `api/schedule`): resumes timed-out forms.
    public static let humanInputFormTimeout: TaskName = "human_input_form_timeout"
}

/// One row of Dify's beat table: the names a Dify operator sees for a task.
public struct DifyBeatEntry: Sendable, Hashable {
    /// Herald's task name.
    public let task: TaskName
    /// The key of the entry in Celery's `beat_schedule`.
    public let beatKey: String
    /// The Celery task name (`module.func`) the beat entry sends.
    public let celeryName: String

    /// Every entry of Dify's `beat_schedule` (`api/extensions/ext_celery.py`) that Herald names.
    public static let all: [DifyBeatEntry] = [
        .init(
            task: .cleanEmbeddingCache, beatKey: "clean_embedding_cache_task",
            celeryName: "schedule.clean_embedding_cache_task.clean_embedding_cache_task"),
        .init(
            task: .cleanUnusedDatasets, beatKey: "clean_unused_datasets_task",
            celeryName: "schedule.clean_unused_datasets_task.clean_unused_datasets_task"),
        .init(
            task: .createTiDBServerless, beatKey: "create_tidb_serverless_task",
            celeryName: "schedule.create_tidb_serverless_task.create_tidb_serverless_task"),
        .init(
            task: .updateTiDBServerlessStatus, beatKey: "update_tidb_serverless_status_task",
            celeryName: "schedule.update_tidb_serverless_status_task.update_tidb_serverless_status_task"),
        .init(task: .cleanMessages, beatKey: "clean_messages", celeryName: "schedule.clean_messages.clean_messages"),
        .init(
            task: .mailCleanDocumentNotify, beatKey: "mail_clean_document_notify_task",
            celeryName: "schedule.mail_clean_document_notify_task.mail_clean_document_notify_task"),
        .init(
            task: .queueMonitor, beatKey: "datasets-queue-monitor",
            celeryName: "schedule.queue_monitor_task.queue_monitor_task"),
        .init(
            task: .checkUpgradablePlugin, beatKey: "check_upgradable_plugin_task",
            celeryName: "schedule.check_upgradable_plugin_task.check_upgradable_plugin_task"),
        .init(
            task: .cleanWorkflowRunLogsPrecise, beatKey: "clean_workflow_runlogs_precise",
            celeryName: "schedule.clean_workflow_runlogs_precise.clean_workflow_runlogs_precise"),
        .init(
            task: .cleanWorkflowRuns, beatKey: "clean_workflow_runs_task",
            celeryName: "schedule.clean_workflow_runs_task.clean_workflow_runs_task"),
        .init(
            task: .cleanOAuthAccessTokens, beatKey: "clean_oauth_access_tokens_task",
            celeryName: "schedule.clean_oauth_access_tokens_task.clean_oauth_access_tokens_task"),
        .init(
            task: .workflowSchedule, beatKey: "workflow_schedule_task",
            celeryName: "schedule.workflow_schedule_task.poll_workflow_schedules"),
        .init(
            task: .triggerProviderRefresh, beatKey: "trigger_provider_refresh",
            celeryName: "schedule.trigger_provider_refresh_task.trigger_provider_refresh"),
        .init(
            task: .updateAPITokenLastUsed, beatKey: "batch_update_api_token_last_used",
            celeryName: "schedule.update_api_token_last_used_task.batch_update_api_token_last_used"),
        .init(
            task: .humanInputFormTimeout, beatKey: "human_input_form_timeout",
            celeryName: "human_input_form_timeout.check_and_resume"),
    ]

    /// The entry for `task`, if it is one of Dify's beat tasks.
    public static func entry(for task: TaskName) -> DifyBeatEntry? { all.first { $0.task == task } }
}
