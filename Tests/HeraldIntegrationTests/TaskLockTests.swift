// The task lock against a real Redis: exactly one of two clients acquires, a
// non-owner can neither renew nor release, the key expires with its TTL, and a
// lease keeps the lock alive past its TTL while renewing.

import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks
import XCTest

final class TaskLockTests: XCTestCase {
    private func clients(prefix: String = "") throws -> (TaskLockClient, TaskLockClient, RedisClient) {
        let (r, _) = try TestServers.require()
        let endpoint = try RedisEndpoint.parse(r)
        return (
            TaskLockClient(endpoint: endpoint, keyPrefix: prefix),
            TaskLockClient(endpoint: endpoint, keyPrefix: prefix), try TestServers.redis()
        )
    }

    private func uniqueLock(ttl: Int = 30) -> TaskLock {
        TaskLock(key: "herald:test:lock:\(UUID().uuidString)", ttlSeconds: ttl, whenHeld: .skip)
    }

    func testOnlyOneClientAcquires() throws {
        let (a, b, _) = try clients()
        let lock = uniqueLock()
        let first = try XCTUnwrap(try a.acquire(lock))
        XCTAssertNil(try b.acquire(lock), "second client must not acquire a held lock")
        XCTAssertTrue(try a.release(first))
        let second = try XCTUnwrap(try b.acquire(lock), "released lock must be acquirable")
        XCTAssertTrue(try b.release(second))
    }

    func testNonOwnerCannotReleaseOrRenew() throws {
        let (a, b, redis) = try clients()
        let lock = uniqueLock()
        let owned = try XCTUnwrap(try a.acquire(lock))
        let forged = TaskLockHandle(
            key: owned.key, token: TaskLockClient.makeToken(), ttlMilliseconds: owned.ttlMilliseconds)
        XCTAssertFalse(try b.release(forged))
        XCTAssertFalse(try b.renew(forged))
        XCTAssertEqual(try redis.command(["GET", owned.key]).text, owned.token, "lock survives a foreign release")
        XCTAssertTrue(try a.renew(owned))
        XCTAssertTrue(try a.release(owned))
        XCTAssertFalse(try a.release(owned), "second release finds nothing")
    }

    func testLockExpiresWithItsTTL() throws {
        let (a, b, redis) = try clients()
        let lock = uniqueLock(ttl: 1)
        let owned = try XCTUnwrap(try a.acquire(lock))
        let pttl = try XCTUnwrap(try redis.command(["PTTL", owned.key]).integer)
        XCTAssertTrue((1...1000).contains(pttl), "PTTL \(pttl)")
        try waitUntil("lock expiry", timeout: 5) { try b.acquire(lock) != nil }
        XCTAssertFalse(try a.release(owned), "the late first holder must not delete the new holder's lock")
        XCTAssertNotNil(try redis.command(["GET", owned.key]).text)
        try redis.command(["DEL", owned.key])
    }

    func testKeyPrefixApplied() throws {
        let (a, _, redis) = try clients(prefix: "difyprefix")
        let lock = uniqueLock()
        let owned = try XCTUnwrap(try a.acquire(lock))
        XCTAssertEqual(owned.key, "difyprefix:" + lock.key)
        XCTAssertEqual(try redis.command(["EXISTS", owned.key]).integer, 1)
        XCTAssertTrue(try a.release(owned))
        XCTAssertEqual(TaskLockClient.redisKey(lock, keyPrefix: ""), lock.key)
    }

    func testLeaseRenewsPastTTL() throws {
        let (a, b, _) = try clients()
        let lock = uniqueLock(ttl: 1)
        let lease = try XCTUnwrap(try a.lease(lock, renewEvery: .milliseconds(200)))
        Thread.sleep(forTimeInterval: 1.6)
        XCTAssertNil(try b.acquire(lock), "a renewed lease outlives its TTL")
        XCTAssertGreaterThan(lease.renewals, 2)
        XCTAssertFalse(lease.isLost)
        XCTAssertTrue(try lease.release())
        XCTAssertFalse(try lease.release())
        XCTAssertNotNil(try b.acquire(lock).map { try b.release($0) })
    }
}
