// The latency publisher and the payloads every test sends. Messages go out on
// absolute-time pacing, stamped with CLOCK_REALTIME just before the send; each
// carries its sequence number in the last 12 hex digits of a valid UUID, the
// one field Herald's accepted Event keeps, so every consumer can name it.

import HeraldCore
import HeraldIO

/// Sends paced messages and keeps the send time of each sequence number.
struct PacedPublisher {
    let interval: Duration

    /// What a paced run sent.
    struct Sent {
        /// CLOCK_REALTIME send stamp by sequence number.
        var stamps: [Int64]
        /// Sends whose reply said the message did not reach exactly one subscriber (Redis only).
        var misdelivered: Int
        /// Sends that started more than one interval after their slot (the VM stalled the publisher).
        var late: Int
    }

    /// PUBLISHes `count` schedule events on `task_schedule_events`; the reply must count one receiver.
    func publishRedis(_ client: RedisClient, count: Int) throws -> Sent {
        var misdelivered = 0
        var sent = try pace(count) { seq, t in
            let reply = try client.command(["PUBLISH", Channels.scheduleEvents, BenchPayload.schedule(seq, sentNs: t)])
            if case .integer(let receivers) = reply, receivers == 1 { return }
            misdelivered += 1
        }
        sent.misdelivered = misdelivered
        return sent
    }

    /// NOTIFYs `count` table events on `herald_events`, one committed statement each.
    func notifyPostgres(_ connection: PostgresConnection, count: Int) throws -> Sent {
        try pace(count) { seq, _ in
            try connection.query("SELECT pg_notify($1, $2)", [Channels.postgresEvents, BenchPayload.table(seq)])
        }
    }

    private func pace(_ count: Int, _ send: (Int, Int64) throws -> Void) throws -> Sent {
        var stamps = [Int64](repeating: 0, count: count)
        var late = 0
        let step = interval.nanoseconds
        var slot = BenchClock.monotonicNs() + step
        for seq in 0..<count {
            BenchClock.sleep(untilMonotonicNs: slot)
            if BenchClock.monotonicNs() - slot > step { late += 1 }
            let t = BenchClock.realtimeNs()
            stamps[seq] = t
            try send(seq, t)
            slot += step
        }
        return Sent(stamps: stamps, misdelivered: 0, late: late)
    }
}

/// Builds benchmark payloads and reads sequence numbers back.
enum BenchPayload {
    /// The fixed UUID head; `be7c` marks benchmark traffic, version 4, variant 8.
    static let uuidHead = "be7c0000-0000-4000-8000-"
    static let seqDigits = 12

    /// `{"schedule_id":"` — the UUID starts right after it.
    static let schedulePrefix = #"{"schedule_id":""#
    /// `{"table":"workflow_schedule_plans","op":"UPDATE","id":"` — the UUID starts right after it.
    static let tablePrefix = #"{"table":"workflow_schedule_plans","op":"UPDATE","id":""#

    /// Byte offset of the sequence digits in a schedule payload.
    static var scheduleSeqOffset: Int { schedulePrefix.utf8.count + uuidHead.utf8.count }
    /// Byte offset of the sequence digits in a table payload.
    static var tableSeqOffset: Int { tablePrefix.utf8.count + uuidHead.utf8.count }

    /// The UUID that carries `seq`.
    static func uuid(_ seq: Int) -> String {
        let hex = String(seq, radix: 16)
        return uuidHead + String(repeating: "0", count: max(0, seqDigits - hex.utf8.count)) + hex
    }

    /// A `task_schedule_events` message: valid for EventDecoder.scheduleEvent (unknown fields ignored).
    static func schedule(_ seq: Int, sentNs: Int64? = nil) -> String {
        var s = schedulePrefix + uuid(seq) + #"","seq":"# + String(seq)
        if let t = sentNs { s += #","t":"# + String(t) }
        return s + "}"
    }

    /// A `herald_events` NOTIFY payload for a watched table.
    static func table(_ seq: Int) -> String {
        tablePrefix + uuid(seq) + #""}"#
    }

    /// The sequence number in a UUID string made by `uuid(_:)`, or nil.
    @inline(__always)
    static func seq(uuid: String) -> Int? {
        let u = uuid.utf8
        guard u.count == 36 else { return nil }
        return parseHex(u.dropFirst(36 - seqDigits))
    }

    /// The sequence number at byte `offset` of a raw payload (the floor's only "decoding").
    @inline(__always)
    static func seq(bytes: [UInt8], at offset: Int) -> Int? {
        guard bytes.count >= offset + seqDigits else { return nil }
        return parseHex(bytes[offset..<(offset + seqDigits)])
    }

    @inline(__always)
    private static func parseHex<C: Collection>(_ digits: C) -> Int? where C.Element == UInt8 {
        var v = 0
        for b in digits {
            let d: Int
            switch b {
            case 48...57: d = Int(b) - 48
            case 97...102: d = Int(b) - 87
            case 65...70: d = Int(b) - 55
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }
}
