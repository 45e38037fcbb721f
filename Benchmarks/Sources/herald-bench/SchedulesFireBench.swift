// Tests (a), (b) and (c) for each column: a set of plans is made due at one
// whole second, or `run_now` events are published one at a time, and the
// arrivals on the column's queue are stamped by a QueueDrain. Herald runs on
// its own database and key prefix; the SQL-claim floor and the Dify poller
// take turns on a copy of the same data, each plan range parked again after use.

import HeraldCore
import HeraldIO

/// Runs one due-at-once burst or one paced event run for a given column.
final class FireBench {
    let environment: BenchEnvironment
    let daemon: HeraldDaemonProcess
    let heraldKey: String
    let heraldDB: PostgresConnection
    let referenceDB: PostgresConnection
    let peer: DifyPollerPeer?
    let peerKey: String
    let floor: SQLClaimFloor
    private let redis: RedisClient
    /// How long before the due time the plans are set (Herald must load and pre-claim them).
    var leadIn: Duration = .seconds(5)

    init(
        environment: BenchEnvironment, daemon: HeraldDaemonProcess, heraldKey: String, heraldDB: PostgresConnection,
        referenceDB: PostgresConnection, peer: DifyPollerPeer?, peerKey: String, floorBatch: Int
    ) throws {
        self.environment = environment
        self.daemon = daemon
        self.heraldKey = heraldKey
        self.heraldDB = heraldDB
        self.referenceDB = referenceDB
        self.peer = peer
        self.peerKey = peerKey
        floor = SQLClaimFloor(batch: floorBatch)
        redis = try RedisClient(endpoint: environment.redis)
    }

    /// Waits (up to 60 s) until Herald has nothing left from earlier runs (no fire waiting to be
    /// enqueued, no plan due within the next 5 s), then empties its list. Returns a note when it waited.
    func quiesceHerald() -> String? {
        let t0 = BenchClock.monotonicNs()
        let idle = BenchClock.wait(timeout: .seconds(60), every: .milliseconds(100)) {
            guard
                let r = try? heraldDB.query(
                    """
                    SELECT (SELECT count(*) FROM herald.schedule_claims WHERE enqueued_at IS NULL),
                           (SELECT count(*) FROM workflow_schedule_plans
                             WHERE next_run_at <= (now() AT TIME ZONE 'UTC') + interval '5 seconds')
                    """
                ).rows.first
            else { return false }
            return r[0] == "0" && r[1] == "0"
        }
        _ = try? redis.command(["DEL", heraldKey])
        let waited = BenchClock.monotonicNs() - t0
        if !idle { return "Herald still had work from an earlier run after 60 s; the run started anyway." }
        return waited > 1_000_000_000
            ? "Herald needed \(Fmt.duration(ns: waited)) to finish an earlier run first." : nil
    }

    // MARK: Bursts

    /// The plans in `range`, due at the next whole second `leadIn` from now, fired by Herald.
    /// With `rate`, notes when Herald finished claiming well before the due time (its fires/s then understates it).
    func herald(_ range: Range<Int>, rate: Bool = false, into out: inout BurstOutcome) {
        if let note = quiesceHerald() { out.notes.append(note) }
        let drain = QueueDrain(endpoint: environment.redis, key: heraldKey, capacity: range.count)
        do { try drain.start() } catch {
            out.errors.append("drain: \(error)")
            return
        }
        let due = ScheduleClock.wholeSecond(after: leadIn)
        do {
            try ScheduleBenchData.setDue(heraldDB, range, atNs: due, notify: true)
        } catch {
            out.errors.append("setting the plans due: \(error)")
            _ = drain.stop()
            return
        }
        // Herald hears the bulk NOTIFY and reloads its window; stop looking well before it claims.
        var armed = 0
        _ = BenchClock.wait(
            timeout: .nanoseconds(max(0, due - BenchClock.realtimeNs() - 3_000_000_000)),
            every: .milliseconds(100)
        ) {
            armed = daemon.armed() ?? 0
            return armed >= range.count
        }
        if armed < range.count {
            out.notes.append(
                "\(Fmt.grouped(armed)) of \(Fmt.grouped(range.count)) plans were armed 3 s before their time.")
        }
        drain.wait(
            for: range.count, idle: .seconds(10), limit: .nanoseconds(due - BenchClock.realtimeNs() + 60_000_000_000))
        let result = drain.stop()
        // Claim transactions' start times (the database's now()): the first is where the work began.
        let claims =
            (try? heraldDB.query(
                """
                SELECT (extract(epoch from min(claimed_at)) * 1e9)::bigint, (extract(epoch from max(claimed_at)) * 1e9)::bigint
                  FROM herald.schedule_fires WHERE scheduled_at = to_timestamp($1::float8 / 1e6) AT TIME ZONE 'UTC'
                """, [String(due / 1000)]))?.rows.first
        let firstClaim = claims?[0].flatMap { Int64($0) }
        if rate, let last = claims?[1].flatMap({ Int64($0) }), last < due - 100_000_000 {
            out.notes.append(
                "The last claim began \(Fmt.duration(ns: due - last)) before the due time: Herald then waited for "
                    + "it, so its fires/s (measured from the first claim) understates what it can do.")
        }
        record(result, range: range, dueNs: due, startNs: firstClaim ?? due, into: &out)
    }

    /// The same plans on the copy, claimed by the plain SQL statement from their due time.
    func floor(_ range: Range<Int>, variant: SQLClaimFloor.Variant = .indexed, into out: inout BurstOutcome) {
        let due = ScheduleClock.wholeSecond(after: .seconds(2))
        do {
            try ScheduleBenchData.setDue(referenceDB, range, atNs: due, notify: false)
        } catch {
            out.errors.append("setting the plans due: \(error)")
            return
        }
        var claim = floor
        claim.variant = variant
        let run = claim.run(referenceDB, expected: range.count, dueNs: due, limit: .seconds(60))
        if let e = run.error { out.errors.append(e) }
        out.add(expected: range.count, dueNs: due, startNs: due, stamps: run.stamps, duplicates: 0)
        _ = try? ScheduleBenchData.park(referenceDB, range)
    }

    /// The same plans on the copy, polled by the Dify peer in one tick starting at their due time
    /// (the best case of its once-a-minute poll); stopped after `maxSeconds` when positive.
    func peer(_ range: Range<Int>, maxSeconds: Double, into out: inout BurstOutcome) -> DifyPollerPeer.Tick? {
        guard let peer else { return nil }
        let drain = QueueDrain(endpoint: environment.redis, key: peerKey, capacity: range.count)
        do { try drain.start() } catch {
            out.errors.append("drain: \(error)")
            return nil
        }
        let due = ScheduleClock.wholeSecond(after: .seconds(2))
        do {
            try ScheduleBenchData.setDue(referenceDB, range, atNs: due, notify: false)
        } catch {
            out.errors.append("setting the plans due: \(error)")
            _ = drain.stop()
            return nil
        }
        let tick = peer.tick(startNs: due, maxSeconds: maxSeconds)
        if let e = tick.error { out.errors.append(e) }
        drain.wait(for: tick.dispatched, idle: .seconds(2), limit: .seconds(10))
        let result = drain.stop()
        let expected = maxSeconds > 0 && tick.dispatched < range.count ? tick.dispatched : range.count
        if expected < range.count {
            out.notes.append(
                "The peer's tick was stopped after \(Fmt.fixed(maxSeconds, 0)) s, with \(Fmt.grouped(tick.dispatched)) "
                    + "of \(Fmt.grouped(range.count)) plans dispatched; its rate is taken over those.")
        }
        record(result, range: range, dueNs: due, startNs: due, into: &out, expected: expected)
        _ = try? ScheduleBenchData.park(referenceDB, range)
        return tick
    }

    /// The plans in `range` as ready Celery messages LPUSHed at their due time, 250 per LPUSH, all in one
    /// pipeline on one connection (Herald's batching, without its de-duplication markers): the floor of
    /// "message on the queue" for a burst, stamped by the same drain.
    func pushFloor(_ range: Range<Int>, key: String, into out: inout BurstOutcome) {
        let list = Array(key.utf8), lpush = Array("LPUSH".utf8)
        let messages = range.map { RunNowRelay.message($0) }
        var commands: [[[UInt8]]] = []
        var i = 0
        while i < messages.count {
            commands.append([lpush, list] + messages[i..<min(i + 250, messages.count)])
            i += 250
        }
        let drain = QueueDrain(endpoint: environment.redis, key: key, capacity: range.count)
        do { try drain.start() } catch {
            out.errors.append("drain: \(error)")
            return
        }
        let due = ScheduleClock.wholeSecond(after: .seconds(1))
        ScheduleClock.sleep(untilRealtimeNs: due)
        do { _ = try redis.pipeline(commands) } catch { out.errors.append("\(error)") }
        drain.wait(for: range.count, idle: .seconds(2), limit: .seconds(20))
        record(drain.stop(), range: range, dueNs: due, startNs: due, into: &out)
    }

    /// The drain's own speed: `count` ready messages queued before it starts, then drained (messages/s).
    func drainCapacity(count: Int, key: String) -> Double? {
        let list = Array(key.utf8), lpush = Array("LPUSH".utf8)
        var commands: [[[UInt8]]] = []
        var i = 0
        while i < count {
            commands.append([lpush, list] + (i..<min(i + 250, count)).map { RunNowRelay.message($0) })
            i += 250
        }
        guard (try? redis.pipeline(commands)) != nil else { return nil }
        let drain = QueueDrain(endpoint: environment.redis, key: key, capacity: count)
        guard (try? drain.start()) != nil else { return nil }
        drain.wait(for: count, idle: .seconds(2), limit: .seconds(20))
        let stamps = drain.stop().arrivals.map(\.ns)
        guard let first = stamps.min(), let last = stamps.max(), last > first else { return nil }
        return Double(stamps.count - 1) * 1e9 / Double(last - first)
    }

    private func record(
        _ result: QueueDrain.Result, range: Range<Int>, dueNs: Int64, startNs: Int64,
        into out: inout BurstOutcome, expected: Int? = nil
    ) {
        let (stamps, duplicates, strays) = result.bySeq(range)
        out.add(
            expected: expected ?? range.count, dueNs: dueNs, startNs: startNs, stamps: stamps, duplicates: duplicates)
        if strays > 0 { out.errors.append("\(strays) messages for plans outside the run") }
        if let e = result.error { out.errors.append("drain: \(e)") }
        if !result.envelopeErrors.isEmpty {
            out.errors.append(
                "\(result.envelopeErrors.count) of \(result.decoded) decoded envelopes wrong: \(result.envelopeErrors[0])"
            )
        }
    }
}
