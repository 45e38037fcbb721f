// What a task sees while the executor runs it: its run id, dry-run flag, the
// settings, a clock and a cancellation flag the executor raises at shutdown.
// Progress goes to a sink the executor chooses (the log, `herald run-task`'s
// terminal). Also the wall/monotonic clock tasks use outside tests.

import Foundation
import HeraldCore
import HeraldIO
import Synchronization

/// The real clocks: `CLOCK_MONOTONIC` and the wall clock.
public struct SystemClock: HeraldClock {
    /// The system clock.
    public init() {}

    public var now: MonotonicInstant { MonotonicNow.instant }

    public var wallSeconds: Double { Date().timeIntervalSince1970 }
}

/// Raised by the executor to stop a run at its next safe point.
public final class TaskCancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    /// A flag that is not raised.
    public init() {}

    /// Asks the run to stop.
    public func cancel() { flag.store(true, ordering: .relaxed) }

    /// True once ``cancel()`` was called.
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// A progress line a task reported, with the run it belongs to.
public struct TaskProgress: Sendable {
    /// The task.
    public let task: TaskName
    /// The run.
    public let runID: TaskRunID
    /// The message.
    public let message: String
    /// Bounded key/value details.
    public let details: [(key: String, value: String)]
}

/// The ``TaskContext`` the executor hands to a task.
public struct TaskRunContext: TaskContext {
    /// The task this context runs.
    public let task: TaskName
    public let runID: TaskRunID
    public let isDryRun: Bool
    public let settings: TaskSettings
    public let clock: any HeraldClock
    /// The flag behind ``isCancelled``.
    public let cancellation: TaskCancellationFlag
    /// Where progress goes (the executor's log, or `herald run-task`'s output).
    public let progressSink: @Sendable (TaskProgress) -> Void
    public let scheduledAt: Int64?

    /// A context for one run; `scheduledAt` is the claimed tick when its schedule fired it.
    public init(
        task: TaskName, runID: TaskRunID, isDryRun: Bool, settings: TaskSettings, clock: any HeraldClock,
        cancellation: TaskCancellationFlag, scheduledAt: Int64? = nil,
        progressSink: @escaping @Sendable (TaskProgress) -> Void
    ) {
        self.scheduledAt = scheduledAt
        self.task = task
        self.runID = runID
        self.isDryRun = isDryRun
        self.settings = settings
        self.clock = clock
        self.cancellation = cancellation
        self.progressSink = progressSink
    }

    public var isCancelled: Bool { cancellation.isCancelled }

    public func progress(_ message: String, _ details: [(key: String, value: String)]) {
        progressSink(TaskProgress(task: task, runID: runID, message: message, details: details))
    }
}
