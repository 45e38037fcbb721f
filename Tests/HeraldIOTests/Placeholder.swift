import XCTest

final class HeraldIOTestsPlaceholder: XCTestCase {}
