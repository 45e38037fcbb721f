// Where raw payloads become `Event`s: decode with docs/events.md's rules, count
// every decision in herald_events_total, log rejections once per burst, and
// hand accepted events on. Runs on the loop thread; nothing here blocks.

import HeraldCore
import HeraldIO
import Logging

/// Decodes, counts and forwards events. Loop-confined.
public final class EventIntake {
    private let metrics: HeraldMetrics
    private let logger: Logger
    private let keyPrefix: String
    private var bursts: [EventSourceKind: BurstLimiter] = [:]
    /// Receives every accepted event, on the loop thread.
    public var handler: (Event) -> Void = { _ in }

    public init(metrics: HeraldMetrics, logger: Logger, keyPrefix: String) {
        self.metrics = metrics
        self.logger = logger
        self.keyPrefix = keyPrefix
    }

    /// A `task_schedule_events` payload.
    public func schedulePayload(_ bytes: [UInt8]) {
        route(EventDecoder.scheduleEvent(bytes), source: .redisPubSub, size: bytes.count)
    }

    /// An `expired` keyevent payload.
    public func expiredKey(_ bytes: [UInt8]) {
        route(EventDecoder.expiredKey(bytes, keyPrefix: keyPrefix), source: .redisExpiry, size: bytes.count)
    }

    /// A `herald_events` NOTIFY payload.
    public func notifyPayload(_ bytes: [UInt8]) {
        route(EventDecoder.tableEvent(bytes), source: .postgresNotify, size: bytes.count)
    }

    /// An in-process event (timers, sweep).
    public func internalEvent(_ event: Event) {
        metrics.event(event.source, .accepted)
        handler(event)
    }

    private func route(_ result: DecodeResult, source: EventSourceKind, size: Int) {
        metrics.event(source, result.outcome)
        switch result {
        case .accepted(let event):
            handler(event)
        case .ignored(let reason):
            logger.trace("event ignored", metadata: ["source": "\(source.rawValue)", "reason": "\(reason)"])
        case .rejected(let why):
            var limiter = bursts[source] ?? BurstLimiter()
            let decision = limiter.record(now: MonotonicNow.instant)
            bursts[source] = limiter
            if case .log(let suppressed) = decision {
                logger.warning(
                    "event rejected",
                    metadata: [
                        "source": "\(source.rawValue)", "reason": "\(why.description)", "bytes": "\(size)",
                        "suppressed_since_last": "\(suppressed)",
                    ])
            }
        }
    }
}
