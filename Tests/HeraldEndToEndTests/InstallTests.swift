// `make install` as a packager and an operator use it: every file lands under DESTDIR where the
// unit expects it, the operator's topology and env file survive a second install, and the
// installed unit passes `systemd-analyze verify` and keeps its hardening
// (topology/systemd/herald.service, topology/systemd/install.sh).

import Foundation
import XCTest

final class InstallTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("herald-install-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: scratch)
    }

    func testInstallPlacesEveryFileAndKeepsTheOperatorsOnes() throws {
        let binary = try Binary.path()
        let destdir = scratch.appendingPathComponent("root").path
        let first = try Self.makeInstall(destdir: destdir, prefix: "/usr/local", binary: binary)
        XCTAssertEqual(first.status, 0, first.output)

        let fm = FileManager.default
        let installed = destdir + "/usr/local/bin/herald"
        XCTAssertTrue(fm.isExecutableFile(atPath: installed), first.output)
        let version = try Self.run([installed, "--version"])
        XCTAssertEqual(version.status, 0, version.output)
        XCTAssertEqual(version.output, try Self.run([binary, "--version"]).output)

        let topology = destdir + "/etc/herald/topology.json"
        XCTAssertEqual(
            try String(contentsOfFile: topology, encoding: .utf8),
            try String(contentsOfFile: Self.repoRoot + "/topology/default.json", encoding: .utf8))
        let envFile = destdir + "/etc/herald/herald.env"
        let envMode = try fm.attributesOfItem(atPath: envFile)[.posixPermissions] as? Int
        XCTAssertEqual(envMode, 0o600, "the env file holds passwords: root only")
        XCTAssertTrue(try String(contentsOfFile: envFile, encoding: .utf8).contains("CELERY_BROKER_URL="))

        let unit = try String(contentsOfFile: destdir + "/usr/local/lib/systemd/system/herald.service", encoding: .utf8)
        let lines = Set(unit.split(separator: "\n").map(String.init))
        for expected in [
            "ExecStart=/usr/local/bin/herald run", "EnvironmentFile=/etc/herald/herald.env",
            "Environment=HERALD_TOPOLOGY=/etc/herald/topology.json", "ExecReload=/bin/kill -HUP $MAINPID",
            "DynamicUser=yes", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
        ] {
            XCTAssertTrue(lines.contains(expected), "herald.service lacks \(expected):\n\(unit)")
        }
        XCTAssertFalse(unit.contains("@PREFIX@") || unit.contains("@SYSCONFDIR@"), unit)

        // The operator edits both files; a second install (an upgrade) keeps them and leaves the new
        // defaults beside them.
        try "{\"edited\": true}\n".write(toFile: topology, atomically: true, encoding: .utf8)
        try "DB_HOST=db.internal\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        let second = try Self.makeInstall(destdir: destdir, prefix: "/usr/local", binary: binary)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(try String(contentsOfFile: topology, encoding: .utf8), "{\"edited\": true}\n")
        XCTAssertEqual(try String(contentsOfFile: envFile, encoding: .utf8), "DB_HOST=db.internal\n")
        XCTAssertTrue(fm.fileExists(atPath: topology + ".default"), second.output)
        XCTAssertTrue(fm.fileExists(atPath: envFile + ".default"), second.output)

        // Another PREFIX reaches the unit; a missing binary is refused with the way round.
        let opt = scratch.appendingPathComponent("opt").path
        XCTAssertEqual(try Self.makeInstall(destdir: opt, prefix: "/opt/herald", binary: binary).status, 0)
        let optUnit = try String(contentsOfFile: opt + "/opt/herald/lib/systemd/system/herald.service", encoding: .utf8)
        XCTAssertTrue(optUnit.contains("\nExecStart=/opt/herald/bin/herald run\n"), optUnit)
        let missing = try Self.makeInstall(destdir: opt, prefix: "/usr/local", binary: scratch.path + "/no-herald")
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("make build"), missing.output)
    }

    func testInstalledUnitPassesSystemdAnalyzeVerify() throws {
        let binary = try Binary.path()
        let analyze = try Self.systemdAnalyze()
        let destdir = scratch.appendingPathComponent("root").path
        let install = try Self.makeInstall(destdir: destdir, prefix: "/usr/local", binary: binary)
        XCTAssertEqual(install.status, 0, install.output)
        let unit = try String(contentsOfFile: destdir + "/usr/local/lib/systemd/system/herald.service", encoding: .utf8)

        // verify checks that ExecStart's binary exists: a copy of the unit names the one under
        // DESTDIR. It prints a warning for any directive it does not know, so the output must be empty.
        let verifyDir = scratch.appendingPathComponent("verify")
        try FileManager.default.createDirectory(at: verifyDir, withIntermediateDirectories: true)
        let copy = verifyDir.appendingPathComponent("herald.service").path
        let rewritten = unit.replacingOccurrences(
            of: "\nExecStart=/usr/local/bin/herald ", with: "\nExecStart=\(destdir)/usr/local/bin/herald ")
        XCTAssertNotEqual(rewritten, unit)
        try rewritten.write(toFile: copy, atomically: true, encoding: .utf8)
        let verify = try Self.run([analyze, "verify", copy])
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertEqual(verify.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "verify warned")

        // The same check refuses a unit whose binary is not there (so the pass above means something).
        let absent = verifyDir.appendingPathComponent("absent")
        try FileManager.default.createDirectory(at: absent, withIntermediateDirectories: true)
        let broken = unit.replacingOccurrences(
            of: "\nExecStart=/usr/local/bin/herald ", with: "\nExecStart=\(scratch.path)/nowhere/herald ")
        try broken.write(
            toFile: absent.appendingPathComponent("herald.service").path, atomically: true, encoding: .utf8)
        let refused = try Self.run([analyze, "verify", absent.appendingPathComponent("herald.service").path])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("nowhere/herald"), refused.output)

        // The hardening, as systemd scores it (0 is the most confined, 10 the least; an unhardened
        // service scores 9.6). Losing any of the unit's sandboxing options raises it past 2.
        let security = try Self.run([analyze, "security", "--offline=yes", "--no-pager", copy])
        XCTAssertEqual(security.status, 0, security.output)
        guard let line = security.output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }),
            let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap({ Double($0) })
        else { return XCTFail("no exposure level in:\n\(security.output)") }
        XCTAssertLessThanOrEqual(score, 2.0, String(line))
    }

    // MARK: - helpers

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// `make install` from the repository with the binary under test (no build).
    static func makeInstall(destdir: String, prefix: String, binary: String) throws -> (status: Int32, output: String) {
        try run(["make", "-C", repoRoot, "install", "DESTDIR=\(destdir)", "PREFIX=\(prefix)", "HERALD=\(binary)"])
    }

    /// systemd-analyze (Debian's `systemd`, which Tests/Support/deps.sh installs).
    static func systemdAnalyze() throws -> String {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/systemd-analyze") {
            return dir + "/systemd-analyze"
        }
        if ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
            XCTFail("systemd-analyze is missing although Tests/Support/deps.sh installs systemd")
        }
        throw XCTSkip("no systemd-analyze (apt-get install systemd)")
    }

    /// Runs a command to completion; stdout and stderr together, from a file (no pipe to fill).
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(
            "herald-install-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }
}
