// libevent's own diagnostics (`[warn] Error from accept() call: …`) go to stderr by default,
// unformatted and unbounded: one line per loop turn when something keeps failing. Installed
// once, this hands them to a handler instead (the daemon logs them in its format, rate-limited).

import CLibevent
import Synchronization

/// Routes libevent's log messages to a Swift handler.
public enum LibeventLog {
    private static let handler = Mutex<(@Sendable (_ severity: Int32, _ message: String) -> Void)?>(nil)

    /// Replaces libevent's stderr logging with `handle` (for the whole process).
    public static func install(_ handle: @escaping @Sendable (_ severity: Int32, _ message: String) -> Void) {
        handler.withLock { $0 = handle }
        event_set_log_callback { severity, message in
            guard let message else { return }
            let text = String(cString: message)
            LibeventLog.deliver(severity, text)
        }
    }

    private static func deliver(_ severity: Int32, _ message: String) {
        let handle = handler.withLock { $0 }
        handle?(severity, message)
    }
}
