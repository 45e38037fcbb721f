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
        let body = try request("/subscription/info?tenant_id=\(query)", post: nil, subject: tenantID)
        return try TenantPlanLookup.subscriptionPlan(fromInfo: body, tenantID: tenantID)
    }

    /// Sends one request with the secret header, retrying transport failures with growing waits;
    /// any non-200 answer is a definite error (Dify raises on it without retrying).
    private func request(_ path: String, post: [UInt8]?, subject: String) throws(DatasetTaskError) -> [UInt8] {
        // Behind the billing API's breaker: while it is open the call fails at once, and the
        // caller keeps the tenants it could not look up (nothing is deleted for them).
        do {
            return try Circuits.shared.call(Circuits.billingAPI) {
                try requestWithRetries(path, post: post, subject: subject)
            }
        } catch let e as DatasetTaskError {
            throw e
        } catch {
            throw .billing(tenantID: subject, reason: "\(error)")
        }
    }

    private func requestWithRetries(_ path: String, post: [UInt8]?, subject: String) throws(DatasetTaskError) -> [UInt8]
    {
        let url = baseURL + path
        let headers = ["Billing-Api-Secret-Key: \(secret)"] + (post == nil ? [] : ["Content-Type: application/json"])
        var lastError = ""
        for attempt in 0..<attempts {
            if attempt > 0 { usleep(UInt32(200_000 * (1 << (attempt - 1)))) }
            do {
                let r =
                    if let post {
                        try HTTPClient.post(url, body: post, headers: headers, timeout: .seconds(10))
                    } else {
                        try HTTPClient.get(url, headers: headers, timeout: .seconds(10))
                    }
                guard r.status == 200 else {
                    throw DatasetTaskError.billing(tenantID: subject, reason: "billing answered HTTP \(r.status)")
                }
                return r.body
            } catch let e as DatasetTaskError {
                throw e
            } catch {
                lastError = "\(error)"
            }
        }
        throw .billing(tenantID: subject, reason: "billing unreachable after \(attempts) attempts: \(lastError)")
    }
}

extension BillingHTTPSource: BillingBulkSource {
    /// `POST /subscription/plan/batch {"tenant_ids": […]}` → `data: {tenant_id: {plan, expiration_date}}`.
    /// Entries of the wrong shape are left out (the tenant stays unknown, so it is kept).
    public func planBatch(tenantIDs: [String]) throws(DatasetTaskError) -> [String: TenantBilling] {
        let body = "{\"tenant_ids\": [" + tenantIDs.map(JSONText.quote).joined(separator: ", ") + "]}"
        let subject = "\(tenantIDs.first ?? "-") and \(max(0, tenantIDs.count - 1)) more"
        let reply = try request("/subscription/plan/batch", post: Array(body.utf8), subject: subject)
        guard let json = try? JSONReader.parse(reply), case .object(let data)? = json["data"] else {
            throw .billing(tenantID: subject, reason: "plan/batch answer has no data object")
        }
        var out: [String: TenantBilling] = [:]
        for (tenant, value) in data {
            if let b = TenantBilling(json: value) { out[tenant] = b }
        }
        return out
    }

    /// `GET /subscription/cleanup/whitelist` → `data: [{tenant_id}]`.
    public func cleanupWhitelist() throws(DatasetTaskError) -> [String] {
        let reply = try request("/subscription/cleanup/whitelist", post: nil, subject: "whitelist")
        guard let json = try? JSONReader.parse(reply), case .array(let items)? = json["data"] else {
            throw .billing(tenantID: "whitelist", reason: "whitelist answer has no data array")
        }
        return items.compactMap { item in
            if case .string(let t)? = item["tenant_id"] { return t }
            return nil
        }
    }
}
