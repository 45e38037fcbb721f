// The trigger refresh as a daemon service: created when the topology runs
// `trigger_provider_refresh_task` natively (the default) and Dify's switch
// ENABLE_TRIGGER_PROVIDER_REFRESH_TASK is on; started with the schedules once the
// schema is at Herald's version (Daemon.swift, checkSchema).

import HeraldCore
import HeraldIO
import HeraldTasks

extension Daemon {
    func makeTriggerRefresh(pool: PostgresPool) {
        guard let topology, topology.mode(.triggerProviderRefresh) == .native,
            topology.isService(.triggerProviderRefresh)
        else { return }
        guard settings.triggerRefreshEnabled else {
            logger.info(
                "trigger refresh off", metadata: ["setting": "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK"])
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
            metrics: TriggerRefreshMetrics(factory: metrics.factory), options: options, logger: logger)
    }
}
