// "Message on the queue", observed from outside: a consumer thread that drains
// one Celery list as fast as it can (BRPOP for the first message, then RPOP
// with a count until the list is empty) and stamps every message with
// CLOCK_REALTIME when its reply arrives. It names each message by the plan id
// in its `argsrepr` header; a sample of the envelopes is decoded in full with
// CeleryEnvelopeDecoder after the run, off the clock, to check the format.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import Synchronization

/// Drains a Celery list on its own thread, stamping each message on arrival.
final class QueueDrain: @unchecked Sendable {
    /// One message: the plan's sequence number (-1 when it carries no benchmark plan id) and its arrival.
    struct Arrival: Sendable {
        var seq: Int
        var ns: Int64
    }

    /// What the drain saw.
    struct Result: Sendable {
        var arrivals: [Arrival]
        /// Envelopes decoded in full (a sample) and how many of them did not match the fast read.
        var decoded = 0
        var envelopeErrors: [String] = []
        var error: String?

        /// Arrival per sequence number in `range` (first arrival; 0 = never), and the duplicates.
        func bySeq(_ range: Range<Int>) -> (stamps: [Int64], duplicates: Int, strays: Int) {
            var stamps = [Int64](repeating: 0, count: range.count)
            var duplicates = 0, strays = 0
            for a in arrivals {
                guard range.contains(a.seq) else {
                    strays += 1
                    continue
                }
                let i = a.seq - range.lowerBound
                if stamps[i] == 0 { stamps[i] = a.ns } else { duplicates += 1 }
            }
            return (stamps, duplicates, strays)
        }
    }

    let key: String
    private let endpoint: RedisEndpoint
    private let sampleEvery: Int
    private let stopFlag = Atomic<Bool>(false)
    private let counter = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)
    private var arrivals: [Arrival] = []
    private var samples: [(seq: Int, bytes: [UInt8])] = []
    private var error: String?
    /// RPOP count per call after the first message.
    static let batch = 256

    init(endpoint: RedisEndpoint, key: String, capacity: Int, sampleEvery: Int = 1000) {
        self.endpoint = endpoint
        self.key = key
        self.sampleEvery = max(1, sampleEvery)
        arrivals.reserveCapacity(capacity)
    }

    /// Connects and starts draining; messages pushed from now on are stamped.
    func start() throws {
        let client = try RedisClient(endpoint: endpoint)
        let thread = Thread { [self] in
            drain(client)
            finished.signal()
        }
        thread.name = "herald-bench-drain"
        thread.start()
    }

    /// Messages received so far (any thread).
    var count: Int { counter.load(ordering: .acquiring) }

    /// Waits until `expected` messages arrived, `idle` passed without one after the first, or `limit` passed.
    func wait(for expected: Int, idle: Duration, limit: Duration) {
        let deadline = BenchClock.monotonicNs() + limit.nanoseconds
        var last = count
        var lastChange = BenchClock.monotonicNs()
        while true {
            let n = count
            let now = BenchClock.monotonicNs()
            if n >= expected || now >= deadline { return }
            if n != last {
                last = n
                lastChange = now
            } else if n > 0, now - lastChange > idle.nanoseconds {
                return
            }
            BenchClock.sleep(.milliseconds(2))
        }
    }

    /// Stops the thread and returns what it saw, with the sample decoded.
    func stop() -> Result {
        stopFlag.store(true, ordering: .releasing)
        finished.wait()
        var result = Result(arrivals: arrivals, error: error)
        for s in samples {
            result.decoded += 1
            do {
                let m = try CeleryEnvelopeDecoder.decode(s.bytes)
                let plan = m.args.first?.stringValue ?? ""
                if m.task != DifyCeleryTasks.runScheduleTrigger.name
                    || m.queue != DifyCeleryTasks.runScheduleTrigger.queue
                    || ScheduleBenchData.seq(ofPlan: Array(plan.utf8)[...]) != s.seq || m.args.count != 1
                {
                    result.envelopeErrors.append("task \(m.task), queue \(m.queue), args \(m.args)")
                }
            } catch {
                result.envelopeErrors.append("\(error)")
            }
        }
        return result
    }

    // MARK: The drain thread

    private func drain(_ client: RedisClient) {
        let brpop: [[UInt8]] = [Array("BRPOP".utf8), Array(key.utf8), Array("0.05".utf8)]
        let rpop: [[UInt8]] = [Array("RPOP".utf8), Array(key.utf8), Array(String(Self.batch).utf8)]
        do {
            while !stopFlag.load(ordering: .acquiring) {
                let first = try client.command(brpop)
                let t = BenchClock.realtimeNs()
                guard case .array(let pair) = first, pair.count == 2, case .string(let bytes) = pair[1] else {
                    continue
                }
                record(bytes, at: t)
                while true {
                    let more = try client.command(rpop)
                    let t2 = BenchClock.realtimeNs()
                    guard case .array(let items) = more else { break }
                    for case .string(let b) in items { record(b, at: t2) }
                    if items.count < Self.batch { break }
                }
            }
        } catch {
            self.error = "\(error)"
        }
    }

    @inline(__always)
    private func record(_ bytes: [UInt8], at t: Int64) {
        let seq = planSeq(in: bytes)
        if arrivals.count % sampleEvery == 0 { samples.append((seq, bytes)) }
        arrivals.append(Arrival(seq: seq, ns: t))
        counter.add(1, ordering: .releasing)
    }

    /// `"argsrepr": "('` followed by the plan id, as Celery and Herald both write it.
    private static let marker = Array(#""argsrepr": "('"#.utf8)
    /// Where the marker was last found: one producer's messages all have it at the same offset, so the
    /// drain usually checks one position instead of scanning (the consumer must stay cheap).
    private var hint = 0

    /// The benchmark sequence number of the plan a message is for, or -1.
    private func planSeq(in bytes: [UInt8]) -> Int {
        if let seq = Self.planSeq(in: bytes, at: hint) { return seq }
        guard let at = Self.find(Self.marker, in: bytes) else { return -1 }
        hint = at
        return Self.planSeq(in: bytes, at: at) ?? -1
    }

    private static func planSeq(in bytes: [UInt8], at offset: Int) -> Int? {
        let m = marker
        guard offset >= 0, offset + m.count + 36 <= bytes.count else { return nil }
        for j in 0..<m.count where bytes[offset + j] != m[j] { return nil }
        let start = offset + m.count
        return ScheduleBenchData.seq(ofPlan: bytes[start..<(start + 36)])
    }

    private static func find(_ m: [UInt8], in bytes: [UInt8]) -> Int? {
        let n = bytes.count - m.count
        guard n >= 0 else { return nil }
        var i = 0
        outer: while i <= n {
            for j in 0..<m.count where bytes[i + j] != m[j] {
                i += 1
                continue outer
            }
            return i
        }
        return nil
    }
}
