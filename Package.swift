// swift-tools-version:6.0
// Herald: the event-driven scheduled-task daemon. Layers, each a target, each
// importing only the ones beneath it: C system libraries and one C shim ->
// HeraldIO (the only Swift module that touches C) and HeraldCore (pure Swift)
// -> HeraldCelery -> HeraldTasks -> HeraldRuntime -> the `herald` executable.
// Every target declares each module it imports, transitive ones included
// (`make lint`: Tests/Support/check_imports.py, and a build with
// --explicit-target-dependency-import-check error). The libraries are products so
// that the benchmark driver, a package of its own under Benchmarks/, can use them.
import PackageDescription

let package = Package(
    name: "herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldIO", targets: ["HeraldIO"]),
        .library(name: "HeraldCelery", targets: ["HeraldCelery"]),
        .library(name: "HeraldTasks", targets: ["HeraldTasks"]),
        .library(name: "HeraldRuntime", targets: ["HeraldRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibevent", pkgConfig: "libevent", providers: [.apt(["libevent-dev"])]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CHeraldShim", dependencies: ["CHiredis", "CLibevent", "CCurl"]),
        .target(name: "HeraldCore"),
        .target(
            name: "HeraldIO",
            dependencies: ["CHiredis", "CLibevent", "CLibpq", "CCurl", "CHeraldShim", "HeraldCore"]
        ),
        .target(name: "HeraldCelery", dependencies: ["HeraldCore"]),
        .target(
            name: "HeraldTasks",
            dependencies: [
                "HeraldCore", "HeraldIO", "HeraldCelery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "HeraldRuntime",
            dependencies: [
                "HeraldCore", "HeraldIO", "HeraldCelery", "HeraldTasks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldRuntime", "HeraldCore", "HeraldIO", "HeraldTasks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore"]),
        .testTarget(name: "HeraldIOTests", dependencies: ["HeraldIO", "HeraldCore"]),
        .testTarget(name: "HeraldCeleryTests", dependencies: ["HeraldCelery", "HeraldCore"]),
        .testTarget(
            name: "HeraldRuntimeTests",
            dependencies: [
                "HeraldRuntime", "HeraldCore", "HeraldIO", "HeraldTasks",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "HeraldIntegrationTests",
            dependencies: [
                "HeraldRuntime", "HeraldIO", "HeraldCore", "HeraldCelery", "HeraldTasks",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "HeraldEndToEndTests", dependencies: ["HeraldCore", "HeraldIO"]),
    ]
)
