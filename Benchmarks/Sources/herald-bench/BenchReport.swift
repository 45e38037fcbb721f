// What every scenario hands back and the one printer/writer for it: Markdown
// tables with Herald and its references side by side, a targets summary that
// says MISSED plainly, and an ordered JSON value merged per scenario into the
// --json file without touching the other scenarios' objects.

import Foundation
import HeraldCore
import HeraldRuntime

/// One table of figures, printed as an aligned Markdown table (paste-ready for docs/benchmarks.md).
struct BenchTable: Sendable {
    var title: String
    var columns: [String]
    var rows: [[String]] = []
    var notes: [String] = []

    mutating func row(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        var widths = columns.map { $0.count }
        for r in rows {
            for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for i in 0..<columns.count {
                let c = i < cells.count ? cells[i] : ""
                let pad = String(repeating: " ", count: widths[i] - c.count)
                parts.append(i == 0 ? c + pad : pad + c)
            }
            return "| " + parts.joined(separator: " | ") + " |"
        }
        var out = "### " + title + "\n\n" + line(columns) + "\n"
        out +=
            "|"
            + widths.enumerated().map { i, w in
                i == 0
                    ? " " + String(repeating: "-", count: w) + " " : " " + String(repeating: "-", count: w - 1) + ": "
            }.joined(separator: "|") + "|\n"
        for r in rows { out += line(r) + "\n" }
        for n in notes { out += "\n" + n }
        if !notes.isEmpty { out += "\n" }
        return out
    }
}

/// One target of a scenario (docs/benchmarks.md), judged from this run's figures.
struct TargetCheck: Sendable {
    var name: String
    var required: String
    var measured: String
    /// nil when the figure could not be measured in this run.
    var met: Bool?

    var verdict: String {
        switch met {
        case true?: return "met"
        case false?: return "MISSED"
        case nil: return "not measured"
        }
    }

    var json: BenchJSON {
        .object([
            ("name", .string(name)), ("required", .string(required)), ("measured", .string(measured)),
            ("met", met.map(BenchJSON.bool) ?? .null),
        ])
    }
}

/// The outcome of one scenario.
struct ScenarioReport: Sendable {
    var name: String
    var header: [String] = []
    var tables: [BenchTable] = []
    var targets: [TargetCheck] = []
    var json: [(String, BenchJSON)] = []
    var elapsedNs: Int64 = 0

    func render() -> String {
        var out = "## Scenario `\(name)`\n\n"
        for h in header { out += h + "\n" }
        if !header.isEmpty { out += "\n" }
        for t in tables { out += t.render() + "\n" }
        if !targets.isEmpty {
            var t = BenchTable(title: "Targets (`\(name)`)", columns: ["target", "required", "measured", "verdict"])
            for c in targets { t.row(c.name, c.required, c.measured, c.verdict) }
            out += t.render() + "\n"
        }
        out += "Scenario `\(name)` took \(Fmt.duration(ns: elapsedNs)).\n"
        return out
    }

    var fullJSON: BenchJSON {
        .object(json + [("targets", .array(targets.map(\.json))), ("elapsed_ns", .int(elapsedNs))])
    }
}

/// A JSON value with ordered object keys (so the file reads like the tables).
indirect enum BenchJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([BenchJSON])
    case object([(String, BenchJSON)])

    static func int(_ v: Int) -> BenchJSON { .int(Int64(v)) }

    /// Pretty-printed text, two-space indent.
    func render(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .string(let s): return Self.quote(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy({ $0.isScalar }) {
                return "[" + items.map { $0.render() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { inner + $0.render(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n"
                + members.map { inner + Self.quote($0.0) + ": " + $0.1.render(indent: inner) }
                .joined(separator: ",\n") + "\n" + indent + "}"
        }
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    static func quote(_ s: String) -> String { HeraldLogHandler.jsonString(s) }

    /// Converts a parsed value (from an earlier file) back; integral numbers stay integers.
    init(_ v: JSONValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let d):
            if d.rounded() == d, d.magnitude < 9e15 { self = .int(Int64(d)) } else { self = .double(d) }
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(BenchJSON.init))
        case .object(let o): self = .object(o.keys.sorted().map { ($0, BenchJSON(o[$0]!)) })
        }
    }

    /// Replaces (or adds) the `name` member of the JSON object in `path`, creating the file when missing.
    static func merge(_ value: BenchJSON, as name: String, into path: String) throws {
        var members: [(String, BenchJSON)] = []
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty,
            let parsed = try? JSONReader.parse([UInt8](data), maxDepth: 64),
            case .object(let existing) = BenchJSON(parsed)
        {
            members = existing
        }
        if let i = members.firstIndex(where: { $0.0 == name }) {
            members[i].1 = value
        } else {
            members.append((name, value))
        }
        let text = BenchJSON.object(members).render() + "\n"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
