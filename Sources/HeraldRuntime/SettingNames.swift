// The names of every setting Herald reads (each has its section in docs/configuration.md; a
// test holds the two together), and the warnings for the names it does not know: an unknown
// `HERALD_*` variable, or a name a small typo away from a real one (`ENABLE_CLEAN_MESSAGE`,
// `HERALD_SWEEP_INTERVALL`), is reported once at start with the closest known name. Warnings
// only: a Dify `.env` has hundreds of variables Herald has no use for.

import HeraldCore

/// Setting names and typo detection.
public enum SettingNames {
    /// Every setting Herald reads, Herald's own and Dify's.
    public static let known: Set<String> = [
        "RESEND_API_KEY", "RESEND_API_URL", "SENDGRID_API_KEY", "HERALD_SENDGRID_API_URL",
        "API_TOKEN_LAST_USED_UPDATE_INTERVAL", "BILLING_API_SECRET_KEY", "BILLING_API_URL", "BILLING_ENABLED",
        "CELERY_BEAT_SCHEDULER_TIME", "CELERY_BROKER_URL", "CELERY_SENTINEL_MASTER_NAME", "CELERY_SENTINEL_PASSWORD",
        "CELERY_SENTINEL_SOCKET_TIMEOUT", "CELERY_USE_SENTINEL", "CONSOLE_WEB_URL", "DB_CHARSET",
        "DB_DATABASE", "DB_EXTRAS", "DB_HOST", "DB_PASSWORD",
        "DB_PORT", "DB_TYPE", "DB_USERNAME", "ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK",
        "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK", "ENABLE_CLEAN_EMBEDDING_CACHE_TASK", "ENABLE_CLEAN_MESSAGES",
        "ENABLE_CLEAN_OAUTH_ACCESS_TOKENS_TASK",
        "ENABLE_CLEAN_UNUSED_DATASETS_TASK", "ENABLE_CREATE_TIDB_SERVERLESS_TASK", "ENABLE_DATASETS_QUEUE_MONITOR",
        "ENABLE_HUMAN_INPUT_TIMEOUT_TASK",
        "ENABLE_MAIL_CLEAN_DOCUMENT_NOTIFY_TASK", "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK",
        "ENABLE_UPDATE_TIDB_SERVERLESS_STATUS_TASK", "ENABLE_WORKFLOW_RUN_CLEANUP_TASK",
        "ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", "HERALD_DATABASE_URL", "HERALD_DATASET_INDEX_CLEANUP",
        "HERALD_DB_POOL_SIZE", "HERALD_DIFY_VERSION",
        "HERALD_DOCUMENT_NOTIFY_TENANT_BATCH_SIZE", "HERALD_EMBEDDING_CACHE_CLEAN_BATCH_SIZE",
        "HERALD_INDEX_CLEANUP_DISPATCH_BATCH_SIZE", "HERALD_INSTANCE_ID",
        "HERALD_LOG_FORMAT", "HERALD_LOG_LEVEL", "HERALD_METRICS_ADDR", "HERALD_QUEUE_MONITOR_THRESHOLDS",
        "HERALD_QUEUE_MONITOR_LEARN", "HERALD_QUEUE_MONITOR_LEARN_HALF_LIFE",
        "HERALD_QUEUE_SAMPLE_INTERVAL", "HERALD_REDIS_URL",
        "HERALD_RETENTION_BATCH_RETRIES", "HERALD_RETENTION_BATCH_TARGET_MS", "HERALD_RETENTION_LOCK_TIMEOUT_MS",
        "HERALD_RETENTION_MAX_BATCH_GROWTH",
        "HERALD_RETENTION_RETRY_BASE_MS", "HERALD_RETENTION_STATEMENT_TIMEOUT_MS", "HERALD_SCHEDULE_ENCODE_AHEAD",
        "HERALD_SCHEDULE_HORIZON",
        "HERALD_SCHEDULE_LEAD", "HERALD_SCHEDULE_RESEND_AFTER", "HERALD_SMTP_CA_FILE", "HERALD_SMTP_TLS_VERIFY",
        "HERALD_SWEEP_INTERVAL", "HERALD_TOPOLOGY", "HERALD_UNUSED_DATASETS_PAGE_SIZE",
        "HUMAN_INPUT_TIMEOUT_TASK_INTERVAL",
        "LOG_TZ", "MAIL_DEFAULT_SEND_FROM", "MAIL_TYPE", "MARKETPLACE_API_URL", "MARKETPLACE_ENABLED",
        "PLAN_PRO_CLEAN_DAY_SETTING", "PLAN_SANDBOX_CLEAN_DAY_SETTING", "QUEUE_MONITOR_ALERT_EMAILS",
        "QUEUE_MONITOR_INTERVAL",
        "QUEUE_MONITOR_THRESHOLD", "REDIS_DB",
        "REDIS_HOST", "REDIS_KEY_PREFIX", "REDIS_PASSWORD", "REDIS_PORT",
        "REDIS_SENTINELS", "REDIS_SENTINEL_PASSWORD", "REDIS_SENTINEL_SERVICE_NAME", "REDIS_SENTINEL_SOCKET_TIMEOUT",
        "REDIS_SENTINEL_USERNAME", "REDIS_USERNAME", "REDIS_USE_CLUSTERS", "REDIS_USE_SENTINEL",
        "REDIS_USE_SSL", "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL", "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE",
        "SANDBOX_EXPIRED_RECORDS_CLEAN_GRACEFUL_PERIOD",
        "SANDBOX_EXPIRED_RECORDS_CLEAN_TASK_LOCK_TTL", "SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS", "SMTP_LOCAL_HOSTNAME",
        "SMTP_OPPORTUNISTIC_TLS",
        "SMTP_PASSWORD", "SMTP_PORT", "SMTP_SERVER", "SMTP_USERNAME",
        "SMTP_USE_TLS", "TRIGGER_PROVIDER_CREDENTIAL_THRESHOLD_SECONDS", "TRIGGER_PROVIDER_REFRESH_INTERVAL",
        "TRIGGER_PROVIDER_SUBSCRIPTION_THRESHOLD_SECONDS", "WORKFLOW_LOG_CLEANUP_BATCH_MAX_INTERVAL",
        "WORKFLOW_LOG_CLEANUP_BATCH_SIZE",
        "WORKFLOW_LOG_CLEANUP_ENABLED", "WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS", "WORKFLOW_LOG_RETENTION_DAYS",
        "WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK",
        "WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE", "WORKFLOW_SCHEDULE_POLLER_INTERVAL",
        "CREATE_TIDB_SERVICE_JOB_ENABLED", "TIDB_SERVERLESS_NUMBER", "TIDB_API_URL", "TIDB_IAM_API_URL",
        "TIDB_PUBLIC_KEY", "TIDB_PRIVATE_KEY", "TIDB_PROJECT_ID", "TIDB_REGION", "TIDB_SPEND_LIMIT",
    ]

    /// One warning per variable of `environment` that looks like a setting meant for Herald but is
    /// not one, naming the closest known setting when there is one.
    public static func warnings(_ environment: [String: String]) -> [String] {
        var out: [String] = []
        for key in environment.keys.sorted() where !known.contains(key) {
            if key.hasPrefix(TaskSettings.overridePrefix) {
                let dify = String(key.dropFirst(TaskSettings.overridePrefix.count))
                // HERALD_<Dify name> overrides Dify's setting for Herald alone.
                if known.contains(dify) && !dify.hasPrefix(TaskSettings.overridePrefix) { continue }
                let hint = closest(to: key, within: 3).map { "; did you mean \($0)?" } ?? ""
                out.append("unknown setting \(key) is ignored\(hint)")
            } else if key.utf8.count >= 6, let near = closest(to: key, within: 2) {
                out.append("\(key) is not a setting Herald reads; did you mean \(near)?")
            }
        }
        return out
    }

    /// The known name nearest to `name` by edit distance, if it is at most `within`.
    static func closest(to name: String, within limit: Int) -> String? {
        var best: (String, Int)?
        for candidate in known.sorted() {
            let d = distance(Array(name.utf8), Array(candidate.utf8), limit: limit)
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        return best?.0
    }

    /// Levenshtein distance, or `limit + 1` as soon as it must exceed `limit`.
    static func distance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            var rowMin = i + 1
            for (j, y) in b.enumerated() {
                let v = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
                current.append(v)
                rowMin = Swift.min(rowMin, v)
            }
            if rowMin > limit { return limit + 1 }
            previous = current
        }
        return previous[b.count]
    }
}
