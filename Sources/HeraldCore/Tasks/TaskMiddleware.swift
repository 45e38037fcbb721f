// Cross-cutting behaviour (timing, metrics, logging, retries, locks) wraps a
// task's `run` instead of being repeated in every task, as swift-jobs does. Each
// middleware gets the task, its context and `next`; the chain composes them once
// so the executor makes one call per run.

/// The rest of the chain: the next middleware, or the task itself at the end.
public typealias TaskNext = @Sendable (any TaskContext) async throws -> TaskReport

/// One layer around every task run.
///
/// A middleware may act before and after `next`, call it more than once (retries),
/// not at all (a lock held elsewhere), or with a different context (one whose
/// progress sink adds fields). Errors thrown by `next` are the task's; a middleware
/// that swallows one decides the run's outcome.
public protocol TaskMiddleware: Sendable {
    /// Runs `task` by calling `next`, with whatever this layer adds around it.
    func run(_ task: any HeraldTask, context: any TaskContext, next: TaskNext) async throws -> TaskReport
}

/// An ordered stack of middleware; the first wraps all the others.
///
/// ```swift
/// let chain = TaskMiddlewareChain([logging, metrics, lock, retry])
/// let report = try await chain.run(task, context: context)
/// // logging → metrics → lock → retry → task.run(context)
/// ```
public struct TaskMiddlewareChain: Sendable {
    /// The layers, outermost first.
    public let middlewares: [any TaskMiddleware]

    /// A chain of `middlewares`, outermost first.
    public init(_ middlewares: [any TaskMiddleware] = []) { self.middlewares = middlewares }

    /// This chain with `middleware` added innermost (closest to the task).
    public func appending(_ middleware: any TaskMiddleware) -> TaskMiddlewareChain {
        TaskMiddlewareChain(middlewares + [middleware])
    }

    /// Runs `task` through every layer.
    public func run(_ task: any HeraldTask, context: any TaskContext) async throws -> TaskReport {
        try await composed(for: task)(context)
    }

    /// The whole chain for `task` as one function of the context.
    public func composed(for task: any HeraldTask) -> TaskNext {
        var next: TaskNext = { context in try await task.run(context) }
        for middleware in middlewares.reversed() {
            let inner = next
            next = { context in try await middleware.run(task, context: context, next: inner) }
        }
        return next
    }
}
