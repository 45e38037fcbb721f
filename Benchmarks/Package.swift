// swift-tools-version:6.0
// herald-bench: the benchmark driver behind `make bench`, a package of its own (as in
// swift-nio and swift-kafka-client) so that `swift build` and `swift test` of Herald
// never compile it. It uses Herald's libraries through the root package's products:
//
//   swift build -c release --static-swift-stdlib --package-path Benchmarks
//   Benchmarks/.build/release/herald-bench --help
import PackageDescription

let package = Package(
    name: "herald-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald-bench", targets: ["herald-bench"])
    ],
    dependencies: [
        // `name:` lets the products below say `package: "herald"` whatever the checkout's directory is called.
        .package(name: "herald", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "herald-bench",
            dependencies: [
                .product(name: "HeraldRuntime", package: "herald"),
                .product(name: "HeraldCore", package: "herald"),
                .product(name: "HeraldIO", package: "herald"),
                .product(name: "HeraldTasks", package: "herald"),
                .product(name: "HeraldCelery", package: "herald"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
)
