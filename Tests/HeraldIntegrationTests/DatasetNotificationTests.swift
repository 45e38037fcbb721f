// The data side of mail_clean_document_notify against a real PostgreSQL: unnotified
// logs grouped per tenant with Dify's plan and owner rules; reading changes nothing;
// markNotified marks exactly the logs that were read (a log written meanwhile, a
// skipped tenant and a failed send all stay unnotified for the next run).

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class DatasetNotificationTests: XCTestCase {
    /// Every pending notification, page by page; also returns the number of non-empty pages.
    private func allPending(
        _ notes: DocumentCleanNotifications, _ conn: PostgresConnection
    ) throws
        -> (notifications: [TenantNotification], pages: Int)
    {
        var all: [TenantNotification] = []
        var cursor: String?
        var pages = 0
        while true {
            let page = try notes.pendingNotifications(conn, afterTenant: cursor)
            guard let last = page.last else { return (all, pages) }
            XCTAssertLessThanOrEqual(page.count, notes.tenantBatchSize)
            all += page
            cursor = last.tenantID
            pages += 1
        }
    }

    func testGroupsByTenantAppliesDifysRulesAndMarksOnlyWhenTold() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        // paid: team plan, owner, three datasets (one deleted since).
        let paid = try f.addTenant(name: "paid")
        let owner = try f.addOwner(tenant: paid, email: "owner@example.com", name: "Olga", language: "zh-Hans")
        let alpha = try f.addDataset(tenant: paid, name: "Alpha", createdDaysAgo: 90)
        let beta = try f.addDataset(tenant: paid, name: "Beta", createdDaysAgo: 90)
        var paidLogs: Set<String> = []
        for _ in 0..<3 { paidLogs.insert(try f.addLog(tenant: paid, dataset: alpha)) }
        paidLogs.insert(try f.addLog(tenant: paid, dataset: beta))
        paidLogs.insert(try f.addLog(tenant: paid, dataset: DatasetFixture.uuid()))  // dataset deleted
        let alreadyNotified = try f.addLog(tenant: paid, dataset: alpha, notified: true)
        // sandbox: logs marked without a mail.
        let sandbox = try f.addTenant(name: "sandbox")
        try f.addOwner(tenant: sandbox, email: "s@example.com")
        let sandboxLog = try f.addLog(tenant: sandbox, dataset: try f.addDataset(tenant: sandbox, createdDaysAgo: 90))
        // noOwner, gone (tenant row deleted), billingDown: skipped, left unnotified.
        let noOwner = try f.addTenant(name: "no-owner")
        try f.addLog(tenant: noOwner, dataset: try f.addDataset(tenant: noOwner, createdDaysAgo: 90))
        let gone = DatasetFixture.uuid()
        try f.addLog(tenant: gone, dataset: try f.addDataset(tenant: gone, createdDaysAgo: 90))
        let billingDown = try f.addTenant(name: "billing-down")
        try f.addOwner(tenant: billingDown, email: "b@example.com")
        try f.addLog(tenant: billingDown, dataset: try f.addDataset(tenant: billingDown, createdDaysAgo: 90))
        // orphaned: team plan, but every logged dataset was deleted: marked, no mail.
        let orphaned = try f.addTenant(name: "orphaned")
        try f.addOwner(tenant: orphaned, email: "o@example.com")
        try f.addLog(tenant: orphaned, dataset: DatasetFixture.uuid())

        let notes = DocumentCleanNotifications(
            plans: f.plans([sandbox: DifyPlan.sandbox], failing: [billingDown]), tenantBatchSize: 2)
        let before = try f.snapshotAll()
        let (all, pages) = try allPending(notes, f.conn)
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(try f.snapshotAll(), before, "reading changes nothing")
        let byTenant = Dictionary(uniqueKeysWithValues: all.map { ($0.tenantID, $0) })
        XCTAssertEqual(Set(byTenant.keys), [paid, sandbox, noOwner, gone, billingDown, orphaned])

        let p = byTenant[paid]!
        XCTAssertEqual(p.disposition, .mail)
        XCTAssertEqual(p.plan, DifyPlan.team)
        XCTAssertEqual(
            p.owner, .init(accountID: owner, email: "owner@example.com", name: "Olga", interfaceLanguage: "zh-Hans"))
        XCTAssertEqual(p.userName, "owner@example.com", "Dify greets the owner by e-mail address")
        XCTAssertEqual(p.knowledgeDetails, ["Knowledge base Alpha: 3 documents", "Knowledge base Beta: 1 documents"])
        XCTAssertEqual(Set(p.logIDs), paidLogs, "the deleted dataset's log is covered too; the notified one is not")
        XCTAssertFalse(p.logIDs.contains(alreadyNotified))
        XCTAssertEqual(byTenant[sandbox]!.disposition, .markWithoutMail(.sandboxPlan))
        XCTAssertEqual(byTenant[noOwner]!.disposition, .skip(.ownerMissing))
        XCTAssertEqual(byTenant[gone]!.disposition, .skip(.tenantMissing))
        if case .skip(.planUnavailable(let why)) = byTenant[billingDown]!.disposition {
            XCTAssertTrue(why.contains("billing unreachable"), why)
        } else {
            XCTFail("billing failure must skip the tenant: \(byTenant[billingDown]!.disposition)")
        }
        XCTAssertEqual(byTenant[orphaned]!.disposition, .markWithoutMail(.noKnowledgeBases))

        // A log written after the read (a cleaner running meanwhile) is not covered by this notification.
        let late = try f.addLog(tenant: paid, dataset: alpha)
        // The send failed: nothing is marked, so the next run sees the same logs (and the late one).
        let retry = try XCTUnwrap(try allPending(notes, f.conn).notifications.first { $0.tenantID == paid })
        XCTAssertEqual(Set(retry.logIDs), paidLogs.union([late]))
        // The send succeeded: exactly the logs of the notification that was mailed.
        XCTAssertEqual(try notes.markNotified(f.conn, p), paidLogs.count)
        XCTAssertEqual(
            try f.scalar("SELECT notified::text FROM dataset_auto_disable_logs WHERE id = $1", [late]), "false")
        XCTAssertEqual(try notes.markNotified(f.conn, p), 0, "marking again changes nothing")
        XCTAssertEqual(try notes.markNotified(f.conn, byTenant[noOwner]!), 0, "a skipped tenant is never marked")
        XCTAssertEqual(try notes.markNotified(f.conn, byTenant[sandbox]!), 1)
        XCTAssertEqual(
            try f.scalar("SELECT notified::text FROM dataset_auto_disable_logs WHERE id = $1", [sandboxLog]), "true")

        let remaining = try allPending(notes, f.conn).notifications
        XCTAssertEqual(Set(remaining.map(\.tenantID)), [paid, noOwner, gone, billingDown, orphaned])
        XCTAssertEqual(remaining.first { $0.tenantID == paid }?.logIDs, [late])
        XCTAssertNil(remaining.first { $0.tenantID == sandbox })
    }

    func testWithBillingOffNobodyIsMailedAsInDify() throws {
        let f = try DatasetFixture()
        defer { f.drop() }
        try f.migrate()
        let t = try f.addTenant()
        try f.addOwner(tenant: t, email: "x@example.com")
        try f.addLog(tenant: t, dataset: try f.addDataset(tenant: t, name: "KB", createdDaysAgo: 90))
        let notes = DocumentCleanNotifications(settings: .defaults, plans: f.plans(billingEnabled: false))
        let pending = try notes.pendingNotifications(f.conn)
        XCTAssertEqual(pending.map(\.disposition), [.markWithoutMail(.sandboxPlan)])
        XCTAssertEqual(try notes.markNotified(f.conn, pending[0]), 1)
        XCTAssertEqual(try notes.pendingNotifications(f.conn), [])
    }
}
