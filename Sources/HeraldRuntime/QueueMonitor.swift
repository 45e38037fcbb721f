// The queue monitor, natively and beyond Dify's. Every few seconds the length of each
// Celery queue the topology marks `monitor` is read from the broker, as Celery keys it
// (`REDIS_KEY_PREFIX:` in front, and the priority sub-lists `<queue>\x06\x16<n>`
// counted too), and exported as `herald_queue_length{queue}` (the HPA scales on it).
// With ENABLE_DATASETS_QUEUE_MONITOR on and QUEUE_MONITOR_ALERT_EMAILS set, a queue
// crossing its threshold sends one alert mail, a reminder at most every
// QUEUE_MONITOR_INTERVAL minutes while it stays above, and one recovery mail once it is
// below half its threshold. Which instance sends is settled on the broker by one Lua call
// per queue and sample, so any number of instances send each mail once. With
// HERALD_QUEUE_MONITOR_LEARN each queue's threshold is learnt from its own lengths
// (LearntThreshold.swift), the configured one its floor; `herald_queue_threshold` shows it.
// docs/tasks.md, "queue_monitor_task".

import CoreMetrics
import Dispatch
import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import Logging

/// The queue monitor's settings (Dify's names, and Herald's).
public struct QueueMonitorSettings: Sendable {
    /// `QUEUE_MONITOR_THRESHOLD` (Dify; default 200): every monitored queue's threshold.
    public var threshold = 200
    /// `HERALD_QUEUE_MONITOR_THRESHOLDS` (`queue=n,…`): thresholds of single queues.
    public var thresholds: [String: Int] = [:]
    /// `QUEUE_MONITOR_ALERT_EMAILS` (Dify; comma-separated, each trimmed).
    public var recipients: [String] = []
    /// `QUEUE_MONITOR_INTERVAL` minutes (Dify; 0 or unset: 30): the reminders' cool-down.
    public var cooldownSeconds = 1800
    /// `HERALD_QUEUE_SAMPLE_INTERVAL` seconds (default 5): how often the lengths are read.
    public var sampleInterval: Duration = .seconds(5)
    /// `HERALD_QUEUE_MONITOR_LEARN` (default false): each queue's threshold is learnt from its
    /// own lengths (LearntThreshold.swift), never below the configured one.
    public var learn = false
    /// `HERALD_QUEUE_MONITOR_LEARN_HALF_LIFE` minutes (default 360): how fast old lengths fade.
    public var learnHalfLifeMinutes = 360.0

    public init() {}

    /// The threshold of `queue`.
    public func threshold(of queue: String) -> Int { thresholds[queue] ?? threshold }

    static func load(_ value: (String) -> String?, named: (String) -> String) throws(SettingsError) -> Self {
        var s = Self()
        if let t = value("QUEUE_MONITOR_THRESHOLD") {
            guard let n = Int(t), n >= 1, n <= 1_000_000_000 else {
                throw SettingsError(
                    key: named("QUEUE_MONITOR_THRESHOLD"), reason: "expected an integer ≥ 1, got \"\(t)\"")
            }
            s.threshold = n
        }
        if let list = value("HERALD_QUEUE_MONITOR_THRESHOLDS") {
            for item in list.split(separator: ",") {
                let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2, !kv[0].isEmpty, let n = Int(kv[1]), n >= 1, n <= 1_000_000_000 else {
                    throw SettingsError(
                        key: "HERALD_QUEUE_MONITOR_THRESHOLDS", reason: "expected queue=n,… with n ≥ 1, got \"\(item)\""
                    )
                }
                s.thresholds[kv[0]] = n
            }
        }
        if let emails = value("QUEUE_MONITOR_ALERT_EMAILS") {
            s.recipients = emails.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
            for r in s.recipients {
                do { _ = try SMTPMessage.Address.parse(r) } catch {
                    throw SettingsError(key: named("QUEUE_MONITOR_ALERT_EMAILS"), reason: "not an address: \"\(r)\"")
                }
            }
        }
        if let m = value("QUEUE_MONITOR_INTERVAL"), let minutes = Double(m), minutes > 0,
            minutes <= TaskSchedule.maxIntervalMinutes
        {
            s.cooldownSeconds = max(1, Int(minutes * 60))
        }
        s.learn = try Settings.boolean(
            value("HERALD_QUEUE_MONITOR_LEARN"), key: "HERALD_QUEUE_MONITOR_LEARN", default: false)
        if let h = value("HERALD_QUEUE_MONITOR_LEARN_HALF_LIFE") {
            guard let v = Double(h), v.isFinite, v >= 0.05, v <= 43_200 else {
                throw SettingsError(
                    key: "HERALD_QUEUE_MONITOR_LEARN_HALF_LIFE",
                    reason: "expected minutes in 0.05...43200, got \"\(h)\"")
            }
            s.learnHalfLifeMinutes = v
        }
        if let i = value("HERALD_QUEUE_SAMPLE_INTERVAL") {
            guard let v = Double(i), v.isFinite, v >= 0.1, v <= 3600 else {
                throw SettingsError(
                    key: "HERALD_QUEUE_SAMPLE_INTERVAL", reason: "expected seconds in 0.1...3600, got \"\(i)\"")
            }
            s.sampleInterval = .milliseconds(Int64(v * 1000))
        }
        return s
    }
}

/// Samples the monitored queues and, when alerts are on, mails about them. Loop-confined.
public final class QueueMonitor: @unchecked Sendable {
    /// What one sample decided for one queue.
    enum Action: Int, Sendable {
        case none = 0, alert = 1, reminder = 2, recovery = 3
    }

    let loop: EventLoop
    let broker: RedisEndpoint
    let keyPrefix: String
    let queues: [String]
    let settings: QueueMonitorSettings
    /// Mail, when alerts are on.
    let mail: MailSettings.Transport?
    let logger: Logger
    let gauges: [String: CoreMetrics.Gauge]
    let mails: [String: CoreMetrics.Counter]
    let failures: CoreMetrics.Counter
    let work = DispatchQueue(label: "herald.queue-monitor")
    /// The broker connection, kept between samples, and the learnt thresholds; touched only on `work`.
    final class Connection: @unchecked Sendable {
        var client: RedisClient?
        var learnt: [String: LearntThreshold] = [:]
    }
    let connection = Connection()
    var sampling = false
    var errorBurst = BurstLimiter()
    lazy var timer = LoopTimer(loop: loop) { [unowned self] in self.sample() }
    /// The latest lengths, by queue (status, tests).
    public private(set) var lengths: [String: Int] = [:]
    /// The thresholds in force at the latest sample, by queue.
    public private(set) var thresholds: [String: Int] = [:]
    let thresholdGauges: [String: CoreMetrics.Gauge]

    /// One Lua call per queue and sample: KEYS alert state, reminder marker; ARGV length,
    /// threshold, cool-down (s), now (Unix s). 1 alert, 2 reminder, 3 recovery, 0 nothing.
    static let script = """
        local len = tonumber(ARGV[1])
        local thr = tonumber(ARGV[2])
        if len >= thr then
          if redis.call('SET', KEYS[1], ARGV[4], 'NX') then
            redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
            return 1
          end
          if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 2 end
          return 0
        end
        if len * 2 < thr and redis.call('DEL', KEYS[1]) == 1 then
          redis.call('DEL', KEYS[2])
          return 3
        end
        return 0
        """

    public init(
        loop: EventLoop, broker: RedisEndpoint, redisKeyPrefix: String, queues: [String],
        settings: QueueMonitorSettings, mail: MailSettings.Transport?, factory: any MetricsFactory, logger: Logger
    ) {
        self.loop = loop
        self.broker = broker
        self.keyPrefix = CeleryMessage.globalKeyPrefix(redisKeyPrefix: redisKeyPrefix)
        self.queues = queues
        self.settings = settings
        self.mail = settings.recipients.isEmpty ? nil : mail
        self.logger = logger
        var g: [String: CoreMetrics.Gauge] = [:]
        for q in queues { g[q] = Gauge(label: "herald_queue_length", dimensions: [("queue", q)], factory: factory) }
        gauges = g
        var tg: [String: CoreMetrics.Gauge] = [:]
        for q in queues {
            tg[q] = Gauge(label: "herald_queue_threshold", dimensions: [("queue", q)], factory: factory)
            tg[q]?.record(settings.threshold(of: q))
        }
        thresholdGauges = tg
        var m: [String: CoreMetrics.Counter] = [:]
        for kind in ["alert", "reminder", "recovery"] {
            m[kind] = Counter(label: "herald_queue_alert_mails_total", dimensions: [("kind", kind)], factory: factory)
        }
        mails = m
        failures = Counter(label: "herald_queue_monitor_errors_total", dimensions: [], factory: factory)
    }

    /// True when crossing a threshold sends mail.
    public var alerting: Bool { mail != nil }

    public func start() {
        loop.assertInLoop()
        sample()
    }

    public func stop() {
        loop.assertInLoop()
        timer.cancel()
    }

    /// Reads every length (and settles the alerts) off the loop; then arms the next sample.
    func sample() {
        guard !sampling else { return }
        sampling = true
        let queues = self.queues, prefix = keyPrefix, broker = self.broker, settings = self.settings
        let mail = self.mail, alerting = self.mail != nil, connection = self.connection
        work.async { [loop] in
            var lengths: [String: Int] = [:]
            var thresholds: [String: Int] = [:]
            var mailed: [(String, Action)] = []
            var error: String?
            do {
                let client = try connection.client ?? RedisClient.gated(endpoint: broker)
                connection.client = client
                for q in queues {
                    let key = prefix + q
                    let replies = try client.pipeline(
                        ([key] + ["3", "6", "9"].map { key + "\u{06}\u{16}" + $0 }).map {
                            [Array("LLEN".utf8), Array($0.utf8)]
                        })
                    var n = 0
                    for r in replies { if case .integer(let v) = r { n += Int(v) } }
                    lengths[q] = n
                    // The threshold in force: the configured one, or learnt from the lengths
                    // before this one (this length is learnt after the decision).
                    var threshold = settings.threshold(of: q)
                    if settings.learn {
                        let samplesPerHalfLife = settings.learnHalfLifeMinutes * 60 / settings.sampleInterval.seconds
                        var l =
                            connection.learnt[q]
                            ?? LearntThreshold(floor: threshold, halfLifeSamples: samplesPerHalfLife)
                        threshold = l.threshold
                        l.learn(n)
                        connection.learnt[q] = l
                    }
                    thresholds[q] = threshold
                    guard alerting, let mail else { continue }
                    let state = prefix + "herald:queue_monitor:\(q)"
                    let reply = try client.command([
                        Array("EVAL".utf8), Array(Self.script.utf8), Array("2".utf8), Array(state.utf8),
                        Array((state + ":reminder").utf8), Array(String(n).utf8),
                        Array(String(threshold).utf8), Array(String(settings.cooldownSeconds).utf8),
                        Array(String(Int(Date().timeIntervalSince1970)).utf8),
                    ])
                    guard case .integer(let a) = reply, let action = Action(rawValue: Int(a)), action != .none else {
                        continue
                    }
                    do {
                        try Self.send(action, queue: q, length: n, threshold: threshold, mail, settings)
                        mailed.append((q, action))
                    } catch {
                        // Not sent: undo the state change, so a later sample tries again.
                        if action == .alert { _ = try? client.command(["DEL", state, state + ":reminder"]) }
                        if action == .reminder { _ = try? client.command(["DEL", state + ":reminder"]) }
                        if action == .recovery { _ = try? client.command(["SET", state, "recovering"]) }
                        throw error
                    }
                }
            } catch let e {
                connection.client = nil  // a new connection at the next sample
                error = "\(e)"
            }
            let result = (lengths, thresholds, mailed, error)
            loop.execute { [self] in self.sampled(result.0, result.1, result.2, result.3) }
        }
    }

    func sampled(
        _ lengths: [String: Int], _ thresholds: [String: Int], _ mailed: [(String, Action)], _ error: String?
    ) {
        sampling = false
        for (q, n) in lengths {
            self.lengths[q] = n
            gauges[q]?.record(n)
        }
        for (q, t) in thresholds {
            self.thresholds[q] = t
            thresholdGauges[q]?.record(t)
        }
        for (q, action) in mailed {
            let kind = action == .alert ? "alert" : action == .reminder ? "reminder" : "recovery"
            mails[kind]?.increment()
            logger.warning(
                "queue monitor: \(kind) mail sent",
                metadata: [
                    "queue": "\(q)", "length": "\(lengths[q] ?? 0)",
                    "threshold": "\(thresholds[q] ?? settings.threshold(of: q))",
                ])
        }
        if let error {
            failures.increment()
            if case .log(let suppressed) = errorBurst.record(now: MonotonicNow.instant) {
                logger.error(
                    "queue monitor: a sample failed (tried again at the next one)",
                    metadata: ["error": "\(error)", "suppressed_since_last": "\(suppressed)"])
            }
        }
        timer.schedule(after: settings.sampleInterval)
    }

    /// One mail, through the mail transport's circuit breaker.
    static func send(
        _ action: Action, queue: String, length: Int, threshold: Int, _ mail: MailSettings.Transport,
        _ settings: QueueMonitorSettings
    ) throws {
        let subject: String
        let headline: String
        switch action {
        case .alert, .reminder:
            subject =
                (action == .reminder ? "Reminder: " : "Alert: ")
                + (queue == "dataset"
                    ? "Dataset Queue pending tasks exceeded the limit"
                    : "Queue \(queue) pending tasks exceeded the limit")
            headline = "Queue \"\(queue)\" has \(length) pending tasks (Threshold: \(threshold))"
        case .recovery:
            subject = "Recovered: Queue \(queue) is back under its limit"
            headline = "Queue \"\(queue)\" has \(length) pending tasks again (Threshold: \(threshold))"
        case .none:
            return
        }
        let at = ISOTime.format(seconds: Int(Date().timeIntervalSince1970))
        let text =
            "Queue Monitoring \(action == .recovery ? "Recovery" : "Alert")\n\n\(headline)\n\n"
            + (action == .recovery
                ? ""
                : "Recommended actions:\n1. Check the queue processing status in the system dashboard\n"
                    + "2. Verify if there are any processing bottlenecks\n3. Consider scaling up workers if needed\n\n")
            + "\(action == .recovery ? "Recovered" : "Alert triggered") at: \(at)\n"
        let html =
            "<html><body><h1>Queue Monitoring \(action == .recovery ? "Recovery" : "Alert")</h1><p>"
            + headline.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            + "</p><p>\(action == .recovery ? "Recovered" : "Alert triggered") at: \(at)</p></body></html>"
        let to = try settings.recipients.map { try SMTPMessage.Address.parse($0) }
        let message = try SMTPMessage(from: mail.from, to: to, subject: subject, text: text, html: html)
        _ = try Circuits.shared.call(Circuits.mail, counts: DocumentNotifyMailTask.isTransportFailure) {
            try mail.send(message)
        }
    }
}
