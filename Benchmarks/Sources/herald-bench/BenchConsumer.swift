// The contract between a scenario and the consumers it compares: Herald's
// real daemon, the bare HeraldIO floor and the Python peer all start, can be
// paused (drain tests) and hand back the same `ConsumerRun`, so one loop drives
// all three; in-process consumers stamp arrivals in a preallocated recorder.

import Dispatch
import HeraldIO
import Synchronization

/// Which column a consumer fills.
enum ConsumerKind: String, Sendable, CaseIterable {
    case herald, floor, peer

    var title: String {
        switch self {
        case .herald: return "herald"
        case .floor: return "floor"
        case .peer: return "python peer"
        }
    }
}

/// Where the messages come from.
enum BenchSource: String, Sendable {
    case redis, postgres
}

/// Whether the run needs every arrival time (latency) or only counts and first/last (rate).
enum ConsumeMode: String, Sendable {
    case latency, rate
}

/// What one consumer saw in one run.
struct ConsumerRun: Sendable {
    /// CLOCK_REALTIME arrival by sequence number (0 = never arrived); empty when only counted.
    var arrivals: [Int64]
    var accepted: Int
    var rejected: Int
    var duplicates: Int
    var firstNs: Int64
    var lastNs: Int64
    var disconnects: Int
    var error: String?
    var note: String?

    /// Arrivals per second from the first to the last arrival.
    var rate: Double? {
        guard accepted >= 2, lastNs > firstNs else { return nil }
        return Double(accepted - 1) * 1e9 / Double(lastNs - firstNs)
    }

    static func failed(_ message: String) -> ConsumerRun {
        ConsumerRun(
            arrivals: [], accepted: 0, rejected: 0, duplicates: 0, firstNs: 0, lastNs: 0, disconnects: 0,
            error: message, note: nil)
    }
}

/// One consumer under test.
protocol BenchConsumer: AnyObject {
    var kind: ConsumerKind { get }
    /// Connects and subscribes or listens; returns once messages published from now on will be delivered.
    /// With `paused`, the consumer reads nothing until `resume()`.
    func start(expected: Int, mode: ConsumeMode, paused: Bool) throws
    /// Lets a paused consumer read.
    func resume()
    /// Waits until `expected` messages arrived or `idle` passed without one, then stops and reports.
    func finish(idle: Duration) -> ConsumerRun
}

/// Pausing an in-process consumer: its loop thread blocks on a semaphore, so
/// nothing is read and Redis queues the messages (the drain test).
final class LoopPause: Sendable {
    private let gate = DispatchSemaphore(value: 0)

    /// Blocks `loop`'s thread; returns once it is blocked.
    func engage(_ loop: EventLoop) {
        let blocked = DispatchSemaphore(value: 0)
        loop.execute { [gate] in
            blocked.signal()
            gate.wait()
        }
        blocked.wait()
    }

    func release() { gate.signal() }
}

/// Waits for an in-process consumer: until `expected` arrived, or `idle` passed without progress.
func waitForArrivals(_ recorder: ArrivalRecorder, expected: Int, idle: Duration) {
    var last = recorder.count
    var lastChange = BenchClock.monotonicNs()
    while true {
        let n = recorder.count
        if n >= expected { return }
        let now = BenchClock.monotonicNs()
        if n != last {
            last = n
            lastChange = now
        } else if now - lastChange > idle.nanoseconds {
            return
        }
        BenchClock.sleep(.milliseconds(2))
    }
}

/// A flag set on a loop thread and polled by the bench thread.
final class LoopFlag: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var ready = false
    private var drops = 0

    func set(ready value: Bool) {
        lock.wait()
        if ready, !value { drops += 1 }
        ready = value
        lock.signal()
    }

    var isReady: Bool {
        lock.wait()
        defer { lock.signal() }
        return ready
    }

    /// How often it went from ready to not ready (disconnects).
    var disconnects: Int {
        lock.wait()
        defer { lock.signal() }
        return drops
    }
}

/// Arrival times by sequence number. Written by one consumer thread.
final class ArrivalRecorder: @unchecked Sendable {
    let capacity: Int
    private let stamps: UnsafeMutablePointer<Int64>
    private let counter = Atomic<Int>(0)
    private(set) var firstNs: Int64 = 0
    private(set) var lastNs: Int64 = 0
    private(set) var duplicates = 0
    private(set) var strays = 0

    init(capacity: Int) {
        self.capacity = capacity
        stamps = .allocate(capacity: max(1, capacity))
        stamps.initialize(repeating: 0, count: max(1, capacity))
    }

    deinit { stamps.deallocate() }

    /// Records the arrival of `seq` now. Called on the consumer's thread only.
    @inline(__always)
    func record(_ seq: Int?) {
        let now = BenchClock.realtimeNs()
        guard let seq, seq >= 0, seq < capacity else {
            strays += 1
            return
        }
        if stamps[seq] != 0 {
            duplicates += 1
            return
        }
        stamps[seq] = now
        if firstNs == 0 { firstNs = now }
        lastNs = now
        counter.add(1, ordering: .releasing)
    }

    /// Distinct sequence numbers seen so far (safe from any thread).
    var count: Int { counter.load(ordering: .acquiring) }

    /// What was recorded. Call only after the consumer thread has stopped.
    func run(disconnects: Int, note: String? = nil) -> ConsumerRun {
        ConsumerRun(
            arrivals: Array(UnsafeBufferPointer(start: stamps, count: capacity)),
            accepted: count, rejected: strays, duplicates: duplicates, firstNs: firstNs, lastNs: lastNs,
            disconnects: disconnects, error: nil, note: note)
    }
}
