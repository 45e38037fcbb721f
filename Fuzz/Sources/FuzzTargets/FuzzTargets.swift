// The bodies of the fuzz targets: each takes one input as bytes and drives a parser that
// reads outside input the way the daemon does, then checks what must hold of its answer.
// A crash, an ASan report, a broken invariant (a trap) or a run past libFuzzer's -timeout is
// a finding; a rejected input is the expected outcome for most of them.

import HeraldCore
import HeraldIO

public enum FuzzTargets {
    /// Every decoder of events (docs/events.md): schedule messages, table NOTIFY payloads,
    /// expired keys with and without a key prefix.
    public static func eventDecoder(_ data: UnsafeBufferPointer<UInt8>) {
        for result in [
            EventDecoder.scheduleEvent(data), EventDecoder.tableEvent(data),
            EventDecoder.expiredKey(data), EventDecoder.expiredKey(data, keyPrefix: "dify"),
        ] {
            switch result {
            case .accepted(let event):
                // An accepted event came from a payload within the limit and names what changed.
                precondition(data.count <= EventDecoder.maxPayloadBytes)
                switch event {
                case .scheduleChanged(let id, _): precondition(!id.isEmpty)
                case .keyExpired(let name): precondition(!name.isEmpty)
                case .tableChanged(let change): precondition(EventDecoder.notifyingTables.contains(change.table))
                case .timerFired, .sweep: preconditionFailure("a decoder produced \(event)")
                }
            case .ignored, .rejected:
                break
            }
            _ = result.outcome
        }
    }

    /// The instants each cron input is evaluated from: the epoch, an ordinary day, and the
    /// hours around the 2024 spring-forward and fall-back changes in Europe and America.
    static let instants: [Double] = [0, 1_700_000_000.5, 1_711_846_799, 1_729_990_799, 1_710_054_000, 1_730_613_600]

    /// A plan's cron expression and time zone as Dify stores them. Input: the zone's
    /// identifier, a newline, the expression (no newline: UTC). The first byte's low bit picks
    /// croniter's day-of-month/day-of-week rule.
    public static func cron(_ data: UnsafeBufferPointer<UInt8>) {
        guard data.count <= 512 else { return }
        let text = String(decoding: data, as: UTF8.self)
        var zone = CronZone.utc
        var expression = text
        if let nl = text.firstIndex(of: "\n") {
            if let z = try? CronZone(identifier: String(text[..<nl])) { zone = z }
            expression = String(text[text.index(after: nl)...])
        }
        let dayOr = (data.first ?? 0) & 1 == 0
        guard let parsed = try? CronExpression(expression, dayOr: dayOr) else { return }
        let schedule = CronSchedule(expression: parsed, zone: zone)
        for start in instants {
            guard let fires = try? schedule.fires(afterUnixSeconds: start, count: 3) else { continue }
            // Each fire is strictly after the start and after the one before.
            var previous = start
            for fire in fires {
                precondition(Double(fire.unixSeconds) > previous, "fire \(fire.unixSeconds) not after \(previous)")
                previous = Double(fire.unixSeconds)
            }
            if let first = fires.first, let next = try? schedule.next(afterUnixSeconds: start) {
                precondition(next == first.unixSeconds, "next \(next) differs from the first fire \(first.unixSeconds)")
            }
        }
    }

    /// A topology file (`herald run --topology`): loaded, validated, then queried the way the
    /// mediator queries it.
    public static func topology(_ data: UnsafeBufferPointer<UInt8>) {
        guard let topology = try? Topology.load(json: data) else { return }
        for task in topology.tasks {
            precondition(topology.task(task.name) != nil)
            _ = topology.dependents(of: task.name)
            _ = topology.routes(to: task.name)
        }
        for kind in EventSourceKind.allCases { _ = topology.channel(of: kind) }
        _ = try? topology.disabledTasks(TaskSettings([:]))
    }

    /// Bytes as a Redis server would send them, split in two reads at a place the input picks:
    /// every complete reply is converted as the clients convert it, and classified as a
    /// subscribed connection classifies it.
    public static func resp(_ data: UnsafeBufferPointer<UInt8>) {
        let reader = RESPReader()
        let split = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        do {
            try reader.feed(data[..<split])
            try drain(reader)
            try reader.feed(data[split...])
            try drain(reader)
        } catch {
            // A protocol error: the connection would be dropped and reconnected.
        }
    }

    private static func drain(_ reader: RESPReader) throws(IOError) {
        while let (value, frame) = try reader.next() {
            if case .message(let payload) = frame, case .array(let items) = value {
                // The payload handed on is the third element byte for byte, or empty when that
                // is not a bulk string.
                precondition(items.count >= 3)
                if case .string = items[2] {
                    precondition(items[2] == .string(payload))
                } else {
                    precondition(payload.isEmpty)
                }
            }
        }
    }
}
