// Dify's billing service, asked for a tenant's plan when BILLING_ENABLED=true:
// `GET {BILLING_API_URL}/subscription/info?tenant_id=` with the header
// `Billing-Api-Secret-Key`, reading `subscription.plan`. Like Dify it retries a
// failed request (here three attempts with growing waits) and treats any
// non-200 answer as an error; the secret never appears in a message.

import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks

/// The billing API as a `BillingPlanSource`. Blocking; call off the loop.
public struct BillingHTTPSource: BillingPlanSource {
    public let baseURL: String
    private let secret: String
    public let attempts: Int

    /// From Dify's `BILLING_API_URL` and `BILLING_API_SECRET_KEY`; nil when the URL is unset.
    public static func from(environment env: [String: String]) -> BillingHTTPSource? {
        guard let url = env["BILLING_API_URL"], !url.isEmpty else { return nil }
        return BillingHTTPSource(baseURL: url, secret: env["BILLING_API_SECRET_KEY"] ?? "")
    }

    public init(baseURL: String, secret: String, attempts: Int = 3) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.secret = secret
        self.attempts = max(1, attempts)
    }

    public func subscriptionPlan(tenantID: String) throws(DatasetTaskError) -> String {
        let query = tenantID.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? tenantID
        let url = "\(baseURL)/subscription/info?tenant_id=\(query)"
        var lastError = ""
        for attempt in 0..<attempts {
            if attempt > 0 { usleep(UInt32(200_000 * (1 << (attempt - 1)))) }
            do {
                let r = try HTTPClient.get(url, headers: ["Billing-Api-Secret-Key: \(secret)"], timeout: .seconds(10))
                guard r.status == 200 else {
                    // A definite answer: Dify raises on any non-200 without retrying.
                    throw DatasetTaskError.billing(tenantID: tenantID, reason: "billing answered HTTP \(r.status)")
                }
                return try TenantPlanLookup.subscriptionPlan(fromInfo: r.body, tenantID: tenantID)
            } catch let e as DatasetTaskError {
                throw e
            } catch {
                lastError = "\(error)"
            }
        }
        throw .billing(tenantID: tenantID, reason: "billing unreachable after \(attempts) attempts: \(lastError)")
    }
}
