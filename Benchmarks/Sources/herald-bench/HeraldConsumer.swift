// Column "herald": the real daemon (HeraldRuntime's Daemon, every source
// connected, metrics counted, HTTP endpoint off) with an `onEvent` observer
// that stamps each accepted Event after the daemon's own routing. Decoding,
// validation, metrics and routing run exactly as in `herald run`.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import Logging

/// Herald's daemon as a benchmark consumer.
final class HeraldConsumer: BenchConsumer {
    let kind = ConsumerKind.herald
    private let environment: BenchEnvironment
    private var loop: EventLoop?
    private var daemon: Daemon?
    private var recorder = ArrivalRecorder(capacity: 0)
    private let subscriber = LoopFlag()
    private let listener = LoopFlag()
    private var pause: LoopPause?
    private var expected = 0

    init(environment: BenchEnvironment) {
        self.environment = environment
    }

    func start(expected: Int, mode: ConsumeMode, paused: Bool) throws {
        self.expected = expected
        let recorder = ArrivalRecorder(capacity: expected)
        self.recorder = recorder
        let settings = try Settings.load(from: [
            "HERALD_REDIS_URL": environment.redisURL,
            "HERALD_DATABASE_URL": environment.databaseURL,
            "HERALD_METRICS_ADDR": "off",
            "HERALD_LOG_LEVEL": "warning",
            "HERALD_INSTANCE_ID": "herald-bench",
            // The source path only: with schedules on, every event also costs a database read
            // (ScheduleService.refresh), which is a different benchmark.
            "ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK": "false",
        ])
        let logger = Logger(label: "herald-bench") { label in
            HeraldLogHandler(label: label, format: .logfmt, level: .warning)
        }
        let loop = try EventLoop()
        let daemon = Daemon(settings: settings, loop: loop, logger: logger)
        daemon.taskEnvironment = TaskSettings.applyingHeraldOverrides(
            ProcessInfo.processInfo.environment.merging(BenchEnvironment.quietBeat) { _, new in new })
        daemon.onEvent = { event in
            switch event {
            case .scheduleChanged(let id, _): recorder.record(BenchPayload.seq(uuid: id))
            case .tableChanged(let change): recorder.record(change.id.flatMap { BenchPayload.seq(uuid: $0) })
            default: break
            }
        }
        let (subscriber, listener) = (self.subscriber, self.listener)
        daemon.onSourceChange = { name, state in
            switch name {
            case "redis_subscriber": subscriber.set(ready: state == "ready")
            case "postgres_listener": listener.set(ready: state == "ready")
            default: break
            }
        }
        self.loop = loop
        self.daemon = daemon
        loop.start(name: "herald-bench-daemon")
        let failure: String? = loop.sync {
            do {
                try daemon.start(installSignalHandlers: false)
                return nil
            } catch {
                return "\(error)"
            }
        }
        if let failure { throw BenchFailure("herald daemon did not start: \(failure)") }
        let up = BenchClock.wait(timeout: .seconds(15)) {
            loop.sync { daemon.status().healthy }
        }
        guard up else { throw BenchFailure("herald daemon sources did not become ready within 15 s") }
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
        let drops = subscriber.disconnects + listener.disconnects  // before shutdown's own state changes
        if let loop, let daemon {
            loop.sync { daemon.shutdown(reason: "benchmark done") }
            loop.stop()
            loop.waitUntilStopped()
        }
        daemon = nil
        loop = nil
        return recorder.run(disconnects: drops)
    }
}

/// A benchmark step that could not run.
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
