import XCTest

final class HeraldCoreTestsPlaceholder: XCTestCase {}
