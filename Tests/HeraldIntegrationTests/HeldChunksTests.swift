// How the schedule service maps DueTimeEngine's releases onto encoded chunks
// (HeldChunks in Sources/HeraldTasks/Schedules/ScheduleService+Release.swift): a
// release (claim, instant) takes exactly that claim's chunks of that instant, and
// the encode-ahead count falls by the encoded fires taken. No server is needed.

import Foundation
import HeraldCelery
import HeraldCore
import XCTest

@testable import HeraldTasks

final class HeldChunksTests: XCTestCase {
    private let t0: Int64 = 1_767_225_600_000_000

    private func fires(_ n: Int, at: Int64) -> [ClaimedFire] {
        (0..<n).map { _ in
            let plan = PlanID(UUID().uuidString)!
            return ClaimedFire(
                plan: plan, scheduledAt: at, kind: .cron,
                taskID: CeleryMessage.taskID(scheduleID: plan.description, scheduledAt: at / 1_000_000))
        }
    }

    func testAReleaseTakesItsClaimsChunksOfItsInstantOnly() throws {
        let dispatcher = FireDispatcher(
            broker: try RedisEndpoint.parse("redis://127.0.0.1:1/0"), redisKeyPrefix: "", instanceID: "test")
        let book = HeldChunks()
        let first = fires(600, at: t0), second = fires(3, at: t0 + 1_000_000)
        // Claim 7: two chunks at t0 (500 + 100 fires, the first encoded ahead), one at t0 + 1 s.
        var chunks = dispatcher.chunks(claim: 7, fires: first + second, encoded: false)
        XCTAssertEqual(chunks.map(\.fires.count), [500, 100, 3])
        chunks[0] = dispatcher.encoded(chunks[0])
        dispatcher.encodedAhead = 500
        book.add(claim: 7, chunks: chunks, via: .timer)
        book.add(claim: 8, chunks: dispatcher.chunks(claim: 8, fires: fires(2, at: t0), encoded: false), via: .event)

        typealias Release = DueTimeEngine<PlanID>.Release
        let taken = book.take(
            [Release(claim: 7, dueAtMicros: t0, ids: []), Release(claim: 9, dueAtMicros: t0, ids: [])],
            dispatcher: dispatcher)
        XCTAssertEqual(taken.count, 1, "a release whose chunks are not held gives none")
        XCTAssertEqual(taken[0].claim, 7)
        XCTAssertEqual(taken[0].via, .timer)
        XCTAssertEqual(taken[0].chunks.map(\.fires.count), [500, 100])
        XCTAssertTrue(taken[0].chunks.allSatisfy { $0.scheduledAt == t0 })
        XCTAssertEqual(dispatcher.encodedAhead, 0, "the encoded fires taken leave the encode-ahead count")
        XCTAssertTrue(
            book.take([Release(claim: 7, dueAtMicros: t0, ids: [])], dispatcher: dispatcher).isEmpty, "taken once")

        let later = book.take([Release(claim: 7, dueAtMicros: t0 + 1_000_000, ids: [])], dispatcher: dispatcher)
        XCTAssertEqual(later.flatMap(\.chunks).map(\.fires.count), [3])
        book.drop([Release(claim: 8, dueAtMicros: t0, ids: [])], dispatcher: dispatcher)
        XCTAssertTrue(book.take([Release(claim: 8, dueAtMicros: t0, ids: [])], dispatcher: dispatcher).isEmpty)
    }
}
