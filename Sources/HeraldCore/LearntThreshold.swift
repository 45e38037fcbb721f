// A queue's alert threshold learnt from its own history (the queue monitor's "smart"
// threshold, docs/tasks.md): an exponentially weighted mean and variance of the lengths
// sampled, with a half-life in samples, and a threshold of mean + `sigmas` standard deviations
// but at least 1.5 times the mean (a queue that holds steady is not at its threshold), never
// below the configured floor. For the first half-life (`warmUpSamples`) every length is
// learnt and the floor alone applies; after it, lengths at or above the threshold in force are
// not learnt, so a backlog that lasts does not teach the monitor that it is normal. Pure state.

public struct LearntThreshold: Sendable, Equatable {
    /// The configured threshold: the learnt one is never lower.
    public let floor: Int
    /// Standard deviations above the mean.
    public let sigmas: Double
    /// The weight of one new sample.
    public let alpha: Double
    /// Samples learnt before the learnt value is used (one half-life's worth).
    public let warmUpSamples: Int
    public private(set) var mean = 0.0
    public private(set) var variance = 0.0
    public private(set) var samples = 0

    /// `halfLifeSamples`: after that many samples a length weighs half as much as a new one.
    public init(floor: Int, halfLifeSamples: Double, sigmas: Double = 4) {
        self.floor = max(1, floor)
        self.sigmas = sigmas
        let h = max(1, halfLifeSamples)
        alpha = 1 - Double.exp2(-1 / h)
        warmUpSamples = Int(h.rounded(.up))
    }

    /// The threshold in force.
    public var threshold: Int {
        guard samples >= warmUpSamples else { return floor }
        let learnt = mean + max(sigmas * variance.squareRoot(), mean / 2)
        guard learnt.isFinite, learnt < 1e15 else { return floor }
        return max(floor, Int(learnt.rounded(.up)))
    }

    /// Learns one sampled length, unless it is at or above the threshold in force.
    public mutating func learn(_ length: Int) {
        let x = Double(max(0, length))
        guard samples < warmUpSamples || length < threshold else { return }
        // The first samples weigh 1/n (a plain average), so the start value carries no bias.
        let a = max(alpha, 1 / Double(samples + 1))
        let d = x - mean
        mean += a * d
        variance = (1 - a) * (variance + a * d * d)
        samples += 1
    }
}

extension Double {
    /// 2^x for x in [-1, 0] (HeraldCore imports nothing): the series of e^(x ln 2).
    fileprivate static func exp2(_ x: Double) -> Double {
        var result = 1.0, term = 1.0
        let y = x * 0.693_147_180_559_945_3
        for n in 1...30 {
            term *= y / Double(n)
            result += term
        }
        return result
    }
}
