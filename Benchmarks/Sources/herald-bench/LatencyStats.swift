// Measurement primitives shared by every scenario: the clocks (CLOCK_REALTIME
// stamps comparable across processes, CLOCK_MONOTONIC absolute-time sleeps),
// nearest-rank percentile statistics, and the number formatting of the tables.

import Glibc

/// Order statistics of one sample of latencies (nanoseconds).
struct LatencyStats: Sendable {
    let count: Int
    let min: Int64
    let p50: Int64
    let p90: Int64
    let p99: Int64
    let p999: Int64
    let max: Int64
    let mean: Double

    init?(_ samples: [Int64]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        count = sorted.count
        min = sorted[0]
        max = sorted[sorted.count - 1]
        p50 = Self.percentile(sorted, 0.50)
        p90 = Self.percentile(sorted, 0.90)
        p99 = Self.percentile(sorted, 0.99)
        p999 = Self.percentile(sorted, 0.999)
        mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
    }

    /// Nearest-rank percentile of an ascending sample.
    static func percentile(_ sorted: [Int64], _ p: Double) -> Int64 {
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }

    /// The named figures, in table order.
    var rows: [(String, Int64)] {
        [("min", min), ("p50", p50), ("p90", p90), ("p99", p99), ("p99.9", p999), ("max", max)]
    }

    var json: BenchJSON {
        .object([
            ("n", .int(Int64(count))), ("min_ns", .int(min)), ("p50_ns", .int(p50)), ("p90_ns", .int(p90)),
            ("p99_ns", .int(p99)), ("p999_ns", .int(p999)), ("max_ns", .int(max)), ("mean_ns", .int(Int64(mean))),
        ])
    }
}

/// Human formatting shared by the tables.
enum Fmt {
    /// 87 µs, 1.24 ms, 12.3 ms, 1.52 s.
    static func duration(ns: Int64) -> String {
        let us = Double(ns) / 1000
        if us < 1000 { return "\(Int(us.rounded())) µs" }
        let ms = us / 1000
        if ms < 10 { return fixed(ms, 2) + " ms" }
        if ms < 1000 { return fixed(ms, 1) + " ms" }
        return fixed(ms / 1000, 2) + " s"
    }

    /// 1,234,567/s.
    static func rate(_ perSecond: Double) -> String { grouped(Int(perSecond.rounded())) + "/s" }

    /// 12,345.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// 1.23×.
    static func ratio(_ a: Double, _ b: Double) -> String {
        guard b > 0, a.isFinite else { return "–" }
        return fixed(a / b, 2) + "×"
    }

    /// `value` with `places` decimals, without Foundation.
    static func fixed(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "–" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int64((value.magnitude * scale).rounded())
        let whole = scaled / Int64(scale)
        var frac = String(scaled % Int64(scale))
        while frac.count < places { frac = "0" + frac }
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return places == 0 ? sign + String(whole) : sign + String(whole) + "." + frac
    }

    /// 21.4 MB (decimal megabytes, as the target is written).
    static func megabytes(kib: Int) -> String { fixed(Double(kib) * 1024 / 1e6, 1) + " MB" }
}

/// Time sources used by every scenario.
enum BenchClock {
    /// CLOCK_REALTIME in nanoseconds (Python's time.time_ns() reads the same clock).
    @inline(__always)
    static func realtimeNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    @inline(__always)
    static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadlineNs` (absolute, so lateness does not accumulate).
    static func sleep(untilMonotonicNs deadlineNs: Int64) {
        var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Sleeps for a relative duration.
    static func sleep(_ d: Duration) {
        sleep(untilMonotonicNs: monotonicNs() + d.nanoseconds)
    }

    /// Polls `condition` every `every` until it holds or `timeout` passes; true when it held.
    static func wait(timeout: Duration, every: Duration = .milliseconds(5), until condition: () -> Bool) -> Bool {
        let deadline = monotonicNs() + timeout.nanoseconds
        while true {
            if condition() { return true }
            if monotonicNs() >= deadline { return false }
            sleep(every)
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns + atto / 1_000_000_000
    }
}
