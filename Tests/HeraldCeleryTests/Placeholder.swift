import XCTest

final class HeraldCeleryTestsPlaceholder: XCTestCase {}
