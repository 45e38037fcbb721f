// Herald's cron engine against the real croniter, the library Dify computes
// `next_run_at` with. Tests/Support/croniter_cases.py draws 12,000 seeded cases
// (syntax x zones x instants near DST transitions); every answer must match except
// the one documented difference: a fixed-time job's second run in a repeated hour.

import Foundation
import HeraldCore
import XCTest

final class CronDifferentialTests: XCTestCase {
    struct Case: Decodable {
        let e: String
        let z: String
        let b: Double
        let n: Int64?
        let err: String?
        let second: Bool
        let alt: Int64?
    }

    func testAgreesWithCroniter() throws {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"], !python.isEmpty else {
            let message =
                "HERALD_TEST_PYTHON is unset: point it at a Python with croniter>=6.2.2,<7 and pytz"
                + " (python3 -m venv /tmp/cronvenv && /tmp/cronvenv/bin/pip install 'croniter>=6.2.2,<7' pytz)"
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail(message)
                return
            }
            throw XCTSkip(message)
        }
        // HERALD_CRON_CASES / HERALD_CRON_SEED explore beyond the fixed default run.
        let count = env["HERALD_CRON_CASES"].flatMap { Int($0) } ?? 12_000
        let seed = env["HERALD_CRON_SEED"].flatMap { Int($0) } ?? 20_260_612
        let cases = try Self.generateCases(python: python, count: count, seed: seed)
        XCTAssertGreaterThanOrEqual(cases.count, min(count, 10_000), "the generator produced too few cases")

        var failures: [String] = []
        var tolerated = 0, agreedFires = 0, agreedErrors = 0, croniterCrashes = 0
        for c in cases {
            var schedule: CronSchedule?
            var outcome: Result<Int64, CronError>
            do {
                let parsed = try CronSchedule(c.e, timeZone: c.z)
                schedule = parsed
                outcome = .success(try parsed.next(afterUnixSeconds: c.b))
            } catch {
                outcome = .failure(error)
            }
            let label = "'\(c.e)' in \(c.z) after \(c.b)"
            switch (c.err, outcome) {
            case (nil, .success(let ours)):
                if ours == c.n {
                    agreedFires += 1
                } else if c.second, ours == c.alt, schedule?.expression.isFixedTime == true {
                    tolerated += 1  // croniter's second run of a repeated wall-clock time
                } else {
                    failures.append("\(label): croniter \(c.n.map(String.init) ?? "nil"), herald \(ours)")
                }
            case ("date", .failure(.neverFires)):
                agreedErrors += 1
            case ("parse", .failure(let error)):
                switch error {
                case .invalidField, .wrongFieldCount, .unsupported: agreedErrors += 1
                default: failures.append("\(label): croniter refuses the syntax, herald says \(error)")
                }
            case (let kind?, .success(let ours)) where kind.hasPrefix("crash:"):
                // croniter itself fails here (pytz's negative DST in Europe/Dublin trips an
                // assertion); Herald must still answer with a fire after the base.
                croniterCrashes += 1
                if Double(ours) <= c.b { failures.append("\(label): herald \(ours) is not after the base") }
            default:
                failures.append("\(label): croniter \(c.err ?? String(describing: c.n)), herald \(outcome)")
            }
        }
        print(
            "cron differential: \(cases.count) cases, \(agreedFires) equal fires, \(agreedErrors) equal errors,"
                + " \(tolerated) fall-back repeats skipped, \(croniterCrashes) croniter crashes")
        XCTAssert(
            failures.isEmpty,
            "\(failures.count) disagreements with croniter:\n"
                + failures.prefix(25).joined(separator: "\n"))
        XCTAssertGreaterThan(tolerated, 0, "no case exercised the fall-back difference; the generator drifted")
        XCTAssertGreaterThan(agreedErrors, 0, "no error case was compared")
    }

    /// Runs the generator and decodes its JSON lines.
    static func generateCases(python: String, count: Int, seed: Int) throws -> [Case] {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/croniter_cases.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, String(count), String(seed)]
        let stdout = Pipe()
        let stderrURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("croniter_cases-\(ProcessInfo.processInfo.processIdentifier).err")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stderr = try FileHandle(forWritingTo: stderrURL)
        defer { try? FileManager.default.removeItem(at: stderrURL) }
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try stderr.close()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
            XCTFail("\(python) \(script.path) exited \(process.terminationStatus):\n\(message)")
            return []
        }
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(Case.self, from: Data($0)) }
    }
}
