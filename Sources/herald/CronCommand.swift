// `herald cron next`: ask the cron engine when an expression fires, in a given zone,
// from a given instant. Operators use it to check a Dify schedule (and its DST
// behaviour) without starting the daemon; the parsing and search live in HeraldCore.

import ArgumentParser
import Foundation
import HeraldCore

/// `herald cron …`: cron expression tools.
struct CronCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron",
        abstract: "Inspect cron expressions as Herald (and Dify's croniter) evaluates them.",
        subcommands: [Next.self]
    )

    /// `herald cron next EXPR [--tz ZONE] [--from INSTANT] [--count N]`.
    struct Next: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "next",
            abstract: "Print the next fire times of a cron expression.",
            discussion: """
                Prints one ISO-8601 instant per line, with the zone's UTC offset at that instant, \
                for example 2026-03-08T03:00:00-04:00. Accepts five fields (minute hour \
                day-of-month month day-of-week), names, ranges, steps, lists, L, ?, W, #, \
                and @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly. \
                A fixed-time job whose local time repeats at a DST fall-back fires once, at the \
                first occurrence (see docs/cron.md). Invalid input prints one line on standard \
                error and exits with status 2.
                """
        )

        @Argument(help: "The cron expression, quoted, e.g. '30 2 * * 1-5' or '@daily'.")
        var expression: String

        @Option(name: .long, help: ArgumentHelp("IANA time zone the expression reads.", valueName: "zone"))
        var tz: String = "UTC"

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Start after this instant: ISO-8601 with offset (2026-03-08T01:30:00-05:00 or …Z), "
                    + "a local date-time in --tz (2026-03-08T01:30), or Unix seconds. Default: now.",
                valueName: "instant"))
        var from: String?

        @Option(name: .long, help: ArgumentHelp("How many fire times to print (1-10000).", valueName: "n"))
        var count: FireCount = FireCount(text: "1")

        func run() throws {
            do {
                guard let count = Int(count.text), (1...10_000).contains(count) else {
                    throw CronCommandError.badCount(count.text)
                }
                let schedule = try CronSchedule(expression, timeZone: tz)
                let start = try from.map { try Self.instant($0, zone: schedule.zone) } ?? Date().timeIntervalSince1970
                for fire in try schedule.fires(afterUnixSeconds: start, count: count) {
                    print(fire.iso8601)
                }
            } catch let error as CronError {
                throw Self.fail("\(error)")
            } catch let error as CronCommandError {
                throw Self.fail("\(error)")
            }
        }

        /// Prints `herald cron next: <message>` on stderr; the caller throws the exit status 2.
        static func fail(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("herald cron next: \(message)\n".utf8))
            return ExitCode(2)
        }

        /// Unix seconds for `--from`.
        static func instant(_ text: String, zone: CronZone) throws(CronCommandError) -> Double {
            if let seconds = Double(text), seconds.isFinite { return seconds }
            for options: ISO8601DateFormatter.Options in [
                [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds],
            ] {
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = options
                if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
            }
            if let date = localDate(text, zone: zone.timeZone) { return date.timeIntervalSince1970 }
            throw .badInstant(text)
        }

        /// `YYYY-MM-DDTHH:MM[:SS]` (or with a space) read on the wall clock of `zone`.
        static func localDate(_ text: String, zone: TimeZone) -> Date? {
            let parts = text.split(whereSeparator: { "-T :".contains($0) }).map { Int($0) }
            guard parts.count == 5 || parts.count == 6, parts.allSatisfy({ $0 != nil }) else { return nil }
            let v = parts.map { $0! }
            guard (1...9999).contains(v[0]), (1...12).contains(v[1]), (0...23).contains(v[3]),
                (0...59).contains(v[4]), v.count == 5 || (0...59).contains(v[5])
            else { return nil }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let components = DateComponents(
                year: v[0], month: v[1], day: v[2], hour: v[3], minute: v[4], second: v.count == 6 ? v[5] : 0)
            guard
                let days = calendar.range(
                    of: .day, in: .month,
                    for: calendar.date(from: DateComponents(year: v[0], month: v[1], day: 1)) ?? Date()),
                days.contains(v[2])
            else { return nil }
            return calendar.date(from: components)
        }
    }
}

/// `--count` kept as text, so that a non-number is reported like every other bad
/// input (one line, status 2) rather than by ArgumentParser's usage error.
struct FireCount: ExpressibleByArgument {
    let text: String
    init(text: String) { self.text = text }
    init?(argument: String) { text = argument }
    var defaultValueDescription: String { text }
}

/// Bad `herald cron next` options that are not cron errors.
enum CronCommandError: Error, CustomStringConvertible {
    case badCount(String)
    case badInstant(String)

    var description: String {
        switch self {
        case .badCount(let n): return "--count must be a whole number from 1 to 10000, got '\(n)'"
        case .badInstant(let text):
            return "--from '\(text)' is not ISO-8601 (2026-03-08T01:30:00-05:00), a local date-time"
                + " (2026-03-08T01:30) or Unix seconds"
        }
    }
}
