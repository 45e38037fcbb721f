// The bridge between wall-clock minutes and real instants in one IANA zone, built on
// Foundation's TimeZone. Cron arithmetic happens on wall-clock minutes; this type
// says which instants (none in a spring-forward gap, two in a fall-back overlap) a
// wall-clock minute stands for, which is all the DST logic needs.

import Foundation

/// An IANA time zone in which schedules are evaluated (Dify's plan `timezone`, Celery's `LOG_TZ`).
public struct CronZone: Sendable, Hashable, CustomStringConvertible {
    /// The underlying Foundation zone.
    public let timeZone: TimeZone
    /// The name the zone was looked up by.
    public let identifier: String

    /// Coordinated Universal Time.
    public static let utc = CronZone(validated: TimeZone(identifier: "UTC")!, identifier: "UTC")

    /// Looks up an IANA zone such as `America/New_York`, `Asia/Kolkata` or `UTC`.
    /// Names are matched exactly, then case-insensitively (as pytz does). Foundation's
    /// non-IANA forms (`GMT+0530`) are refused.
    public init(identifier: String) throws(CronError) {
        if let zone = Self.lookup(identifier) {
            self.init(validated: zone, identifier: identifier)
        } else {
            throw .unknownTimeZone(identifier)
        }
    }

    /// Wraps an existing Foundation zone without validation.
    public init(_ timeZone: TimeZone) {
        self.init(validated: timeZone, identifier: timeZone.identifier)
    }

    private init(validated: TimeZone, identifier: String) {
        self.timeZone = validated
        self.identifier = identifier
    }

    public var description: String { identifier }

    /// Seconds east of UTC in force at `instant` (Unix seconds).
    public func offset(atUnixSeconds instant: Int64) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    private static func lookup(_ name: String) -> TimeZone? {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
                || byte == 47 || byte == 95 || byte == 45 || byte == 43
        }
        guard allowed, !name.isEmpty, name.utf8.count <= 64 else { return nil }
        let upper = name.uppercased()
        // Foundation parses "GMT+5", "UTC-0300" as custom offsets; IANA spells those Etc/GMT±N.
        if (upper.hasPrefix("GMT") || upper.hasPrefix("UTC")) && upper.count > 3 { return nil }
        if let zone = TimeZone(identifier: name) { return zone }
        let lowered = name.lowercased()
        if lowered == "utc" { return TimeZone(identifier: "UTC") }
        if let known = TimeZone.knownTimeZoneIdentifiers.first(where: { $0.lowercased() == lowered }) {
            return TimeZone(identifier: known)
        }
        return nil
    }

    /// The instants a wall-clock minute denotes, earliest first, each with its offset:
    /// one normally, none in a spring-forward gap, two in a fall-back overlap.
    func instants(of local: LocalMinute) -> [(instant: Int64, offset: Int)] {
        let wall = local * 60
        var offsets: [Int] = []
        for probe in [wall - 86_400, wall, wall + 86_400] {
            let candidate = offset(atUnixSeconds: probe)
            if !offsets.contains(candidate) { offsets.append(candidate) }
        }
        var found: [(instant: Int64, offset: Int)] = []
        for candidate in offsets {
            let instant = wall - Int64(candidate)
            if offset(atUnixSeconds: instant) == candidate && !found.contains(where: { $0.instant == instant }) {
                found.append((instant, candidate))
            }
        }
        return found.sorted { $0.instant < $1.instant }
    }

    /// The wall-clock minute (truncated) showing at `instant`, given the offset in force.
    func localMinute(atUnixMicros micros: Int64, offset: Int) -> LocalMinute {
        CivilCalendar.floorDiv(micros + Int64(offset) * 1_000_000, 60_000_000)
    }
}
