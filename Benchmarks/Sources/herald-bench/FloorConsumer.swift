// Column "floor": the physical floor of Herald's I/O path, measured in the same
// run. A bare HeraldIO RedisConnection subscriber (or PostgresListener) on its
// own EventLoop whose handler only reads the sequence number at a fixed byte
// offset and stamps the time: no JSON, no validation, no metrics.

import HeraldCore
import HeraldIO

/// The no-work consumer on Herald's own loop, connection and adapter.
final class FloorConsumer: BenchConsumer {
    let kind = ConsumerKind.floor
    private let environment: BenchEnvironment
    private let source: BenchSource
    private var loop: EventLoop?
    private var redis: RedisConnection?
    private var listener: PostgresListener?
    private var recorder = ArrivalRecorder(capacity: 0)
    private let flag = LoopFlag()
    private var pause: LoopPause?
    private var expected = 0

    init(environment: BenchEnvironment, source: BenchSource) {
        self.environment = environment
        self.source = source
    }

    func start(expected: Int, mode: ConsumeMode, paused: Bool) throws {
        self.expected = expected
        let recorder = ArrivalRecorder(capacity: expected)
        self.recorder = recorder
        let loop = try EventLoop()
        self.loop = loop
        loop.start(name: "herald-bench-floor")
        let flag = self.flag
        switch source {
        case .redis:
            let endpoint = environment.redis
            redis = loop.sync {
                let c = RedisConnection(name: "bench_floor", loop: loop, endpoint: endpoint)
                let offset = BenchPayload.scheduleSeqOffset
                c.subscribe(Channels.scheduleEvents) { bytes in
                    recorder.record(BenchPayload.seq(bytes: bytes, at: offset))
                }
                c.onStateChange = { state, _ in flag.set(ready: state == .ready) }
                c.start()
                return c
            }
        case .postgres:
            let info = environment.database
            listener = loop.sync {
                let l = PostgresListener(
                    name: "bench_floor", loop: loop, connInfo: info, channels: [Channels.postgresEvents])
                let offset = BenchPayload.tableSeqOffset
                l.onNotify = { _, bytes in recorder.record(BenchPayload.seq(bytes: bytes, at: offset)) }
                l.onStateChange = { state, _ in flag.set(ready: state == .ready) }
                l.start()
                return l
            }
        }
        guard BenchClock.wait(timeout: .seconds(15), until: { flag.isReady }) else {
            _ = finish(idle: .zero)
            throw BenchFailure("floor \(source.rawValue) consumer did not become ready within 15 s")
        }
        if paused {
            let p = LoopPause()
            p.engage(loop)
            pause = p
        }
    }

    func resume() {
        pause?.release()
        pause = nil
    }

    func finish(idle: Duration) -> ConsumerRun {
        resume()
        waitForArrivals(recorder, expected: expected, idle: idle)
        let drops = flag.disconnects  // before stop()'s own state change
        if let loop {
            let (redis, listener) = (self.redis, self.listener)
            loop.sync {
                redis?.stop()
                listener?.stop()
            }
            loop.stop()
            loop.waitUntilStopped()
        }
        redis = nil
        listener = nil
        loop = nil
        return recorder.run(disconnects: drops)
    }
}
