// The progress line of a long retention run: the share of its candidates scanned so far, the
// percentage and the seconds left at the rate so far.

import XCTest

@testable import HeraldRuntime

final class RetentionProgressTests: XCTestCase {
    func testShareOfCandidatesWithPercentageAndETA() {
        let line = DatasetTaskResources.share(scanned: 250, of: 1_000, elapsed: 10)
        XCTAssertEqual(line.map(\.key), ["scanned", "of", "percent", "eta_s"])
        XCTAssertEqual(line.map(\.value), ["250", "1000", "25.0", "30"])
        XCTAssertEqual(
            DatasetTaskResources.share(scanned: 0, of: 1_000, elapsed: 10).count, 0, "before the first batch")
        XCTAssertEqual(DatasetTaskResources.share(scanned: 10, of: nil, elapsed: 10).count, 0, "no total")
        XCTAssertEqual(DatasetTaskResources.share(scanned: 10, of: 0, elapsed: 10).count, 0)
        // Rows created after the count (a busy table) never push it past 100 %.
        XCTAssertEqual(
            DatasetTaskResources.share(scanned: 1_200, of: 1_000, elapsed: 10).map(\.value),
            ["1200", "1000", "100.0", "0"])
    }
}
