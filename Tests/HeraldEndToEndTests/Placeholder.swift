import XCTest

final class HeraldEndToEndTestsPlaceholder: XCTestCase {}
