// Dispatching claimed fires. The push thread encodes a claim's chunks (the whole
// EVALSHA command) while the pool goes on claiming, and keeps them until the engine
// releases them: DueTimeEngine asks for `.push` of a claim's fires at their due
// instant (database clock), and the push thread writes every chunk of that instant
// in one pipeline. A claim is marked enqueued on the pool once its last chunk is out.

import Foundation
import HeraldCore
import HeraldIO

extension ScheduleService {
    /// Hands a timer or event claim to the push thread, so that the pool goes on claiming while its
    /// fires are encoded. Its chunks wait there for the engine's `.push`; a `.push` that comes before
    /// the encoding is done queues behind it on the serial push queue, so it finds them.
    func dispatch(_ r: ClaimResult, via: ScheduleMetrics.Via) {
        let dispatcher = pushDispatcher, encodeAhead = options.encodeAhead, book = heldChunks
        claimsLeft[r.claim] = (Set(r.fires.map(\.scheduledAt)).count, [])
        dispatching += 1
        pushQueue.async { [self] in
            let chunks = dispatcher.chunks(claim: r.claim, fires: r.fires, encoded: false)
            // Chunks due at once are pushed right after, encoded as they go. Held ones are encoded
            // now, up to `encodeAhead` fires held encoded at once (about 1.1 KB each); the rest of a
            // larger burst is encoded as it is pushed.
            let ready = chunks.map { chunk in
                guard chunk.scheduledAt > r.dbNow, dispatcher.encodedAhead + chunk.fires.count <= encodeAhead else {
                    return chunk
                }
                dispatcher.encodedAhead += chunk.fires.count
                return dispatcher.encoded(chunk)
            }
            book.add(claim: r.claim, chunks: ready, via: via)
            loop.execute { [self] in dispatching -= 1 }
        }
    }

    /// `.push`: every chunk of these releases, in one pipeline on the push thread.
    func push(_ releases: [Engine.Release]) {
        let dispatcher = pushDispatcher, book = heldChunks
        releasing += 1
        pushQueue.async { [self] in
            let taken = book.take(releases, dispatcher: dispatcher)
            let chunks = taken.flatMap(\.chunks)
            let result = Result { try dispatcher.push(chunks) }
            let at = localNowMicros()
            loop.execute { [self] in released(taken, result: result, at: at) }
        }
    }

    private func released(_ taken: [HeldChunks.Taken], result: Result<[Bool], any Error>, at: Int64) {
        releasing -= 1
        var byVia: [ScheduleMetrics.Via: (fires: [ClaimedFire], delivery: Delivery)] = [:]
        let pushed = (try? result.get()) ?? []
        var i = 0
        for release in taken {
            var entry = byVia[release.via] ?? ([], Delivery(enqueuedAtMicros: at))
            for chunk in release.chunks {
                entry.fires += chunk.fires
                if case .failure(let e) = result {
                    entry.delivery.error = e
                } else if pushed[i] {
                    entry.delivery.pushed += chunk.fires.count
                } else {
                    entry.delivery.duplicates += chunk.fires.count
                }
                i += 1
            }
            byVia[release.via] = entry
        }
        for (via, entry) in byVia { record(entry.delivery, fires: entry.fires, via: via) }
        guard running else { return }
        for release in taken {
            guard var entry = claimsLeft[release.claim] else { continue }
            if case .failure = result {
                claimsLeft[release.claim] = nil  // left open: the sweep re-sends it after its time
                continue
            }
            entry.left -= 1
            entry.markers += release.chunks.map(\.marker)
            if entry.left <= 0 {
                claimsLeft[release.claim] = nil
                claimsToMark.append((release.claim, entry.markers))
            } else {
                claimsLeft[release.claim] = entry
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
                reportError(
                    .markEnqueued, "marking fires enqueued (the sweep re-sends them; the broker drops the copies)", e)
            }
            markClaims()
        }
    }
}

/// Claimed chunks waiting for their release, by claim and scheduled time (µs). Used only on the
/// schedule service's push queue (hence `@unchecked Sendable`).
final class HeldChunks: @unchecked Sendable {
    /// The chunks of one release (a claim's fires due at one instant).
    struct Taken: Sendable {
        var claim: Int64
        var via: ScheduleMetrics.Via
        var chunks: [FireChunk]
    }

    private var byClaim: [Int64: (via: ScheduleMetrics.Via, byTime: [Int64: [FireChunk]])] = [:]

    func add(claim: Int64, chunks: [FireChunk], via: ScheduleMetrics.Via) {
        var byTime: [Int64: [FireChunk]] = [:]
        for c in chunks { byTime[c.scheduledAt, default: []].append(c) }
        byClaim[claim] = (via, byTime)
    }

    /// Removes and returns the chunks of `releases`, in their order; a release whose chunks are not
    /// here (the service stopped meanwhile) gives none.
    func take(_ releases: [DueTimeEngine<PlanID>.Release], dispatcher: FireDispatcher) -> [Taken] {
        var out: [Taken] = []
        for r in releases {
            guard var entry = byClaim[r.claim], let chunks = entry.byTime[r.dueAtMicros] else { continue }
            entry.byTime[r.dueAtMicros] = nil
            byClaim[r.claim] = entry.byTime.isEmpty ? nil : entry
            dispatcher.encodedAhead -= chunks.reduce(0) { $0 + ($1.isEncoded ? $1.fires.count : 0) }
            out.append(Taken(claim: r.claim, via: entry.via, chunks: chunks))
        }
        return out
    }

    /// Forgets the chunks of `releases` (handed back: the sweep sends them).
    func drop(_ releases: [DueTimeEngine<PlanID>.Release], dispatcher: FireDispatcher) {
        _ = take(releases, dispatcher: dispatcher)
    }

    func removeAll() { byClaim.removeAll() }
}
