// Structured log lines for swift-log, in logfmt or JSON, one write(2) per line
// to stderr so lines from different threads never interleave.

import Glibc
import HeraldCore
import Logging

/// A swift-log handler writing logfmt or JSON lines to stderr.
public struct HeraldLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    public let format: LogFormat
    private let fd: Int32

    public init(label: String, format: LogFormat, level: Logger.Level, fd: Int32 = 2) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.fd = fd
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Bootstraps swift-log once for the process.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in HeraldLogHandler(label: label, format: format, level: level) }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.render(
            format: format, level: event.level, message: event.message.description,
            metadata: merged, timestamp: Self.timestamp())
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }

    public static func render(
        format: LogFormat, level: Logger.Level, message: String, metadata: Logger.Metadata, timestamp: String
    ) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .logfmt:
            var s = "ts=\(timestamp) level=\(level.rawValue) msg=\(logfmtValue(message))"
            for k in keys { s += " \(k)=\(logfmtValue(metadata[k]!.description))" }
            return s
        case .json:
            var s =
                "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(level.rawValue)),\"msg\":\(jsonString(message))"
            for k in keys { s += ",\(jsonString(k)):\(jsonString(metadata[k]!.description))" }
            return s + "}"
        }
    }

    static func logfmtValue(_ v: String) -> String {
        let needsQuotes =
            v.isEmpty || v.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.asciiValue.map { $0 < 0x20 } ?? false }
        return needsQuotes ? jsonString(v) : v
    }

    /// A JSON string literal with every control character escaped.
    public static func jsonString(_ v: String) -> String { JSONText.quote(v) }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ISOTime.format(seconds: Int(ts.tv_sec), millis: Int(ts.tv_nsec / 1_000_000))
    }
}

/// UTC ISO-8601 timestamps without Foundation.
public enum ISOTime {
    public static func format(seconds: Int, millis: Int? = nil) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        var s = "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
        s += "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2))"
        if let ms = millis { s += "." + pad(Int32(ms), 3) }
        return s + "Z"
    }
}
