// The TiDB pool settings: Dify's defaults, bad values refused with the key named (never the
// private key echoed), the API and credentials required only when a task calls the API.

import HeraldTasks
import XCTest

final class TiDBSettingsTests: XCTestCase {
    func testDefaultsAreDifys() throws {
        let s = try TiDBSettings.load(from: [:])
        XCTAssertEqual(s.serverlessNumber, 500)
        XCTAssertFalse(s.createJobEnabled)
        XCTAssertEqual(s.region, "regions/aws-us-east-1")
        XCTAssertEqual(s.spendLimit, 100)
        XCTAssertEqual(s.projectID, "")
        XCTAssertNil(s.apiURL)
        XCTAssertThrowsError(try s.api()) { XCTAssertEqual("\($0)", "TIDB_API_URL: not set") }
    }

    func testValuesAndHeraldOverrides() throws {
        let s = try TiDBSettings.load(from: [
            "TIDB_SERVERLESS_NUMBER": "45", "CREATE_TIDB_SERVICE_JOB_ENABLED": "true",
            "TIDB_API_URL": "https://serverless.tidbapi.com/v1beta1/", "TIDB_PUBLIC_KEY": "pub",
            "TIDB_PRIVATE_KEY": "sekrit-key", "TIDB_REGION": "regions/gcp-us-west1", "TIDB_SPEND_LIMIT": "0",
            "HERALD_TIDB_SERVERLESS_NUMBER": "60",
        ])
        XCTAssertEqual(s.serverlessNumber, 60)
        XCTAssertTrue(s.createJobEnabled)
        XCTAssertEqual(s.region, "regions/gcp-us-west1")
        XCTAssertEqual(s.spendLimit, 0)
        let api = try s.api()
        XCTAssertEqual(api.url, "https://serverless.tidbapi.com/v1beta1")
        XCTAssertEqual(api.credentials.user, "pub")
        XCTAssertFalse("\(s)".contains("sekrit-key"))
        XCTAssertFalse("\(api.credentials)".contains("sekrit-key"))
    }

    func testBadValuesNameTheKey() {
        for (key, value) in [
            ("TIDB_SERVERLESS_NUMBER", "0"), ("TIDB_SERVERLESS_NUMBER", "many"),
            ("CREATE_TIDB_SERVICE_JOB_ENABLED", "maybe"), ("TIDB_SPEND_LIMIT", "-1"),
            ("TIDB_API_URL", "serverless.tidbapi.com"),
        ] {
            XCTAssertThrowsError(try TiDBSettings.load(from: [key: value, "TIDB_PRIVATE_KEY": "sekrit-key"])) {
                XCTAssertEqual(($0 as? TiDBSettingsError)?.key, key)
                XCTAssertTrue("\($0)".hasPrefix(key + ": "), "\($0)")
                XCTAssertFalse("\($0)".contains("sekrit-key"))
            }
        }
        XCTAssertThrowsError(try TiDBSettings.load(from: ["TIDB_API_URL": "http://x", "TIDB_PUBLIC_KEY": "p"]).api()) {
            XCTAssertEqual("\($0)", "TIDB_PRIVATE_KEY: not set")
        }
    }
}
