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
        .systemLibrary(
            name: "CQRencode",
            path: "Sources/CQRencode",
            pkgConfig: "libqrencode",
            providers: [.apt(["libqrencode-dev"])]
        ),
        .target(
            name: "CShim",
            path: "CShim",
            exclude: ["exports.map"],
            linkerSettings: [.linkedLibrary("pam")]
        ),
        .target(
            name: "CloudLogin",
            dependencies: ["CCurl", "COpenSSL", "CCrypt", "CSpawn", "CQRencode"],
            path: "Sources/CloudLogin"
        ),
        .target(
            name: "CloudLoginPAM",
            dependencies: ["CloudLogin", "CShim"],
            path: "Sources/CloudLoginPAM"
        ),
        // The admin tool's logic (check, setup, status, the --trace seams, the exit codes):
        // never linked into the module; the executable only parses options and calls it.
        .target(
            name: "CloudLoginAdmin",
            dependencies: ["CloudLogin", "CCurl", "CSpawn"],
            path: "Sources/CloudLoginAdmin"
        ),
        .executableTarget(
            name: "cloudlogin",
            dependencies: [
                "CloudLogin",
                "CloudLoginAdmin",
                "CloudLoginPAM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/cloudlogin"
        ),
        .testTarget(
            name: "CloudLoginTests",
            dependencies: ["CloudLogin", "CloudLoginPAM", "CloudLoginAdmin"],
            path: "Tests/CloudLoginTests",
            exclude: ["Fixtures"]
        ),
    ]
)

// libFuzzer targets (Fuzz/), only when CLOUDLOGIN_FUZZ=1: `make fuzz` builds them with
// -sanitize=fuzzer,address in their own scratch path (.build-fuzz). They have no main (libFuzzer
// brings it), so a normal build must not see them.
if Context.environment["CLOUDLOGIN_FUZZ"] == "1" {
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["CloudLogin"], path: "Fuzz/Support"))
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/Driver"))
    for (name, folder) in [("fuzz-config", "Config"), ("fuzz-json", "JSON"), ("fuzz-jwt", "JWT"),
                           ("fuzz-jwks", "JWKS"), ("fuzz-token-response", "TokenResponse"),
                           ("fuzz-okta", "Okta"), ("fuzz-mfa", "MFA")] {
        package.targets.append(.executableTarget(name: name, dependencies: ["CloudLogin", "FuzzSupport", "FuzzDriver"], path: "Fuzz/\(folder)",
                                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
