// References of test (c), `run_now` event → message on the queue:
// - the relay floor: the same path with no database, a bare HeraldIO
//   RedisConnection subscriber on its own EventLoop that, for each
//   `task_schedule_events` message, reads the schedule id at a fixed offset,
//   encodes the Celery message (as Herald does) and LPUSHes it on a second
//   async connection on the same loop;
// - the bare queue: the benchmark LPUSHes a ready message itself (LPUSH → BRPOP).
// The same QueueDrain stamps the arrivals of all three columns.

import HeraldCelery
import HeraldCore
import HeraldIO

/// PUBLISH → subscriber → LPUSH, on Herald's loop, connection and encoder, without the database.
final class RunNowRelay {
    private let endpoint: RedisEndpoint
    private let key: String
    private var loop: EventLoop?
    private var subscriber: RedisConnection?
    private var pusher: RedisConnection?
    private let subscribed = LoopFlag()
    private let connected = LoopFlag()

    /// `{"schedule_id": "` — the payload's id starts right after it.
    static let payloadPrefix = #"{"schedule_id": ""#

    /// The event the benchmark publishes for plan `seq`.
    static func payload(_ seq: Int) -> String {
        payloadPrefix + ScheduleBenchData.planID(seq) + #"", "run_now": true}"#
    }

    init(endpoint: RedisEndpoint, key: String) {
        self.endpoint = endpoint
        self.key = key
    }

    func start() throws {
        let loop = try EventLoop()
        self.loop = loop
        loop.start(name: "herald-bench-relay")
        let endpoint = self.endpoint, key = Array(self.key.utf8)
        let (subscribed, connected) = (self.subscribed, self.connected)
        let offset = Self.payloadPrefix.utf8.count
        let (sub, push) = loop.sync { () -> (RedisConnection, RedisConnection) in
            let push = RedisConnection(name: "bench_relay_push", loop: loop, endpoint: endpoint)
            push.onStateChange = { state, _ in connected.set(ready: state == .ready) }
            let sub = RedisConnection(name: "bench_relay", loop: loop, endpoint: endpoint)
            let origin = "herald-bench-relay@localhost"
            sub.subscribe(Channels.scheduleEvents) { bytes in
                guard bytes.count >= offset + 36 else { return }
                let id = String(decoding: bytes[offset..<(offset + 36)], as: UTF8.self)
                let task = DifyCeleryTasks.runScheduleTrigger(scheduleID: id, taskID: CeleryUUID.v4().description)
                let message = CeleryMessage.encode(task, origin: origin, deliveryTag: CeleryUUID.v4().description)
                push.send([Array("LPUSH".utf8), key, message])
            }
            sub.onStateChange = { state, _ in subscribed.set(ready: state == .ready) }
            push.start()
            sub.start()
            return (sub, push)
        }
        subscriber = sub
        pusher = push
        guard BenchClock.wait(timeout: .seconds(10), until: { subscribed.isReady && connected.isReady }) else {
            stop()
            throw BenchFailure("the run_now relay did not connect within 10 s")
        }
    }

    func stop() {
        guard let loop else { return }
        let (sub, push) = (subscriber, pusher)
        loop.sync {
            sub?.stop()
            push?.stop()
        }
        loop.stop()
        loop.waitUntilStopped()
        self.loop = nil
        subscriber = nil
        pusher = nil
    }

    /// A ready Celery message for plan `seq`, for the bare LPUSH → BRPOP column.
    static func message(_ seq: Int) -> [UInt8] {
        let task = DifyCeleryTasks.runScheduleTrigger(
            scheduleID: ScheduleBenchData.planID(seq), taskID: CeleryUUID.v4().description)
        return CeleryMessage.encode(task, origin: "herald-bench@localhost", deliveryTag: CeleryUUID.v4().description)
    }
}

/// Test (c)'s runner: the same paced events for every column.
extension FireBench {
    /// `count` events for plans `base..<base+count`, one at a time: each is sent once the previous one
    /// arrived (or after 2 s), and not before its slot (`interval` apart). `send` sends plan `seq`'s event.
    func events(
        key: String, base: Int, count: Int, warmup: Int, interval: Duration,
        send: (Int) throws -> Bool, into out: inout EventOutcome
    ) {
        let total = warmup + count
        let drain = QueueDrain(endpoint: environment.redis, key: key, capacity: total, sampleEvery: 100)
        do { try drain.start() } catch {
            out.errors.append("drain: \(error)")
            return
        }
        var sent = [Int64](repeating: 0, count: total)
        var slot = BenchClock.monotonicNs()
        for i in 0..<total {
            BenchClock.sleep(untilMonotonicNs: slot)
            let before = drain.count
            sent[i] = BenchClock.realtimeNs()
            do {
                if try !send(base + i) { out.misdelivered += 1 }
            } catch {
                out.errors.append("\(error)")
                break
            }
            _ = BenchClock.wait(timeout: .seconds(2), every: .microseconds(50)) { drain.count > before }
            slot = max(slot + interval.nanoseconds, BenchClock.monotonicNs())
        }
        drain.wait(for: total, idle: .seconds(2), limit: .seconds(5))
        let result = drain.stop()
        let (stamps, duplicates, strays) = result.bySeq(base..<(base + total))
        out.expected += count
        for i in warmup..<total where stamps[i] != 0 { out.samples.append(stamps[i] - sent[i]) }
        if duplicates > 0 { out.errors.append("\(duplicates) duplicate messages") }
        if strays > 0 { out.errors.append("\(strays) messages for plans outside the run") }
        if let e = result.error { out.errors.append("drain: \(e)") }
        if !result.envelopeErrors.isEmpty { out.errors.append("envelope: \(result.envelopeErrors[0])") }
    }
}
