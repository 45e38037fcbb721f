// Typos in setting names are not silent, and the list of known names is the list of sections of
// docs/configuration.md (in both directions: a documented setting is known, a known one documented).

import Foundation
import HeraldRuntime
import XCTest

final class SettingNamesTests: XCTestCase {
    func testTyposAndUnknownHeraldVariablesAreNamedWithTheClosestSetting() throws {
        let env = [
            "ENABLE_CLEAN_MESSAGE": "true", "HERALD_SWEEP_INTERVALL": "5", "HERALD_NO_SUCH_THING": "1",
            // Known, overrides of Dify names, and Dify's own unrelated variables: no warning.
            "HERALD_SWEEP_INTERVAL": "5", "HERALD_ENABLE_CLEAN_MESSAGES": "true", "ENABLE_CLEAN_MESSAGES": "false",
            "SECRET_KEY": "x", "CONSOLE_API_URL": "http://x", "VECTOR_STORE": "weaviate", "PATH": "/bin",
        ]
        let warnings = SettingNames.warnings(env)
        XCTAssertEqual(
            warnings,
            [
                "ENABLE_CLEAN_MESSAGE is not a setting Herald reads; did you mean ENABLE_CLEAN_MESSAGES?",
                "unknown setting HERALD_NO_SUCH_THING is ignored",
                "unknown setting HERALD_SWEEP_INTERVALL is ignored; did you mean HERALD_SWEEP_INTERVAL?",
            ])
        // Settings.load carries them to the start-up log.
        let s = try Settings.load(from: env.merging(["CELERY_BROKER_URL": "redis://h:1/1"]) { $1 })
        XCTAssertEqual(s.warnings, warnings)
    }

    func testKnownNamesAreExactlyTheDocumentedSettings() throws {
        let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: doc, encoding: .utf8)
        var documented = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("## ") {
            for name in line.dropFirst(3).split(separator: ",") {
                documented.insert(name.trimmingCharacters(in: .whitespaces))
            }
        }
        XCTAssertEqual(documented.subtracting(SettingNames.known).sorted(), [], "documented but not known")
        XCTAssertEqual(SettingNames.known.subtracting(documented).sorted(), [], "known but not documented")
    }
}
