// A failing run is retried with backoff before it is declared failed. Every
// task is idempotent and resumes where it stopped (age-based deletes, key
// paging, rows marked as they are done), so running it again continues the
// work; after the last attempt the run fails with the last error, and the
// next scheduled run resumes the same way. A run that defers (TaskDeferral) is not retried; when
// an earlier attempt of the same run failed, that failure is the outcome, not the deferral.

/// Retries a failed run up to `attempts` times in all, waiting with `Backoff` between.
public struct TaskRetryMiddleware: TaskMiddleware {
    public let attempts: Int
    public let backoff: Backoff
    private let sleep: @Sendable (Duration) async -> Void

    /// - Parameters:
    ///   - attempts: runs in all, at least 1 (default 3).
    ///   - sleep: how to wait (tests pass one that returns at once).
    public init(
        attempts: Int = 3, backoff: Backoff = Backoff(base: .seconds(1), cap: .seconds(30)),
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }
    ) {
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.sleep = sleep
    }

    public func run(_ task: any HeraldTask, context: any TaskContext, next: TaskNext) async throws -> TaskReport {
        var backoff = self.backoff
        var attempt = 1
        var lastFailure: (any Error)?
        while true {
            do {
                return try await next(context)
            } catch let cancelled as TaskCancellation {
                throw cancelled
            } catch let deferral as TaskDeferral {
                throw lastFailure ?? deferral
            } catch {
                lastFailure = error
                guard attempt < attempts, !context.isCancelled else { throw error }
                let wait = backoff.next()
                context.progress(
                    "attempt \(attempt) of \(attempts) failed; retrying",
                    [
                        (key: "error", value: "\(error)"), (key: "retry_in_s", value: String(format2(wait.seconds))),
                    ])
                await sleep(wait)
                attempt += 1
            }
        }
    }

    private func format2(_ v: Double) -> String {
        let hundredths = Int((v * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
