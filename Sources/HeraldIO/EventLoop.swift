// The one libevent loop. It runs on a dedicated thread that owns every C
// handle (Redis, PostgreSQL, HTTP, timers, signals); other threads reach it
// only through `execute`, which queues a closure and wakes the loop through an
// eventfd. Debug builds assert that loop-owned handles are touched only here.

import CHeraldShim
import CLibevent
import Foundation
import Synchronization

/// A libevent `event_base` on its own thread.
public final class EventLoop: @unchecked Sendable {
    let base: OpaquePointer
    private let pending = Mutex<[@Sendable () -> Void]>([])
    private let wakeFD: Int32
    private var wakeEvent: OpaquePointer?
    private let loopThread = Atomic<UInt>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)

    /// Creates the base. Nothing runs until `start()`.
    public init() throws(IOError) {
        guard let b = event_base_new() else { throw IOError.loop(call: "event_base_new", message: "out of memory") }
        base = b
        let fd = herald_eventfd()
        guard fd >= 0 else {
            event_base_free(b)
            throw IOError.loop(call: "eventfd", message: String(cString: strerror(errno)))
        }
        wakeFD = fd
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        wakeEvent = event_new(
            base, fd, Int16(EV_READ | EV_PERSIST),
            { _, _, arg in
                Unmanaged<EventLoop>.fromOpaque(arg!).takeUnretainedValue().drainPending()
            }, ctx)
        event_add(wakeEvent, nil)
    }

    deinit {
        if let e = wakeEvent { event_free(e) }
        close(wakeFD)
        event_base_free(base)
    }

    /// Starts the loop on a new thread named `name`.
    public func start(name: String = "herald-loop") {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            loopThread.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
            event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
            drainPending()
            loopThread.store(0, ordering: .releasing)
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
        // Wait until the thread has recorded its identity, so inLoop is exact from here on.
        while loopThread.load(ordering: .acquiring) == 0 { usleep(50) }
    }

    /// True on the loop thread.
    public var inLoop: Bool {
        loopThread.load(ordering: .acquiring) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    /// Debug builds trap when a loop-owned handle is used from another thread.
    @inline(__always)
    public func assertInLoop(_ file: StaticString = #fileID, _ line: UInt = #line) {
        #if DEBUG
        precondition(inLoop, "loop-owned C handle used off the loop thread", file: file, line: line)
        #endif
    }

    /// Runs `work` on the loop thread, soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        let wasEmpty = pending.withLock { q -> Bool in
            q.append(work)
            return q.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Runs `work` on the loop thread and returns its result to an async caller.
    public func submit<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            execute { cont.resume(with: Result { try work() }) }
        }
    }

    /// Runs `work` on the loop thread and blocks the caller until it returns.
    /// Never call it on the loop thread itself.
    public func sync<T>(_ work: @escaping () -> T) -> T {
        precondition(!inLoop, "EventLoop.sync called on the loop thread")
        let box = SyncBox<T>()
        let done = DispatchSemaphore(value: 0)
        let unchecked = UncheckedSendable(work)
        execute {
            box.value = unchecked.value()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    private func drainPending() {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        while true {
            let batch = pending.withLock { q -> [@Sendable () -> Void] in
                let b = q
                q.removeAll(keepingCapacity: true)
                return b
            }
            if batch.isEmpty { return }
            for work in batch { work() }
        }
    }

    /// Asks the loop to exit after the current callbacks. Safe from any thread.
    public func stop() {
        execute { [self] in event_base_loopbreak(base) }
    }

    /// Blocks the calling (non-loop) thread until the loop has exited.
    public func waitUntilStopped() {
        guard running.load(ordering: .acquiring) else { return }
        finished.wait()
        running.store(false, ordering: .releasing)
    }

    /// The wall-clock time in Unix seconds, read with `gettimeofday` at every call (not
    /// libevent's cached time). Safe from any thread.
    public var wallSeconds: Double {
        var tv = timeval()
        gettimeofday(&tv, nil)
        return Double(tv.tv_sec) + Double(tv.tv_usec) / 1e6
    }
}

extension Duration {
    var timeval: timeval {
        let ns = max(0, nanosecondsClamped)
        return Glibc.timeval(tv_sec: Int(ns / 1_000_000_000), tv_usec: Int((ns % 1_000_000_000) / 1000))
    }
}

/// Carries a value across the loop boundary in `sync`.
private final class SyncBox<T>: @unchecked Sendable {
    var value: T?
}

/// Wraps a value that is handed to the loop thread and used only there.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
