// The size of the next delete batch, chosen so that one batch (one transaction,
// holding its row locks until it commits) stays under a target duration: a batch
// that took too long shrinks the next one in proportion, a full batch well under the
// target grows the next one by half (so it stays under three quarters of the target),
// never beyond a ceiling nor below a floor. It starts at the configured size (Dify's
// *_BATCH_SIZE). Pure, so it is unit-tested with made-up durations.

/// Batch sizing under a duration target.
public struct AdaptiveBatchSize: Sendable, Equatable {
    /// The largest size ever used.
    public let ceiling: Int
    /// The smallest size used, however slow batches get.
    public let floor: Int
    /// How long one batch should take, in seconds.
    public let targetSeconds: Double
    /// The size of the next batch.
    public private(set) var current: Int

    /// Sizing that starts at `start` (`ceiling` when nil) and stays within `floor`…`ceiling`.
    public init(start: Int? = nil, ceiling: Int, targetSeconds: Double, floor: Int = 10) {
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.targetSeconds = max(0.001, targetSeconds)
        self.current = min(self.ceiling, max(self.floor, start ?? self.ceiling))
    }

    /// Learns from a finished batch of `rows` (of `current` asked) that took `seconds`.
    public mutating func record(rows: Int, seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        if seconds > targetSeconds {
            // Rows per second this batch achieved, aimed at 90 % of the target; shrink by at least a quarter.
            let scaled = Double(current) * (targetSeconds / seconds) * 0.9
            current = max(floor, min(current - max(1, current / 4), Int(scaled)))
        } else if seconds < targetSeconds / 2, rows >= current {
            current = min(ceiling, current + max(1, current / 2))
        }
    }
}
