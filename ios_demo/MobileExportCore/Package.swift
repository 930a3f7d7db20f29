// swift-tools-version:5.9

import PackageDescription

// Foundation only, so the same code builds for the iOS app and tests on Linux.
let package = Package(
    name: "MobileExportCore",
    platforms: [
        .iOS(.v15),
        .macOS(.v12),
    ],
    products: [
        .library(name: "MobileExportCore", targets: ["MobileExportCore"]),
    ],
    targets: [
        .target(name: "MobileExportCore"),
        .testTarget(name: "MobileExportCoreTests", dependencies: ["MobileExportCore"]),
    ]
)
