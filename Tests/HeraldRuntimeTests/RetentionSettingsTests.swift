// The retention settings (Dify's names and defaults), the sandbox rule and the
// tenant_plan cache format, without servers.

import HeraldCore
import HeraldTasks
import XCTest

final class RetentionSettingsTests: XCTestCase {
    func testDefaultsAreDifys() throws {
        let s = try RetentionSettings.load(from: [:])
        XCTAssertEqual(s, RetentionSettings.defaults)
        XCTAssertEqual(s.messageRetentionDays, 30)
        XCTAssertEqual(s.messageBatchSize, 1000)
        XCTAssertEqual(s.messagePauseMaxMs, 200)
        XCTAssertEqual(s.gracePeriodDays, 21)
        XCTAssertEqual(s.workflowLogRetentionDays, 30)
        XCTAssertEqual(s.workflowLogBatchSize, 100)
        XCTAssertEqual(s.workflowIDs, [])
        XCTAssertFalse(s.billingEnabled)
        XCTAssertEqual(s.maxBatchGrowth, 10)
        XCTAssertEqual(s.batchTargetMs, 100)
        XCTAssertEqual(s.statementTimeoutMs, 150)
        XCTAssertEqual(s.lockTimeoutMs, 100)
    }

    func testValuesAndErrorsNameTheKey() throws {
        let s = try RetentionSettings.load(from: [
            "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL": "0", "WORKFLOW_LOG_CLEANUP_BATCH_SIZE": " 50 ",
            "WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS":
                " 6F9619FF-8B86-D011-B42D-00C04FC964FF, ,0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "BILLING_ENABLED": "true",
        ])
        XCTAssertEqual(s.messagePauseMaxMs, 0, "Herald accepts 0: no pause")
        XCTAssertEqual(s.workflowLogBatchSize, 50)
        XCTAssertEqual(s.workflowIDs, ["6f9619ff-8b86-d011-b42d-00c04fc964ff", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"])
        XCTAssertTrue(s.billingEnabled)
        for (key, bad) in [
            ("SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS", "0"), ("SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE", "x"),
            ("WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS", "abc"), ("HERALD_RETENTION_BATCH_TARGET_MS", "1"),
            ("BILLING_ENABLED", "maybe"),
        ] {
            XCTAssertThrowsError(try RetentionSettings.load(from: [key: bad])) { e in
                XCTAssertEqual((e as? TaskSettingsError)?.key, key)
            }
        }
    }

    func testSandboxRuleIsDifys() {
        let now: Int64 = 1_800_000_000
        let rule = RetentionPolicy.SandboxRule(whitelist: ["w"], graceDays: 21, now: now)
        let day: Int64 = 86_400
        XCTAssertTrue(
            rule.deletes(tenant: "a", billing: TenantBilling(plan: "sandbox", expirationDate: -1)), "never paid")
        XCTAssertFalse(
            rule.deletes(tenant: "w", billing: TenantBilling(plan: "sandbox", expirationDate: -1)), "whitelisted")
        XCTAssertFalse(rule.deletes(tenant: "a", billing: nil), "unknown plan is kept")
        XCTAssertFalse(rule.deletes(tenant: "a", billing: TenantBilling(plan: "team", expirationDate: -1)), "paid plan")
        XCTAssertFalse(
            rule.deletes(tenant: "a", billing: TenantBilling(plan: "sandbox", expirationDate: now - 21 * day)),
            "exactly at the end of grace: Dify's strict >")
        XCTAssertTrue(
            rule.deletes(tenant: "a", billing: TenantBilling(plan: "sandbox", expirationDate: now - 21 * day - 1)))
        XCTAssertFalse(
            rule.deletes(tenant: "a", billing: TenantBilling(plan: "sandbox", expirationDate: now - 3 * day)),
            "in grace")
    }

    func testTenantPlanCacheValue() throws {
        let b = TenantBilling(plan: "sandbox", expirationDate: -1)
        XCTAssertEqual(b.cacheJSON, "{\"plan\": \"sandbox\", \"expiration_date\": -1}")
        XCTAssertEqual(TenantBilling(json: try JSONReader.parse(Array(b.cacheJSON.utf8))), b)
        XCTAssertEqual(
            TenantBilling(
                json: try JSONReader.parse(Array("{\"plan\":\"team\",\"expiration_date\":\"1700000000\"}".utf8))),
            TenantBilling(plan: "team", expirationDate: 1_700_000_000), "a numeric string is coerced, as Dify")
        for bad in [
            "{\"plan\":\"team\"}", "{\"plan\":\"\",\"expiration_date\":1}",
            "{\"plan\":\"team\",\"expiration_date\":1.5}",
            "{\"plan\":\"team\",\"expiration_date\":\"soon\"}", "[]",
        ] {
            XCTAssertNil(TenantBilling(json: try JSONReader.parse(Array(bad.utf8))), bad)
        }
    }
}
