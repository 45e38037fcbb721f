// swift-tools-version:6.0
// herald-fuzz: libFuzzer targets for the parsers that take outside input, behind `make fuzz`
// (Tests/Support/fuzz.sh). A package of its own, like Benchmarks/, so that Herald's own build
// never compiles it; it uses Herald's libraries through the root package's products.
//
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address \
//     -Xswiftc -parse-as-library -Xlinker --allow-multiple-definition
//   Fuzz/.build/release/fuzz-cron -max_total_time=60 <work corpus> Tests/Fuzz/cron
//
// Why the last two flags: SwiftPM links an executable with `--defsym main=<module>_main`,
// and -sanitize=fuzzer links libFuzzer's own main as a whole archive, so `main` is defined
// twice. Each target therefore defines both LLVMFuzzerTestOneInput (which libFuzzer's main,
// the definition the linker keeps, calls) and <module>_main (which hands the same function to
// libFuzzer through LLVMFuzzerRunDriver, had the other definition been kept); no top-level code.
import PackageDescription

let package = Package(
    name: "herald-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "herald", path: "..")
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(
            name: "FuzzTargets",
            dependencies: [
                "CFuzzDriver",
                .product(name: "HeraldCore", package: "herald"),
                .product(name: "HeraldIO", package: "herald"),
            ]
        ),
        .executableTarget(name: "fuzz-event-decoder", dependencies: ["FuzzTargets", "CFuzzDriver"]),
        .executableTarget(name: "fuzz-cron", dependencies: ["FuzzTargets", "CFuzzDriver"]),
        .executableTarget(name: "fuzz-topology", dependencies: ["FuzzTargets", "CFuzzDriver"]),
        .executableTarget(name: "fuzz-resp", dependencies: ["FuzzTargets", "CFuzzDriver"]),
    ]
)
