// swift-tools-version:5.10
import PackageDescription

// One dynamic library product holds the C shim (the pam_sm_* entry points) and the Swift code
// behind it; the Makefile links it with the Swift runtime inside, -z nodelete, -z defs and
// CShim/exports.map, and installs it as pam_cloudlogin.so.
let package = Package(
    name: "CloudLogin",
    products: [
        .library(name: "pam_cloudlogin", type: .dynamic, targets: ["CShim", "CloudLoginPAM"]),
        .executable(name: "cloudlogin", targets: ["cloudlogin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypt",
            path: "Sources/CCrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        .systemLibrary(name: "CSpawn", path: "Sources/CSpawn"),
        .target(
            name: "CShim",
            path: "CShim",
            exclude: ["exports.map"],
            linkerSettings: [.linkedLibrary("pam")]
        ),
        .target(
            name: "CloudLogin",
            dependencies: ["CCurl", "COpenSSL", "CCrypt", "CSpawn"],
            path: "Sources/CloudLogin"
        ),
        .target(
            name: "CloudLoginPAM",
            dependencies: ["CloudLogin", "CShim"],
            path: "Sources/CloudLoginPAM"
        ),
        .executableTarget(
            name: "cloudlogin",
            dependencies: [
                "CloudLogin",
                "CloudLoginPAM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/cloudlogin"
        ),
        .testTarget(
            name: "CloudLoginTests",
            dependencies: ["CloudLogin", "CloudLoginPAM"],
            path: "Tests/CloudLoginTests",
            exclude: ["Fixtures"]
        ),
    ]
)
