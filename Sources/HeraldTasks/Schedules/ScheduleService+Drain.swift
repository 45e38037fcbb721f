// A graceful stop. On SIGTERM the daemon drains the schedules before it tears
// anything down: nothing new is armed or claimed (peers claim every plan this
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
        timer.cancel()
        windowTimer.cancel()
        budgetTimer.cancel()
        heap.removeAll()
        pending.removeAll()
        pendingSet.removeAll()
        pendingVia.removeAll()
        pendingRefresh.removeAll()
        pendingTriggers.removeAll()
        pendingRunNow.removeAll()
        logger.info(
            "schedules draining",
            metadata: [
                "claims_in_flight": "\(inFlight)", "held_instants": "\(heldTimes.count)",
                "claims_open": "\(claimsLeft.count)",
            ])
        drainCheck()
    }

    /// Whether nothing claimed here is left to push or record.
    var isDrained: Bool {
        inFlight == 0 && dispatching == 0 && releasing == 0 && held.isEmpty && claimsLeft.isEmpty
            && claimsToMark.isEmpty && !marking && !runNowInFlight && !sweeping && !refreshInFlight
    }

    func drainCheck() {
        guard draining, let done = drainDone else { return }
        let late = localNowMicros() >= drainDeadline
        guard isDrained || late else {
            drainTimer.schedule(after: .milliseconds(10))
            return
        }
        drainDone = nil
        if late {
            logger.warning(
                "schedules drain deadline passed; peers' sweeps send what is left",
                metadata: [
                    "held_instants": "\(heldTimes.count)", "claims_open": "\(claimsLeft.count + claimsToMark.count)",
                ])
        } else {
            logger.info("schedules drained")
        }
        done()
    }
}
