// swift-tools-version: 6.1
import PackageDescription

// Release builds of the library trade bounds checks for speed only where the kernels index
// into buffers whose sizes were validated at the API boundary (see docs/ARCHITECTURE.md).
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

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
    ],
    targets: [
        // ISA-specific inner loops (AVX-512, AVX2), each behind a target attribute and chosen at run time.
        .target(name: "CMoEKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "MoEKit", dependencies: ["CMoEKernels"], swiftSettings: kernelSettings),
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
        .testTarget(
            name: "MoEKitTests",
            dependencies: ["MoEKit", "MoECost"],
            exclude: ["Fixtures", "CostFixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
