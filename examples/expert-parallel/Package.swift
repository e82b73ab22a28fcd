// swift-tools-version: 6.1
import Foundation
import PackageDescription

// A user's package: MoEKit by version, as any Swift package would depend on it. The URL points at the MoEKit
// repository two folders up (a local git repository), so `.ci/run` checks that a version dependency resolves
// (SwiftPM refuses one whose targets use unsafe flags). Outside this repository, use MoEKit's git URL.
let repository = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
// SwiftPM names a URL dependency after the URL's last component (the checkout's folder name here).
let moekit = (url: repository.absoluteString, identity: repository.lastPathComponent.lowercased())

let package = Package(
    name: "expert-parallel",
    dependencies: [
        .package(url: moekit.url, from: "0.1.0"),
    ],
    targets: [
        .executableTarget(name: "expert-parallel", dependencies: [.product(name: "MoEKit", package: moekit.identity)]),
    ],
    swiftLanguageModes: [.v6]
)
