// `herald status`: asks the running daemon (its /healthz on HERALD_METRICS_ADDR)
// for connection states and the last sweep, and prints them.

import ArgumentParser
import Foundation
import HeraldIO
import HeraldRuntime

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the running daemon's connections and last sweep (reads /healthz on HERALD_METRICS_ADDR)."
    )

    @Flag(name: .long, help: "Print the raw JSON document.")
    var json = false

    func run() throws {
        let settings = try CLI.settings()
        guard let addr = settings.metricsAddress else {
            CLI.fail("HERALD_METRICS_ADDR is off: the daemon has no status endpoint", code: 2)
        }
        let host = addr.host == "0.0.0.0" ? "127.0.0.1" : (addr.host.contains(":") ? "[\(addr.host)]" : addr.host)
        let url = "http://\(host):\(addr.port)/healthz"
        let response: (status: Int, body: [UInt8])
        do { response = try HTTPClient.get(url) } catch {
            CLI.fail("no daemon answering at \(url): \(error.description)", code: 1)
        }
        let text = String(decoding: response.body, as: UTF8.self)
        if json {
            print(text)
        } else {
            print(Self.humanReadable(text))
        }
        if response.status != 200 { throw ExitCode(1) }
    }

    /// `text` with control characters (other than newlines) written as `\u{1b}`: values such as
    /// the instance id come from settings, and must not drive the terminal.
    static func printable(_ text: String) -> String {
        var out = ""
        for s in text.unicodeScalars {
            if s != "\n", s.value < 0x20 || (0x7F...0x9F).contains(s.value) {
                out += "\\u{" + String(s.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(s)
            }
        }
        return out
    }

    static func humanReadable(_ json: String) -> String {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return json }
        var lines: [String] = []
        lines.append(
            "instance  \(obj["instance"] ?? "?")   status \(obj["status"] ?? "?")   uptime \(obj["uptime_seconds"] ?? 0)s"
                + "   version \(obj["version"] ?? "?")"
        )
        if let sources = obj["sources"] as? [String: Any] {
            for k in sources.keys.sorted() {
                lines.append("  \(k.padding(toLength: 20, withPad: " ", startingAt: 0)) \(sources[k]!)")
            }
        }
        for p in (obj["problems"] as? [String]) ?? [] { lines.append("NOT READY  \(p)") }
        if let sweep = obj["sweep"] as? [String: Any] {
            if let at = sweep["last_at"] {
                lines.append(
                    "sweep     \(sweep["count"] ?? 0) runs, last \(at) (\(sweep["last_reason"] ?? "")), \(sweep["seconds_ago"] ?? 0)s ago"
                )
            } else {
                lines.append("sweep     none yet")
            }
        }
        if let k = obj["keyspace_expiry_events"] { lines.append("keyspace expiry events  \(k)") }
        if let circuits = obj["circuits"] as? [String: Any] {
            let parts = circuits.keys.sorted().map { d -> String in
                let c = circuits[d] as? [String: Any]
                return "\(d) \(c?["state"] ?? "?")" + ((c?["last_failure"]).map { " (\($0))" } ?? "")
            }
            lines.append("circuits  " + parts.joined(separator: ", "))
        }
        if let sched = obj["schedules"] as? [String: Any] {
            lines.append("schedules \(sched["armed"] ?? 0) plans armed")
            for f in (sched["failing"] as? [[String: Any]]) ?? [] {
                lines.append("  FAILING \(f["operation"] ?? "?") since \(f["since"] ?? "?"): \(f["error"] ?? "")")
            }
            for f in (sched["recent_fires"] as? [[String: Any]]) ?? [] {
                lines.append(
                    "  fired \(f["plan"] ?? "?") at \(f["scheduled_at"] ?? "?") via \(f["via"] ?? "?") -> \(f["queue"] ?? "?")"
                )
            }
        }
        if let tasks = obj["tasks"] as? [[String: Any]], !tasks.isEmpty {
            lines.append("tasks")
            for t in tasks {
                let name = "\(t["task"] ?? "?")".padding(toLength: 34, withPad: " ", startingAt: 0)
                let runs = "\(t["runs"] ?? "?")".padding(toLength: 17, withPad: " ", startingAt: 0)
                var line = "  \(name) \(runs) " + ((t["enabled"] as? Bool) == true ? "on " : "off")
                if let next = t["next_tick"] { line += "  next \(next)" }
                if let last = t["last"] as? [String: Any] {
                    line += "  last \(last["status"] ?? "?") at \(last["at"] ?? "?")"
                    if let s = last["seconds"] { line += " (\(s) s)" }
                }
                lines.append(line)
            }
        }
        return Self.printable(lines.joined(separator: "\n"))
    }
}
