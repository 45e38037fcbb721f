// The billing client against a local stand-in for Dify's billing API (the
// only kind of server the tests fake): plans read from subscription.plan, the
// secret header sent, and refusals and outages reported as clear errors.

import Foundation
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

final class BillingHTTPSourceTests: XCTestCase {
    func testPlansHeadersAndErrors() throws {
        Circuits.shared.reset()
        defer { Circuits.shared.reset() }
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON is not set") }
            throw XCTSkip("no Python for the fake billing server")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_billing.py").path
        let portFile = NSTemporaryDirectory() + "herald-billing-\(UUID()).port"
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        var pid: pid_t = 0
        let argv = [
            python, script, "--secret", "s3cret", "--plan", "t-pro=professional", "--plan", "t-team=team",
            "--port-file", portFile,
        ]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, python, nil, nil, cArgs, environ), 0)
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        var port = ""
        try waitUntil("the fake billing server listens") {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)) ?? ""
            return !port.isEmpty
        }
        let billing = BillingHTTPSource(baseURL: "http://127.0.0.1:\(port)/", secret: "s3cret")
        XCTAssertEqual(try billing.subscriptionPlan(tenantID: "t-pro"), "professional")
        XCTAssertEqual(try billing.subscriptionPlan(tenantID: "t-team"), "team")
        XCTAssertEqual(try billing.subscriptionPlan(tenantID: "someone-else"), "sandbox")

        let wrongSecret = BillingHTTPSource(baseURL: "http://127.0.0.1:\(port)", secret: "nope")
        XCTAssertThrowsError(try wrongSecret.subscriptionPlan(tenantID: "t-pro")) { error in
            XCTAssertTrue("\(error)".contains("401"), "\(error)")
            XCTAssertFalse("\(error)".contains("nope"), "the secret never appears")
        }
        XCTAssertThrowsError(try billing.subscriptionPlan(tenantID: "fail")) { error in
            XCTAssertTrue("\(error)".contains("500"), "\(error)")
        }
        let down = BillingHTTPSource(baseURL: "http://127.0.0.1:1", secret: "s3cret", attempts: 2)
        XCTAssertThrowsError(try down.subscriptionPlan(tenantID: "t-pro")) { error in
            XCTAssertTrue("\(error)".contains("unreachable after 2 attempts"), "\(error)")
        }
        // The billing API's breaker: five failures in a row open it; then calls fail at once, without
        // a request, until its probe (30 s later) succeeds. The caller keeps the tenants it could
        // not look up (RetentionCleanerTests: a billing outage deletes nothing).
        Circuits.shared.reset()
        func infoRequests() throws -> Int {
            let r = try HTTPClient.get("http://127.0.0.1:\(port)/_stats")
            let json = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
            return json?["info"] as? Int ?? -1
        }
        let before = try infoRequests()
        for _ in 0..<5 { XCTAssertThrowsError(try billing.subscriptionPlan(tenantID: "fail")) }
        XCTAssertEqual(try infoRequests(), before + 5)
        XCTAssertEqual(Circuits.shared.states.first { $0.dependency == Circuits.billingAPI }?.state, .open)
        XCTAssertThrowsError(try billing.subscriptionPlan(tenantID: "t-pro")) { error in
            XCTAssertTrue("\(error)".contains("billing_api circuit open"), "\(error)")
            XCTAssertTrue("\(error)".contains("500"), "the failure that opened it is named: \(error)")
        }
        XCTAssertEqual(try infoRequests(), before + 5, "no request while the breaker is open")
        Circuits.shared.reset()
        XCTAssertEqual(try billing.subscriptionPlan(tenantID: "t-pro"), "professional")
        XCTAssertNil(BillingHTTPSource.from(environment: [:]))
        XCTAssertEqual(BillingHTTPSource.from(environment: ["BILLING_API_URL": "http://b/"])?.baseURL, "http://b")
    }
}
