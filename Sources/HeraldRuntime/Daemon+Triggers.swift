// The daemon services besides the workflow schedules: the trigger refresh, created
// when the topology runs `trigger_provider_refresh_task` natively (the default) and
// Dify's switch ENABLE_TRIGGER_PROVIDER_REFRESH_TASK is on, and the plugin upgrade
// checks, when `check_upgradable_plugin_task` runs natively and its enable settings
// (ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK, MARKETPLACE_ENABLED) are on. Both start with
// the schedules once the schema is at Herald's version (Daemon.swift, checkSchema).

import HeraldCore
import HeraldIO
import HeraldTasks

extension Daemon {
    /// Whether the service of `name` (a service task) runs here.
    func serviceRunning(_ name: TaskName) -> Bool {
        switch name {
        case .triggerProviderRefresh: return triggerRefresh != nil
        case .checkUpgradablePlugin: return pluginChecks != nil
        case .queueMonitor: return queueMonitor?.alerting ?? false
        default: return schedules != nil
        }
    }

    /// Samples the monitored queues whenever the topology marks any; mails about them when
    /// `queue_monitor_task` runs natively, is enabled (ENABLE_DATASETS_QUEUE_MONITOR) and has
    /// recipients and a mail transport.
    func makeQueueMonitor() {
        guard let topology else { return }
        let queues = topology.topology.queues.filter(\.monitored).map(\.name)
        guard !queues.isEmpty else { return }
        var mail: MailSettings.Transport?
        let qm = settings.queueMonitor
        if topology.mode(.queueMonitor) == .native,
            let task = topology.topology.tasks.first(where: { $0.name == .queueMonitor }),
            (try? task.disablingSettings(TaskSettings(taskEnvironment)))?.isEmpty == true
        {
            if qm.recipients.isEmpty {
                logger.warning(
                    "queue monitor: no QUEUE_MONITOR_ALERT_EMAILS, so no alert mails (lengths are still exported)")
            } else {
                do {
                    mail = try MailSettings.load(from: taskEnvironment).transport(requiredBy: "queue_monitor_task")
                    if mail == nil { logger.warning("queue monitor: MAIL_TYPE is not set, so no alert mails") }
                } catch {
                    logger.error("queue monitor: no alert mails: \(error)")
                }
            }
        }
        let monitor = QueueMonitor(
            loop: loop, broker: settings.celeryBroker, redisKeyPrefix: settings.redisKeyPrefix, queues: queues,
            settings: qm, mail: mail, factory: metrics.factory, logger: logger)
        queueMonitor = monitor
        monitor.start()
    }

    func makeTriggerRefresh(pool: PostgresPool) {
        // Every documented metric exists from start, whether the service runs or not.
        let triggerMetrics = TriggerRefreshMetrics(factory: metrics.factory)
        PluginCheckService.metrics(metrics.factory)
        guard let topology, topology.mode(.triggerProviderRefresh) == .native,
            topology.isService(.triggerProviderRefresh)
        else { return }
        guard settings.triggerRefreshEnabled else {
            logger.info("trigger refresh off", metadata: ["setting": "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK"])
            return
        }
        var options = TriggerRefreshOptions()
        options.credentialThreshold = settings.triggerCredentialThreshold
        options.subscriptionThreshold = settings.triggerSubscriptionThreshold
        options.horizonSeconds = settings.scheduleHorizonSeconds
        options.resendAfterSeconds = settings.scheduleResendAfterSeconds
        triggerRefresh = TriggerRefreshService(
            loop: loop, pool: pool, app: settings.redis, broker: settings.celeryBroker,
            redisKeyPrefix: settings.redisKeyPrefix, instanceID: settings.instanceID,
            metrics: triggerMetrics, options: options, logger: logger)
    }

    func makePluginChecks(pool: PostgresPool) {
        guard let topology, topology.mode(.checkUpgradablePlugin) == .native,
            topology.isService(.checkUpgradablePlugin),
            let task = topology.topology.tasks.first(where: { $0.name == .checkUpgradablePlugin })
        else { return }
        let off = (try? task.disablingSettings(TaskSettings(taskEnvironment))) ?? []
        guard off.isEmpty else {
            logger.info("plugin upgrade checks off", metadata: ["settings": "\(off.map(\.key))"])
            return
        }
        var options = PluginCheckOptions()
        options.marketplaceURL = settings.marketplaceURL
        options.difyVersion = settings.difyVersion
        options.resendAfterSeconds = settings.scheduleResendAfterSeconds
        options.guarded = { body in try Circuits.shared.call(Circuits.marketplaceAPI) { try body() } }
        pluginChecks = PluginCheckService(
            loop: loop, pool: pool, app: settings.redis, broker: settings.celeryBroker,
            redisKeyPrefix: settings.redisKeyPrefix, instanceID: settings.instanceID, factory: metrics.factory,
            options: options, logger: logger)
    }
}
