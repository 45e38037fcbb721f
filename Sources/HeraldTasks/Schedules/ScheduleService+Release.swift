// Releasing pre-claimed fires at their time. A claim may take a few hundred
// milliseconds for thousands of plans, so fires are claimed up to
// `leadMicros` ahead, their Celery messages encoded, and held here; a second
// timer pushes each group at its scheduled instant (database clock) from a
// dedicated push thread, then the fires are marked enqueued on the pool.

import Foundation
import HeraldCore
import HeraldIO

extension ScheduleService {
    /// Fires per push at release time.
    static let releaseChunk = 500

    /// Keeps pre-claimed fires until their time.
    func hold(_ prepared: [PreparedFire], via: ScheduleMetrics.Via) {
        guard !prepared.isEmpty else { return }
        for p in prepared {
            let t = p.fire.scheduledAt
            if held[t] == nil { heldTimes.push(t) }
            held[t, default: []].append((p, via))
        }
        armRelease()
    }

    func armRelease() {
        guard running, let t = heldTimes.peek else {
            releaseTimer.cancel()
            return
        }
        releaseTimer.schedule(after: .microseconds(max(0, t - skewMicros - localNowMicros())))
    }

    /// Pushes every held fire whose time has come.
    func releaseDue() {
        let dbNow = localNowMicros() + skewMicros
        var batch: [(PreparedFire, ScheduleMetrics.Via)] = []
        while let t = heldTimes.peek, t <= dbNow {
            heldTimes.pop()
            batch += held.removeValue(forKey: t) ?? []
        }
        armRelease()
        guard !batch.isEmpty else { return }
        // Pushed in chunks, so the first messages reach the queue while later ones are
        // still being written, and memory for the wire form stays bounded.
        let dispatcher = pushDispatcher
        var start = 0
        while start < batch.count {
            let chunk = batch[start..<min(start + Self.releaseChunk, batch.count)]
            start += chunk.count
            let prepared = chunk.map(\.0)
            let vias = chunk.map(\.1)
            pushQueue.async { [self] in
                var d = Delivery()
                do {
                    let pushed = try dispatcher.push(prepared)
                    d.enqueuedAtMicros = localNowMicros()
                    d.pushed = pushed.filter { $0 }.count
                    d.duplicates = pushed.count - d.pushed
                } catch {
                    d.error = error
                }
                let delivery = d
                loop.execute { [self] in released(prepared.map(\.fire), vias: vias, delivery: delivery) }
            }
        }
    }

    private func released(_ fires: [ClaimedFire], vias: [ScheduleMetrics.Via], delivery: Delivery) {
        var byVia: [ScheduleMetrics.Via: [ClaimedFire]] = [:]
        for (f, v) in zip(fires, vias) { byVia[v, default: []].append(f) }
        for (v, fs) in byVia { record(delivery, fires: fs, via: v) }
        guard delivery.error == nil else { return }  // unmarked: the sweep re-sends after their time
        let store = self.store
        pool.run(on: loop, { c in try store.markEnqueued(c, fires) }) { [self] result in
            if case .failure(let e) = result { reportError("marking fires enqueued", e) }
        }
    }
}

/// A binary min-heap of instants (µs).
struct TimeHeap: Sendable {
    private var items: [Int64] = []

    var peek: Int64? { items.first }
    var count: Int { items.count }

    mutating func push(_ t: Int64) {
        items.append(t)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        let last = items.removeLast()
        guard !items.isEmpty else { return }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[l] < items[m] { m = l }
            if r < items.count, items[r] < items[m] { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}
