// swift-tools-version: 6.0
//
// Archangel: a lock-free kernel <-> userspace message bridge.
// Layers (docs/architecture.md): CArchangel (the ABI header and libc shims)
// -> ArchangelCore (rings, pool, validation, statistics on raw memory; no
// syscalls) -> ArchangelSystem (syscalls only) -> Archangel (public API and
// backends) -> the `archangel` command.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Archangel",
    products: [
        .library(name: "Archangel", targets: ["Archangel"]),
        // libarchangel.so: the C API (include/archangel.h) for C and Python (issue 13, docs/bindings.md).
        // (Named archangel-c because the executable owns "archangel"; scripts/test-bindings links libarchangel.so to it.)
        .library(name: "archangel-c", type: .dynamic, targets: ["ArchangelC"]),
        .executable(name: "archangel-bindings-bench", targets: ["ArchangelBindingsBench"]),
        // The bridge's statistics through swift-metrics (any metrics backend).
        .library(name: "ArchangelMetrics", targets: ["ArchangelMetrics"]),
        // archangel_sensors.ko's records and the verdict loop's types (issue 10).
        .library(name: "ArchangelSensors", targets: ["ArchangelSensors"]),
        // The rules engine: a VerdictEngine reading JSON or YAML rules files.
        .library(name: "ArchangelRules", targets: ["ArchangelRules"]),
        .executable(name: "archangel", targets: ["archangel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Latency percentiles of the efficiency suite (bench only).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Metrics for the ecosystem (issue 11): the library reports through
        // swift-metrics; `archangel serve --metrics-listen` exposes them with
        // swift-prometheus over swift-nio's HTTP/1 server, and shuts down
        // gracefully with swift-service-lifecycle.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The rules engine's YAML files (issue 10); JSON needs no package.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .target(name: "CArchangel"),
        .target(name: "ArchangelCore", dependencies: ["CArchangel"], swiftSettings: strict),
        .target(name: "ArchangelSystem", dependencies: ["CArchangel", "ArchangelCore"], swiftSettings: strict),
        .target(
            name: "Archangel",
            dependencies: [
                "ArchangelCore", "ArchangelSystem", "CArchangel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ArchangelMetrics",
            dependencies: [
                "Archangel", "ArchangelCore", "ArchangelSystem",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The C API: include/archangel.h (CArchangelAPI) exported by ArchangelC with @_cdecl;
        // ArchangelBindingsBench is the Swift peer of scripts/bench-bindings.
        .executableTarget(name: "ArchangelBindingsBench", dependencies: ["Archangel"], swiftSettings: strict),
        .target(name: "CArchangelAPI", dependencies: ["CArchangel"]),
        .target(
            name: "ArchangelC",
            dependencies: ["Archangel", "CArchangelAPI", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Depends on Archangel for SensorSession (the engine's channel on the kernel backend).
        .target(name: "ArchangelSensors", dependencies: ["CArchangel", "Archangel"], swiftSettings: strict),
        .target(
            name: "ArchangelRules",
            dependencies: ["ArchangelSensors", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(name: "CArchangelBench"),
        .target(
            name: "ArchangelBench",
            dependencies: [
                "Archangel", "ArchangelCore", "ArchangelSystem", "CArchangelBench",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "archangel",
            dependencies: [
                "Archangel", "ArchangelBench", "ArchangelMetrics", "ArchangelSensors", "ArchangelRules",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ArchangelSensorsTests", dependencies: ["ArchangelSensors", "CArchangel"], swiftSettings: strict),
        .testTarget(name: "ArchangelRulesTests", dependencies: ["ArchangelRules", "ArchangelSensors"], swiftSettings: strict),
        .testTarget(name: "ArchangelCoreTests", dependencies: ["ArchangelCore", "CArchangel"], swiftSettings: strict),
        .testTarget(
            name: "ArchangelTests",
            dependencies: [
                "Archangel", "ArchangelCore", "ArchangelSystem", "ArchangelMetrics", "ArchangelSensors",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
    ]
)

// The fuzzers (docs/fuzzing.md), only when ARCHANGEL_FUZZ is set: scripts/fuzz
// builds them with -sanitize=fuzzer,address in .build-fuzz. The normal build
// and tests never see these targets.
if Context.environment["ARCHANGEL_FUZZ"] != nil {
    let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
        ("Statistics", ["ArchangelCore"]),
        ("ChannelLayout", ["ArchangelCore", "CArchangel"]),
        ("RecordRing", ["ArchangelCore", "CArchangel"]),
        ("PoolDescriptors", ["ArchangelCore", "CArchangel"]),
        ("HostProtocol", ["Archangel", "ArchangelCore", "ArchangelSystem", "CArchangel"]),
        ("SensorEvent", ["ArchangelSensors"]),
        ("Rules", ["ArchangelRules", "ArchangelSensors"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/Support"))
    for fuzzer in fuzzers {
        package.targets.append(.executableTarget(name: "Fuzz\(fuzzer.name)",
                                                 dependencies: fuzzer.dependencies + ["FuzzSupport"],
                                                 path: "Fuzz/\(fuzzer.name)"))
    }
}
