// Dispatching claimed fires. The push thread encodes a claim's chunks (the
// whole EVALSHA command) while the pool goes on claiming, pushes the ones
// already due and hands back the rest. A claim may take tens of milliseconds
// for thousands of plans, so fires are claimed up to `leadMicros` ahead and
// held here; a second timer pushes every chunk due at an instant (database
// clock) in one pipeline from the push thread. A claim is marked enqueued on
// the pool once its last chunk is out.

import Foundation
import HeraldCore
import HeraldIO

extension ScheduleService {
    /// Hands a timer or event claim to the push thread, so that the pool goes on claiming while
    /// its fires are encoded: the ones already due are pushed at once, the rest held for their time.
    func dispatch(_ r: ClaimResult, via: ScheduleMetrics.Via) {
        let dispatcher = pushDispatcher, encodeAhead = options.encodeAhead
        dispatching += 1
        pushQueue.async { [self] in
            let chunks = dispatcher.chunks(claim: r.claim, fires: r.fires, encoded: false)
            let due = chunks.filter { $0.scheduledAt <= r.dbNow }
            // Held chunks are encoded now, up to `encodeAhead` fires held encoded at once (about
            // 1.1 KB each); the rest of a larger burst is encoded as it is pushed.
            let later = chunks.filter { $0.scheduledAt > r.dbNow }.map { chunk in
                guard dispatcher.encodedAhead + chunk.fires.count <= encodeAhead else { return chunk }
                dispatcher.encodedAhead += chunk.fires.count
                return dispatcher.encoded(chunk)
            }
            let delivery = Self.push(due, on: dispatcher)
            loop.execute { [self] in dispatched(r.claim, due: due, delivery: delivery, held: later, via: via) }
        }
    }

    private func dispatched(
        _ claim: Int64, due: [FireChunk], delivery: Delivery, held later: [FireChunk], via: ScheduleMetrics.Via
    ) {
        dispatching -= 1
        if !due.isEmpty { record(delivery, fires: due.flatMap(\.fires), via: via) }
        if delivery.error == nil {
            // Marked enqueued when its last chunk is out; a failed push leaves it to the sweep.
            if later.isEmpty {
                claimsToMark.append((claim, due.map(\.marker)))
                markClaims()
            } else {
                claimsLeft[claim] = (later.count, due.map(\.marker))
            }
        }
        hold(later, via: via)
    }

    /// Keeps pre-claimed fires until their time.
    func hold(_ chunks: [FireChunk], via: ScheduleMetrics.Via) {
        guard !chunks.isEmpty else { return }
        for c in chunks {
            let t = c.scheduledAt
            if held[t] == nil { heldTimes.push(t) }
            held[t, default: []].append((c, via))
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
        var batch: [(FireChunk, ScheduleMetrics.Via)] = []
        while let t = heldTimes.peek, t <= dbNow {
            heldTimes.pop()
            batch += held.removeValue(forKey: t) ?? []
        }
        armRelease()
        guard !batch.isEmpty else { return }
        let dispatcher = pushDispatcher
        let chunks = batch.map(\.0)
        let vias = batch.map(\.1)
        releasing += 1
        pushQueue.async { [self] in
            dispatcher.encodedAhead -= chunks.reduce(0) { $0 + ($1.isEncoded ? $1.fires.count : 0) }
            let result = Result { try dispatcher.push(chunks) }
            let at = localNowMicros()
            loop.execute { [self] in released(chunks, vias: vias, result: result, at: at) }
        }
    }

    private func released(
        _ chunks: [FireChunk], vias: [ScheduleMetrics.Via], result: Result<[Bool], any Error>, at: Int64
    ) {
        releasing -= 1
        var byVia: [ScheduleMetrics.Via: (fires: [ClaimedFire], delivery: Delivery)] = [:]
        let pushed = (try? result.get()) ?? []
        for (i, (chunk, via)) in zip(chunks, vias).enumerated() {
            var entry = byVia[via] ?? ([], Delivery(enqueuedAtMicros: at))
            entry.fires += chunk.fires
            if case .failure(let e) = result {
                entry.delivery.error = e
            } else if pushed[i] {
                entry.delivery.pushed += chunk.fires.count
            } else {
                entry.delivery.duplicates += chunk.fires.count
            }
            byVia[via] = entry
        }
        for (via, entry) in byVia { record(entry.delivery, fires: entry.fires, via: via) }
        for chunk in chunks {
            guard var entry = claimsLeft[chunk.claim] else { continue }
            if case .failure = result {
                claimsLeft[chunk.claim] = nil  // left open: the sweep re-sends it after its time
                continue
            }
            entry.left -= 1
            entry.markers.append(chunk.marker)
            if entry.left <= 0 {
                claimsLeft[chunk.claim] = nil
                claimsToMark.append((chunk.claim, entry.markers))
            } else {
                claimsLeft[chunk.claim] = entry
            }
        }
        markClaims()
    }

    /// Marks finished claims enqueued, one UPDATE at a time for all that are waiting, then
    /// shortens their markers' lives in the broker.
    func markClaims() {
        guard !marking, !claimsToMark.isEmpty else { return }
        let done = claimsToMark
        claimsToMark.removeAll()
        marking = true
        let store = self.store
        pool.run(on: loop, { c in try store.markEnqueued(c, claims: done.map(\.claim)) }) { [self] result in
            marking = false
            switch result {
            case .success:
                let dispatcher = pushDispatcher
                pushQueue.async { try? dispatcher.settle(markers: done.flatMap(\.markers)) }
            case .failure(let e):
                reportError("marking fires enqueued (the sweep re-sends them; the broker drops the copies)", e)
            }
            markClaims()
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
