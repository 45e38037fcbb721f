// Timers, signal watchers and file-descriptor watchers on the loop. Each owns
// one libevent `event` and frees it in deinit; the C callback finds its owner
// through the user-data pointer. Owners must keep these objects alive.

import CLibevent
import Glibc

/// A one-shot or repeating timer. Create, schedule and cancel on the loop thread.
public final class LoopTimer {
    private let loop: EventLoop
    private var event: OpaquePointer?
    private let handler: () -> Void
    private var interval: Duration?

    /// A timer that calls `handler` on the loop thread.
    public init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        event = event_new(
            loop.base, -1, 0,
            { _, _, arg in
                Unmanaged<LoopTimer>.fromOpaque(arg!).takeUnretainedValue().fire()
            }, ctx)
    }

    deinit {
        if let e = event { event_free(e) }
    }

    /// Fires once after `delay` (replacing any earlier schedule).
    public func schedule(after delay: Duration) {
        loop.assertInLoop()
        interval = nil
        var tv = delay.timeval
        event_add(event, &tv)
    }

    /// Fires every `period`, starting one period from now.
    public func scheduleRepeating(every period: Duration) {
        loop.assertInLoop()
        interval = period
        var tv = period.timeval
        event_add(event, &tv)
    }

    /// Stops the timer.
    public func cancel() {
        loop.assertInLoop()
        interval = nil
        event_del(event)
    }

    /// True while scheduled.
    public var isPending: Bool {
        event_pending(event, Int16(EV_TIMEOUT), nil) != 0
    }

    private func fire() {
        if let p = interval {
            var tv = p.timeval
            event_add(event, &tv)
        }
        handler()
    }
}

/// Delivers a POSIX signal as a loop event (libevent's self-pipe).
public final class SignalWatcher {
    private var event: OpaquePointer?
    private let handler: (Int32) -> Void
    public let signal: Int32

    public init(loop: EventLoop, signal: Int32, handler: @escaping (Int32) -> Void) throws(IOError) {
        self.signal = signal
        self.handler = handler
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        event = event_new(
            loop.base, signal, Int16(EV_SIGNAL | EV_PERSIST),
            { sig, _, arg in
                Unmanaged<SignalWatcher>.fromOpaque(arg!).takeUnretainedValue().handler(sig)
            }, ctx)
        guard event != nil, event_add(event, nil) == 0 else {
            throw IOError.loop(call: "event_add(signal \(signal))", message: "cannot watch signal")
        }
    }

    deinit {
        if let e = event { event_free(e) }
    }
}

/// Watches a file descriptor for readability or writability.
final class FDWatcher {
    private var event: OpaquePointer?
    private let handler: (Int16) -> Void

    init(loop: EventLoop, fd: Int32, events: Int32, persist: Bool, handler: @escaping (Int16) -> Void) {
        self.handler = handler
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        let flags = Int16(events | (persist ? EV_PERSIST : 0))
        event = event_new(
            loop.base, fd, flags,
            { _, what, arg in
                Unmanaged<FDWatcher>.fromOpaque(arg!).takeUnretainedValue().handler(what)
            }, ctx)
    }

    func arm(timeout: Duration? = nil) {
        if var tv = timeout?.timeval {
            event_add(event, &tv)
        } else {
            event_add(event, nil)
        }
    }

    func disarm() { event_del(event) }

    deinit {
        if let e = event { event_free(e) }
    }
}
