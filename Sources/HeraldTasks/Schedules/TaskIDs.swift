// Celery task ids of schedule fires. A cron fire's id is derived from (plan,
// scheduled time), so a re-send after a crash carries the same id and the
// broker-side de-duplication recognises it; a run_now fire gets a fresh id.

import HeraldCelery
import HeraldCore

enum TaskIDs {
    static func cron(plan: PlanID, scheduledAt micros: Int64) -> String {
        CeleryMessage.taskID(scheduleID: plan.description, scheduledAt: micros / 1_000_000)
    }

    static func runNow(plan: PlanID) -> String {
        CeleryUUID.v4().description
    }
}
