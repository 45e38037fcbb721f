// The data side of Dify's `mail_clean_document_notify_task`: unnotified
// `dataset_auto_disable_logs` grouped by tenant, the tenant owner to write to and the
// per-knowledge-base counts, with Dify's plan rule deciding who gets a mail. Logs are
// marked notified only when the caller says so (after the mail was accepted), and
// exactly the logs that were read, so a failed send is retried by the next run.

import HeraldIO

/// One tenant's unnotified auto-disable logs and what Dify's rule says to do with them.
public struct TenantNotification: Sendable, Equatable {
    /// What to do with the tenant's logs.
    public enum Disposition: Sendable, Equatable {
        /// Send the mail to `owner`, then `markNotified` once the mail server accepted it.
        case mail
        /// No mail, but mark the logs notified at once (Dify does the same).
        case markWithoutMail(NoMailReason)
        /// Leave the logs unnotified; a later run retries (Dify skips these tenants the same way).
        case skip(SkipReason)
    }

    /// Why Dify marks logs notified without a mail.
    public enum NoMailReason: String, Sendable, Equatable {
        /// The tenant's plan is `sandbox` (every tenant when billing is disabled).
        case sandboxPlan
        /// None of the logged datasets exists any more, so the mail would list nothing.
        case noKnowledgeBases
    }

    /// Why a tenant is left for a later run.
    public enum SkipReason: Sendable, Equatable {
        case tenantMissing
        case ownerMissing
        case accountMissing
        /// The plan could not be read (billing failed); the error's text.
        case planUnavailable(String)
    }

    /// The workspace owner the mail goes to.
    public struct Owner: Sendable, Equatable {
        public var accountID: String
        public var email: String
        public var name: String
        /// `accounts.interface_language` (nil when unset). Dify's task always mails in `en-US`.
        public var interfaceLanguage: String?

        public init(accountID: String, email: String, name: String, interfaceLanguage: String?) {
            self.accountID = accountID
            self.email = email
            self.name = name
            self.interfaceLanguage = interfaceLanguage
        }
    }

    /// One knowledge base and how many of its documents were auto-disabled (log rows).
    public struct KnowledgeBase: Sendable, Equatable {
        public var datasetID: String
        public var name: String
        public var documents: Int

        public init(datasetID: String, name: String, documents: Int) {
            self.datasetID = datasetID
            self.name = name
            self.documents = documents
        }
    }

    public var tenantID: String
    /// The plan Dify's rule saw (nil when it could not be read).
    public var plan: String?
    public var disposition: Disposition
    /// The owner; nil unless `disposition` is `.mail` or `.markWithoutMail(.noKnowledgeBases)`.
    public var owner: Owner?
    /// Existing knowledge bases with logs, by name; logs of deleted datasets are counted in `logIDs` only.
    public var knowledgeBases: [KnowledgeBase]
    /// Exactly the log rows this notification covers; `markNotified` marks these and no others.
    public var logIDs: [String]

    public init(
        tenantID: String, plan: String?, disposition: Disposition, owner: Owner?,
        knowledgeBases: [KnowledgeBase], logIDs: [String]
    ) {
        self.tenantID = tenantID
        self.plan = plan
        self.disposition = disposition
        self.owner = owner
        self.knowledgeBases = knowledgeBases
        self.logIDs = logIDs
    }

    /// The language Dify's task sends the mail in, whatever the owner's interface language.
    public static let difyLanguageCode = "en-US"

    /// Dify's `knowledge_details` lines: `Knowledge base <name>: <n> documents`.
    public var knowledgeDetails: [String] {
        knowledgeBases.map { "Knowledge base \($0.name): \($0.documents) documents" }
    }

    /// Dify's `userName` in the mail: the owner's e-mail address, not their name.
    public var userName: String? { owner?.email }
}

/// Reads pending document-clean notifications and marks them sent.
public struct DocumentCleanNotifications: Sendable {
    public let plans: TenantPlanLookup
    /// Tenants per `pendingNotifications` page.
    public let tenantBatchSize: Int

    public init(plans: TenantPlanLookup, tenantBatchSize: Int) {
        self.plans = plans
        self.tenantBatchSize = max(1, tenantBatchSize)
    }

    /// With `notifyTenantBatchSize` from the settings.
    public init(settings: DatasetTaskSettings, plans: TenantPlanLookup) {
        self.init(plans: plans, tenantBatchSize: settings.notifyTenantBatchSize)
    }

    static let pendingLogs = """
        WITH page AS (
            SELECT DISTINCT tenant_id FROM dataset_auto_disable_logs
             WHERE NOT notified AND ($1::uuid IS NULL OR tenant_id > $1::uuid)
             ORDER BY tenant_id
             LIMIT $2
        )
        SELECT l.tenant_id::text, l.dataset_id::text, d.name, count(*), array_agg(l.id::text ORDER BY l.id)::text
          FROM dataset_auto_disable_logs l
          JOIN page p ON p.tenant_id = l.tenant_id
          LEFT JOIN datasets d ON d.id = l.dataset_id
         WHERE NOT l.notified
         GROUP BY l.tenant_id, l.dataset_id, d.name
         ORDER BY l.tenant_id, d.name NULLS LAST, l.dataset_id
        """

    /// Tenant, its first owner join (Dify's `.first()`, made deterministic), and that account.
    static let owners = """
        SELECT x.id::text, t.id::text, j.account_id::text, a.id::text, a.email, a.name, a.interface_language
          FROM unnest($1::uuid[]) AS x(id)
          LEFT JOIN tenants t ON t.id = x.id
          LEFT JOIN LATERAL (
              SELECT account_id FROM tenant_account_joins
               WHERE tenant_id = x.id AND role = 'owner'
               ORDER BY created_at, id
               LIMIT 1
          ) j ON true
          LEFT JOIN accounts a ON a.id = j.account_id
        """

    /// The next page of tenants with unnotified logs, after `afterTenant` in tenant-id order
    /// (nil: from the start). Call again with the last tenant's id until the page is empty.
    /// Reads only; the plan comes from `FeatureService` semantics, uncached, as in Dify.
    public func pendingNotifications(
        _ conn: PostgresConnection,
        afterTenant: String? = nil
    ) throws(DatasetTaskError) -> [TenantNotification] {
        let rows = try DatasetTaskError.db("read unnotified auto-disable logs") {
            try conn.query(Self.pendingLogs, [afterTenant, String(tenantBatchSize)]).rows
        }
        var order: [String] = []
        var byTenant: [String: (bases: [TenantNotification.KnowledgeBase], logs: [String])] = [:]
        for r in rows {
            guard r.count == 5, let tenant = r[0], let dataset = r[1], let n = r[3].flatMap({ Int($0) }),
                let ids = r[4]
            else {
                throw .unexpectedResult(operation: "read unnotified auto-disable logs", detail: "\(r)")
            }
            if byTenant[tenant] == nil {
                order.append(tenant)
                byTenant[tenant] = ([], [])
            }
            if let name = r[2] { byTenant[tenant]!.bases.append(.init(datasetID: dataset, name: name, documents: n)) }
            byTenant[tenant]!.logs += ids.dropFirst().dropLast().split(separator: ",").map(String.init)
        }
        guard !order.isEmpty else { return [] }
        let owners = try lookUpOwners(conn, tenants: order)
        return order.map { tenant in
            let entry = byTenant[tenant]!
            var n = TenantNotification(
                tenantID: tenant, plan: nil, disposition: .mail, owner: nil,
                knowledgeBases: entry.bases, logIDs: entry.logs)
            do {
                n.plan = try plans.plan(tenantID: tenant)
            } catch {
                n.disposition = .skip(.planUnavailable("\(error)"))
                return n
            }
            if n.plan == DifyPlan.sandbox {
                n.disposition = .markWithoutMail(.sandboxPlan)
                return n
            }
            switch owners[tenant] ?? .missing(.tenantMissing) {
            case .missing(let reason):
                n.disposition = .skip(reason)
            case .found(let owner):
                n.owner = owner
                n.disposition = entry.bases.isEmpty ? .markWithoutMail(.noKnowledgeBases) : .mail
            }
            return n
        }
    }

    /// Marks exactly `notification.logIDs` notified (those still unnotified); returns how many
    /// changed. A `.skip` notification is never marked: it returns 0 and changes nothing.
    @discardableResult
    public func markNotified(
        _ conn: PostgresConnection, _ notification: TenantNotification
    ) throws(DatasetTaskError) -> Int {
        if case .skip = notification.disposition { return 0 }
        guard !notification.logIDs.isEmpty else { return 0 }
        let r = try DatasetTaskError.db("mark auto-disable logs notified") {
            try conn.query(
                """
                UPDATE dataset_auto_disable_logs SET notified = true
                 WHERE id = ANY($1::uuid[]) AND tenant_id = $2::uuid AND NOT notified
                """, ["{" + notification.logIDs.joined(separator: ",") + "}", notification.tenantID])
        }
        return r.affected
    }

    private func lookUpOwners(
        _ conn: PostgresConnection, tenants: [String]
    )
        throws(DatasetTaskError) -> [String: OwnerLookup]
    {
        let rows = try DatasetTaskError.db("look up tenant owners") {
            try conn.query(Self.owners, ["{" + tenants.joined(separator: ",") + "}"]).rows
        }
        var out: [String: OwnerLookup] = [:]
        for r in rows where r.count == 7 {
            guard let tenant = r[0] else { continue }
            if r[1] == nil {
                out[tenant] = .missing(.tenantMissing)
            } else if r[2] == nil {
                out[tenant] = .missing(.ownerMissing)
            } else if let account = r[3], let email = r[4] {
                out[tenant] = .found(.init(accountID: account, email: email, name: r[5] ?? "", interfaceLanguage: r[6]))
            } else {
                out[tenant] = .missing(.accountMissing)
            }
        }
        return out
    }
}

/// The owner of one tenant, or why there is none to write to.
enum OwnerLookup {
    case found(TenantNotification.Owner)
    case missing(TenantNotification.SkipReason)
}
