import XCTest

final class HeraldIntegrationTestsPlaceholder: XCTestCase {}
