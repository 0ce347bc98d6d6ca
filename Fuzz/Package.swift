// swift-tools-version:6.0
// libFuzzer harnesses for Tessera's parsers. Not part of the product: built only by `scripts/fuzz`,
// with `-sanitize=fuzzer,address` on every Swift module (libFuzzer supplies `main`, hence
// `-parse-as-library`), against the shipped sources of the package one directory up.
import PackageDescription

let package = Package(
    name: "TesseraFuzz",
    dependencies: [.package(name: "Tessera", path: "..")],
    targets: [
        .executableTarget(name: "TesseraFuzz",
                          dependencies: [.product(name: "TesseraShards", package: "Tessera"),
                                         .product(name: "TesseraSplits", package: "Tessera"),
                                         .product(name: "TesseraStain", package: "Tessera"),
                                         .product(name: "TesseraPipeline", package: "Tessera")]),
    ],
    swiftLanguageModes: [.v6]
)
