// Garbage in, typed error out: seeded random strings and mutations of valid
// expressions must never trap the parser or the search, and every fire that comes
// back must lie after its base and on a whole minute of the zone.

import HeraldCore
import XCTest

final class CronFuzzTests: XCTestCase {
    /// SplitMix64: a tiny deterministic generator so failures reproduce.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet: [Character] = Array("0123456789 */-,?#LlWwHhRr@jJanMonsuAPRdecFRI\t\n\u{a0}é٣😀%()_+.:")
    static let seeds = [
        "*/5 * * * *", "0 0 1,15,L * *", "30 2 * * mon-fri", "@daily", "0 9 * * mon#2",
        "0 0 15W * *", "59 23 31 12 7", "0 */2 1-10/3 jan-jun ?",
    ]
    static let zones = [
        "UTC", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata",
        "Europe/London", "Europe/Dublin", "America/Santiago", "Pacific/Apia", "Asia/Kathmandu",
        "Bogus/Zone", "", "GMT+5",
    ]

    func testRandomInputNeverTraps() {
        var rng = Seeded(state: 0xC0FFEE)
        var parsed = 0, fired = 0
        for round in 0..<20_000 {
            let text: String
            if round % 2 == 0 {
                let length = Int.random(in: 0...24, using: &rng)
                text = String((0..<length).map { _ in Self.alphabet.randomElement(using: &rng)! })
            } else {
                var characters = Array(Self.seeds.randomElement(using: &rng)!)
                for _ in 0..<Int.random(in: 0...2, using: &rng) {
                    let position = Int.random(in: 0...characters.count, using: &rng)
                    let character = Self.alphabet.randomElement(using: &rng)!
                    if position < characters.count && Bool.random(using: &rng) {
                        characters[position] = character
                    } else {
                        characters.insert(character, at: position)
                    }
                }
                text = String(characters)
            }
            let zone = Self.zones.randomElement(using: &rng)!
            let base = Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &rng))
            do {
                let schedule = try CronSchedule(text, timeZone: zone)
                parsed += 1
                let fire = try schedule.nextFire(afterUnixMicros: Int64(base) * 1_000_000)
                fired += 1
                XCTAssertGreaterThan(Double(fire.unixSeconds), base, "'\(text)' in \(zone)")
                XCTAssertEqual((fire.unixSeconds + Int64(fire.offset)) % 60, 0, "'\(text)' in \(zone)")
            } catch {
                XCTAssertFalse(error.description.isEmpty)
            }
        }
        XCTAssertGreaterThan(parsed, 2_000, "the mutations should leave many expressions valid")
        XCTAssertGreaterThan(fired, 2_000)
    }
}
