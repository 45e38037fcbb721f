// Dify's bulk plan path for the retention jobs (`BillingService.get_plan_bulk_with_cache`):
// `MGET tenant_plan:{id}…` (JSON {"plan", "expiration_date"}, 600 s), misses asked of
// the billing API in chunks of 200 (`POST /subscription/plan/batch`), answers written
// back with pipelined SETEX. A failed chunk leaves its tenants unknown (kept, as Dify);
// a Redis failure falls back to the API for every tenant. The whitelist
// (`GET /subscription/cleanup/whitelist`) is read once per run.

import HeraldCore
import HeraldIO

/// One tenant's subscription as the billing API reports it.
public struct TenantBilling: Sendable, Equatable {
    /// `sandbox`, `professional`, `team`.
    public var plan: String
    /// Unix seconds the subscription ended or ends; -1 when the tenant never subscribed.
    public var expirationDate: Int64

    public init(plan: String, expirationDate: Int64) {
        self.plan = plan
        self.expirationDate = expirationDate
    }

    /// The cache value Dify writes: `{"plan": "sandbox", "expiration_date": -1}`.
    public var cacheJSON: String {
        "{\"plan\": \(JSONText.quote(plan)), \"expiration_date\": \(expirationDate)}"
    }

    /// Reads a cache value or one entry of the batch answer; `expiration_date` may be a
    /// number or a numeric string (Dify coerces it). Nil when the shape is wrong.
    public init?(json: JSONValue) {
        guard case .string(let plan)? = json["plan"], !plan.isEmpty else { return nil }
        switch json["expiration_date"] {
        case .number(let n)? where n == n.rounded() && abs(n) < 1e15:
            expirationDate = Int64(n)
        case .string(let s)?:
            guard let v = Int64(s.trimmingWhitespace) else { return nil }
            expirationDate = v
        default:
            return nil
        }
        self.plan = plan
    }
}

/// The billing API's bulk endpoints (the runtime implements them over HTTP).
public protocol BillingBulkSource: Sendable {
    /// `POST /subscription/plan/batch {"tenant_ids": […]}` for at most 200 tenants; tenants
    /// the service does not know are absent from the answer.
    func planBatch(tenantIDs: [String]) throws(DatasetTaskError) -> [String: TenantBilling]
    /// `GET /subscription/cleanup/whitelist`: tenants never cleaned.
    func cleanupWhitelist() throws(DatasetTaskError) -> [String]
}

/// Plans of many tenants through Dify's `tenant_plan:` cache. Blocking; one thread at a time.
public final class TenantBillingLookup: @unchecked Sendable {
    /// Dify's chunk size for `/subscription/plan/batch`.
    public static let chunkSize = 200
    /// TTL of `tenant_plan:{id}` (Dify's 600 s).
    public static let cacheTTLSeconds = 600
    /// Answers kept in memory for the run, so a tenant seen in every batch costs one lookup per run;
    /// cleared when full, so memory stays bounded whatever the number of tenants.
    public static let memoLimit = 50_000

    private let source: any BillingBulkSource
    private let redis: RedisClient?
    private var memo: [String: TenantBilling?] = [:]
    /// Chunks the billing API failed (their tenants stayed unknown), with the first error.
    public private(set) var failedChunks = 0
    public private(set) var firstFailure: String?
    /// Tenants answered from Redis, from the API.
    public private(set) var cacheHits = 0
    /// `tenant_plan:` values present but unreadable (treated as misses).
    public private(set) var badCacheValues = 0
    public private(set) var apiAnswers = 0

    public init(source: any BillingBulkSource, redis: RedisClient?) {
        self.source = source
        self.redis = redis
    }

    /// `tenant_plan:<id>`, never with `REDIS_KEY_PREFIX`: Dify's billing cache reads it with
    /// `mget` and writes it through `pipeline()`, the two calls its prefixing wrapper passes
    /// through unchanged, so this is the key Dify shares.
    public func cacheKey(_ tenantID: String) -> String { "tenant_plan:" + tenantID }

    /// The whitelist, once per run.
    public func whitelist() throws(DatasetTaskError) -> Set<String> {
        Set(try source.cleanupWhitelist())
    }

    /// Each tenant's billing; a tenant absent from the answer is unknown (the API did not know
    /// it or its chunk failed).
    public func plans(_ tenantIDs: [String]) -> [String: TenantBilling] {
        var out: [String: TenantBilling] = [:]
        var wanted: [String] = []
        for t in Set(tenantIDs) {
            if let known = memo[t] {
                if let b = known { out[t] = b }
            } else {
                wanted.append(t)
            }
        }
        guard !wanted.isEmpty else { return out }
        wanted.sort()
        var misses = wanted
        if let redis {
            if let reply = try? redis.command(["MGET"] + wanted.map(cacheKey)), case .array(let values) = reply,
                values.count == wanted.count
            {
                misses = []
                for (t, v) in zip(wanted, values) {
                    guard let text = v.text else {
                        misses.append(t)
                        continue
                    }
                    if let json = try? JSONReader.parse(Array(text.utf8)), let b = TenantBilling(json: json) {
                        out[t] = b
                        remember(t, b)
                        cacheHits += 1
                    } else {
                        badCacheValues += 1
                        misses.append(t)
                    }
                }
            }
        }
        var fresh: [(String, TenantBilling)] = []
        var start = 0
        while start < misses.count {
            let chunk = Array(misses[start..<min(start + Self.chunkSize, misses.count)])
            start += Self.chunkSize
            do {
                let answer = try source.planBatch(tenantIDs: chunk)
                for t in chunk {
                    let b = answer[t]
                    remember(t, b)
                    if let b {
                        out[t] = b
                        fresh.append((t, b))
                        apiAnswers += 1
                    }
                }
            } catch {
                failedChunks += 1
                if firstFailure == nil { firstFailure = "\(error)" }
            }
        }
        if let redis, !fresh.isEmpty {
            let ttl = Array(String(Self.cacheTTLSeconds).utf8)
            _ = try? redis.pipeline(
                fresh.map { t, b in
                    [Array("SETEX".utf8), Array(cacheKey(t).utf8), ttl, Array(b.cacheJSON.utf8)]
                })
        }
        return out
    }

    private func remember(_ tenant: String, _ billing: TenantBilling?) {
        if memo.count >= Self.memoLimit { memo.removeAll(keepingCapacity: true) }
        memo[tenant] = .some(billing)
    }
}
