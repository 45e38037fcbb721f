// The safety net of `celery` ticks. A tick is claimed in herald.task_ticks before
// its message is pushed; an instance that dies in between leaves the tick claimed
// and unsent. On every sweep, any instance takes such ticks over (SKIP LOCKED, so
// each is taken by one instance) and sends them again; the tick's marker on the
// broker drops the copy if the first push did happen.

import CoreMetrics
import HeraldCore
import HeraldIO
import Logging

extension TaskExecutor {
    /// Ticks older than this are left alone: their broker markers (24 h) may be gone.
    static let resendHorizonHours = 23

    /// Candidates: unsent ticks of the given tasks, oldest claim first.
    static let unsentTicksSQL = """
        SELECT task, extract(epoch FROM tick_at)::bigint FROM herald.task_ticks
         WHERE run_mode = 'celery' AND enqueued_at IS NULL
           AND claimed_at < now() - make_interval(secs => $1::double precision)
           AND tick_at > (now() AT TIME ZONE 'UTC') - make_interval(hours => \(resendHorizonHours))
           AND task = ANY($2::text[])
         ORDER BY claimed_at
         LIMIT 500
        """

    /// Takes one tick over, only if it is still unsent and nobody took it meanwhile: of two
    /// instances racing for it, the second finds `claimed_at` fresh and changes nothing.
    static let takeOverTickSQL = """
        UPDATE herald.task_ticks SET claimed_by = $1, claimed_at = now()
         WHERE task = $2 AND tick_at = to_timestamp($3::double precision) AT TIME ZONE 'UTC'
           AND run_mode = 'celery' AND enqueued_at IS NULL
           AND claimed_at < now() - make_interval(secs => $4::double precision)
        """

    /// Takes over ticks of this instance's enabled `celery` tasks that were claimed more than
    /// `seconds` ago and never recorded as enqueued, and sends them again (once each, across
    /// instances). One tick per task per call, the oldest, and none for a task whose run is in
    /// flight (the mediator would join the tick to that run); the sweep calls again soon.
    /// Call on the loop, from the daemon's sweep.
    public func resendUnsentTicks(olderThan seconds: Double) {
        loop.assertInLoop()
        guard running, !resendInFlight else { return }
        let busy = Set(mediator.activeRuns.map(\.task))
        let celery = mediator.graph.order.filter {
            mode($0) == .celery && !mediator.disabled.contains($0) && !busy.contains($0)
        }
        guard !celery.isEmpty else { return }
        resendInFlight = true
        let instance = instanceID
        let names = "{" + celery.map(\.rawValue).joined(separator: ",") + "}"
        pool.run(
            on: loop,
            { c -> [(TaskName, Int64)] in
                var oldest: [String: Int64] = [:]
                var order: [String] = []
                for row in try c.query(Self.unsentTicksSQL, [String(seconds), names]).rows {
                    guard let task = row[0], let tick = row[1].flatMap({ Int64($0) }), oldest[task] == nil else {
                        continue
                    }
                    oldest[task] = tick
                    order.append(task)
                }
                var taken: [(TaskName, Int64)] = []
                for task in order {
                    let tick = oldest[task]!
                    if try c.query(Self.takeOverTickSQL, [instance, task, String(tick), String(seconds)]).affected == 1
                    {
                        taken.append((TaskName(rawValue: task), tick))
                    }
                }
                return taken
            }
        ) { [self] result in
            resendInFlight = false
            switch result {
            case .success(let ticks):
                guard running, !stopped else { return }
                for (task, tick) in ticks {
                    logger.warning(
                        "celery tick claimed but never enqueued: sending it again",
                        metadata: ["task": "\(task)", "tick_at": "\(tick)"])
                    resentTicks?.increment()
                    runTick(task, at: tick)
                }
            case .failure(let error):
                logger.error("cannot look for unsent celery ticks", metadata: ["error": "\(error)"])
            }
        }
    }
}
