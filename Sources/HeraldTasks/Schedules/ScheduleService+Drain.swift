// A graceful stop. On SIGTERM the daemon drains the schedules before it tears
// anything down: the engine stops arming and claiming (peers claim every plan this
// instance would have), and what this instance already claimed, at most the lead
// ahead of its time, is pushed at its instant and recorded as enqueued. Without
// this, pre-claimed fires would wait for a peer's sweep, seconds late.

import HeraldIO

extension ScheduleService {
    /// Stops claiming, lets claims in flight finish, pushes every claimed fire at its instant
    /// and marks its claim enqueued, then calls `done` on the loop, at the latest after
    /// `deadline` (what is left then is re-sent by a peer's sweep). Call on the loop; then `stop()`.
    public func drain(deadline: Duration, done: @escaping () -> Void) {
        loop.assertInLoop()
        guard running, !draining else {
            done()
            return
        }
        draining = true
        drainDone = done
        drainDeadline = localNowMicros() + deadline.nanosecondsClamped / 1000
        pendingTriggers.removeAll()
        pendingRunNow.removeAll()
        logger.info(
            "schedules draining",
            metadata: [
                "claims_in_flight": "\(engine.claimsInFlight)", "held_fires": "\(engine.heldFireCount)",
                "claims_open": "\(claimsLeft.count)",
            ])
        // `.push` within the drain window, `.handBack` beyond it, `.stopped` once nothing is held.
        feed(engine.stop(now: now()))
        drainCheck()
    }

    /// Whether nothing claimed here is left to push or record.
    var isDrained: Bool {
        engineStopped && dispatching == 0 && releasing == 0 && claimsLeft.isEmpty && claimsToMark.isEmpty
            && !marking && !runNowInFlight && !sweeping
    }

    func drainCheck() {
        guard draining, let done = drainDone else { return }
        let late = localNowMicros() >= drainDeadline
        guard isDrained || late else {
            drainTimer.schedule(after: .milliseconds(10))
            return
        }
        drainDone = nil
        drainTimer.cancel()
        if late {
            logger.warning(
                "schedules drain deadline passed; peers' sweeps send what is left",
                metadata: [
                    "held_fires": "\(engine.heldFireCount)", "claims_open": "\(claimsLeft.count + claimsToMark.count)",
                ])
        } else {
            logger.info("schedules drained")
        }
        done()
    }
}
