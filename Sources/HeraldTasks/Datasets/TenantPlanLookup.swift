// A tenant's subscription plan as Dify's dataset tasks see it: `FeatureService.get_features`
// (the billing service when BILLING_ENABLED, else the default `sandbox`), and for
// clean_unused_datasets the plain-string cache `features:{tenant_id}` (600 s) in front of it.
// The HTTP call itself sits behind `BillingPlanSource`, so the runtime decides how to reach billing.

import HeraldCore
import HeraldIO

/// Dify's plan names (`CloudPlan`).
public enum DifyPlan {
    /// The free plan, and every tenant's plan when billing is disabled.
    public static let sandbox = "sandbox"
    /// A paid plan.
    public static let professional = "professional"
    /// A paid plan.
    public static let team = "team"
}

/// The billing service's answer for one tenant: `subscription.plan` of
/// `GET {BILLING_API_URL}/subscription/info?tenant_id=<id>` (header `Billing-Api-Secret-Key`).
public protocol BillingPlanSource: Sendable {
    /// The tenant's current plan, e.g. `sandbox`, `professional`, `team`.
    func subscriptionPlan(tenantID: String) throws(DatasetTaskError) -> String
}

/// Looks up tenants' plans with Dify's rules. Blocking; one thread at a time (it holds a `RedisClient`).
public final class TenantPlanLookup: @unchecked Sendable {
    /// Where plans come from.
    public enum Billing: Sendable {
        /// `BILLING_ENABLED=false`: every tenant is `sandbox` (Dify's `SubscriptionModel` default).
        case disabled
        /// `BILLING_ENABLED=true`: ask the billing service.
        case enabled(any BillingPlanSource)
    }

    /// TTL of `features:{tenant_id}`, as Dify's `SETEX … 600`.
    public static let featuresCacheTTLSeconds = 600

    private let billing: Billing
    private let redis: RedisClient?
    private let keyPrefix: String

    /// - Parameters:
    ///   - redis: the connection holding Dify's `features:{tenant_id}` cache; nil reads no cache.
    ///   - redisKeyPrefix: Dify's `REDIS_KEY_PREFIX` (keys become `<prefix>:features:<id>` when set).
    public init(billing: Billing, redis: RedisClient?, redisKeyPrefix: String) {
        self.billing = billing
        self.redis = redis
        self.keyPrefix = redisKeyPrefix.isEmpty ? "" : redisKeyPrefix + ":"
    }

    /// The Redis key of a tenant's cached plan, with the prefix: `[<REDIS_KEY_PREFIX>:]features:<tenant_id>`.
    public func featuresCacheKey(tenantID: String) -> String {
        keyPrefix + "features:" + tenantID
    }

    /// `FeatureService.get_features(tenant_id).billing.subscription.plan`, uncached, as
    /// `mail_clean_document_notify_task` asks it.
    public func plan(tenantID: String) throws(DatasetTaskError) -> String {
        switch billing {
        case .disabled: return DifyPlan.sandbox
        case .enabled(let source): return try source.subscriptionPlan(tenantID: tenantID)
        }
    }

    /// The answer of `cachedPlans`: a plan per tenant, or why there is none.
    public struct CachedPlans: Sendable, Equatable {
        /// Plans by tenant id.
        public var plans: [String: String]
        /// Tenants whose plan could not be read (billing failed), with the error.
        public var failures: [String: DatasetTaskError]
    }

    /// The plans of `tenantIDs` as `clean_unused_datasets_task` reads them: `features:{id}` from
    /// Redis (one MGET), a miss asks `plan(tenantID:)` and, when `writeCache`, stores the answer
    /// with `SETEX … 600` (pipelined). Without Redis every tenant is a miss and nothing is cached.
    /// A tenant whose billing lookup fails is reported in `failures` (and not cached); the others
    /// are still answered. A Redis failure throws.
    public func cachedPlans(tenantIDs: [String], writeCache: Bool) throws(DatasetTaskError) -> CachedPlans {
        let unique = Array(Set(tenantIDs)).sorted()
        guard !unique.isEmpty else { return CachedPlans(plans: [:], failures: [:]) }
        var plans: [String: String] = [:]
        var misses: [String] = []
        if let redis {
            let reply: RedisValue
            do {
                reply = try redis.command(["MGET"] + unique.map { featuresCacheKey(tenantID: $0) })
            } catch {
                throw .redis(operation: "MGET features", underlying: error)
            }
            guard case .array(let values) = reply, values.count == unique.count else {
                if case .error(let m) = reply {
                    throw .redis(operation: "MGET features", underlying: .redisReply(message: m))
                }
                throw .unexpectedResult(operation: "MGET features", detail: "\(reply)")
            }
            for (tenant, value) in zip(unique, values) {
                if let text = value.text { plans[tenant] = text } else { misses.append(tenant) }
            }
        } else {
            misses = unique
        }
        var fresh: [(String, String)] = []
        var failures: [String: DatasetTaskError] = [:]
        for tenant in misses {
            do {
                let p = try plan(tenantID: tenant)
                plans[tenant] = p
                fresh.append((tenant, p))
            } catch {
                failures[tenant] = error
            }
        }
        if writeCache, let redis, !fresh.isEmpty {
            let ttl = Array(String(Self.featuresCacheTTLSeconds).utf8)
            let commands = fresh.map { tenant, plan in
                [Array("SETEX".utf8), Array(featuresCacheKey(tenantID: tenant).utf8), ttl, Array(plan.utf8)]
            }
            let replies: [RedisValue]
            do {
                replies = try redis.pipeline(commands)
            } catch {
                throw .redis(operation: "SETEX features", underlying: error)
            }
            for case .error(let m) in replies {
                throw .redis(operation: "SETEX features", underlying: .redisReply(message: m))
            }
        }
        return CachedPlans(plans: plans, failures: failures)
    }

    /// Reads `subscription.plan` out of a `/subscription/info` response body (for `BillingPlanSource`
    /// implementations): `{"enabled": …, "subscription": {"plan": "team", "interval": "month"}, …}`.
    public static func subscriptionPlan(fromInfo body: [UInt8], tenantID: String) throws(DatasetTaskError) -> String {
        let json: JSONValue
        do {
            json = try JSONReader.parse(body)
        } catch {
            throw .billing(tenantID: tenantID, reason: "response is not JSON (\(error))")
        }
        guard case .string(let plan)? = json["subscription"]?["plan"], !plan.isEmpty else {
            throw .billing(tenantID: tenantID, reason: "response has no subscription.plan")
        }
        return plan
    }
}
