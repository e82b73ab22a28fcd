// swift-tools-version: 6.1
import PackageDescription

// No unsafe flags in any target: SwiftPM refuses them in a package required by version, and MoEKit is a
// library people depend on (examples/ do, by version). Release builds use SwiftPM's -O (Swift) and -O2 (C);
// against -Ounchecked / -O3 the quick bench suite measured the same times (geometric mean 1.01 best-of,
// 1.00 median, docs/PERFORMANCE.md 2026-12-01): the hot loops are C intrinsics and unsafe pointers over
// validated ranges.
let package = Package(
    name: "MoEKit",
    products: [
        .library(name: "MoEKit", targets: ["MoEKit"]),
        .executable(name: "moe", targets: ["moe"]),
    ],
    // `swift build --traits MPI` adds the Open MPI communicator (needs Debian's libopenmpi-dev and
    // pkg-config); the default build needs nothing outside the toolchain.
    traits: [
        .trait(name: "MPI", description: "Expert parallelism across processes over Open MPI (moe … --mpi)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Documentation only: `swift package generate-documentation` (scripts/docs.sh). A command plugin, so it
        // adds nothing to any target's build, nor to a package that depends on MoEKit.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // ISA-specific inner loops (AVX-512, AVX2), each behind a target attribute and chosen at run time.
        .target(name: "CMoEKernels"),
        .target(name: "MoEKit", dependencies: ["CMoEKernels"]),
        .target(name: "MoECost", dependencies: ["MoEKit"]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // Empty without the trait, so a plain `swift build` (all targets) needs no Open MPI either.
        .target(name: "MoEMPI", dependencies: ["MoEKit", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .executableTarget(
            name: "moe",
            dependencies: [
                "MoEKit",
                "MoECost",
                .target(name: "MoEMPI", condition: .when(traits: ["MPI"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Fuzz targets (scripts/fuzz.sh builds them for libFuzzer; a plain build is a replayer): not a product.
        .executableTarget(name: "moe-fuzz", dependencies: ["MoEKit"]),
        // Tests, a target per module: the library, the cost model, the CLI (which runs the built `moe`). What they
        // share (fixture paths, seeded generators, the error metric, file writers, the `moe` runner) is
        // MoETestSupport: not a product, package access. The fixtures are Tests/Fixtures and Tests/CostFixtures.
        .target(name: "MoETestSupport", dependencies: ["MoEKit"], path: "Tests/MoETestSupport"),
        .testTarget(name: "MoEKitTests", dependencies: ["MoEKit", "MoECost", "MoETestSupport"]),
        .testTarget(name: "MoECostTests", dependencies: ["MoECost", "MoEKit", "MoETestSupport"]),
        .testTarget(name: "MoECLITests", dependencies: ["moe", "MoEKit", "MoETestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
