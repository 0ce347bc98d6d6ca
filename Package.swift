// swift-tools-version:6.0
import PackageDescription

// Release builds keep Swift's bounds and overflow checks: a damaged file must end in an error, never
// in undefined behaviour.
let optimize: [SwiftSetting] = []

// The view kernels (Sources/TesseraViewKernels: the colour, blur, resampling and normalization loops
// on float planes) are built three times from the same files: TesseraViewKernels for baseline
// x86-64; TesseraViewKernelsAVX2, whose sources are symlinks to those files, with `-target-cpu
// haswell` (AVX2, FMA, BMI2; views ≈1.8× faster here) and TESSERA_HASWELL_KERNELS (floor as
// vroundps); and TesseraViewKernelsAVX512 (symlinks too) with `-target-cpu skylake-avx512` and
// TESSERA_AVX512_KERNELS (sixteen-float vectors in ZMM registers). TesseraAugment calls a build only
// when CPUID says the CPU and OS support every feature it may use (`tsr_cpu_haswell_features`,
// `tsr_cpu_avx512_features`, CDigest), so the binary still runs on older x86-64;
// TESSERA_VIEW_KERNELS=baseline|avx2 caps the choice. All give the same bytes: the kernels form no
// fused multiply-adds and each lane's arithmetic is independent of the width (FusedViewsTests runs
// every build). On other architectures the extra builds are plain copies that are never chosen.
// TesseraViewKernelsWide (tests only) is the sixteen-float code built for baseline x86-64, so the
// tests check that width on every host, AVX-512 or not.
#if arch(x86_64)
let haswell: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"]), .define("TESSERA_HASWELL_KERNELS")]
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"]), .define("TESSERA_HASWELL_KERNELS"),
                              .define("TESSERA_AVX512_KERNELS")]
#else
let haswell: [SwiftSetting] = []
let avx512: [SwiftSetting] = []
#endif

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraSlide", targets: ["TesseraSlide"]),
        .library(name: "TesseraShards", targets: ["TesseraShards"]),
        .library(name: "TesseraSplits", targets: ["TesseraSplits"]),
        .library(name: "TesseraStain", targets: ["TesseraStain"]),
        .library(name: "TesseraTrain", targets: ["TesseraTrain"]),
        .library(name: "TesseraPipeline", targets: ["TesseraPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // libvips through pkg-config; only CVipsShim and TesseraSlide see it.
        .systemLibrary(name: "CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // Non-variadic wrappers around the libvips calls Swift cannot make directly.
        .target(name: "CVipsShim", dependencies: ["CVips"], linkerSettings: [.linkedLibrary("tiff"), .linkedLibrary("jpeg")]),
        // OpenBLAS (CBLAS + LAPACK) through pkg-config; only TesseraCore's LinearAlgebra and TesseraTrain's BLAS wrapper see it.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // SHA-256 from libcrypto: the CPU's SHA extensions make shard hashing 4× faster than Swift.
        .target(name: "CDigest", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "TesseraCore", dependencies: ["CDigest", "CBLAS"], swiftSettings: optimize),
        .target(name: "TesseraShards", dependencies: ["TesseraCore"], swiftSettings: optimize),
        .target(name: "TesseraSlide", dependencies: ["TesseraCore", "CVipsShim"], swiftSettings: optimize),
        .target(name: "TesseraSplits", dependencies: ["TesseraCore"], swiftSettings: optimize),
        .target(name: "TesseraStain", dependencies: ["TesseraCore"], swiftSettings: optimize),
        .target(name: "TesseraViewKernels", swiftSettings: optimize),
        .target(name: "TesseraViewKernelsAVX2", swiftSettings: optimize + haswell),
        .target(name: "TesseraViewKernelsAVX512", swiftSettings: optimize + avx512),
        .target(name: "TesseraViewKernelsWide", swiftSettings: optimize + [.define("TESSERA_AVX512_KERNELS")]),
        .target(name: "TesseraAugment", dependencies: ["TesseraCore", "TesseraStain", "CDigest", "TesseraViewKernels", "TesseraViewKernelsAVX2", "TesseraViewKernelsAVX512"],
                swiftSettings: optimize),
        .target(name: "TesseraTrain", dependencies: ["TesseraCore", "CBLAS"], swiftSettings: optimize),
        .target(name: "TesseraPipeline",
                dependencies: ["TesseraCore", "TesseraSlide", "TesseraShards", "TesseraSplits", "TesseraStain", "TesseraAugment", "TesseraTrain", "Yams"],
                swiftSettings: optimize),
        .executableTarget(name: "tessera",
                          dependencies: ["TesseraPipeline", "TesseraShards", "TesseraSlide", "TesseraSplits", "TesseraStain", "TesseraAugment", "TesseraTrain",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: optimize),
        .target(name: "TesseraTestSupport", path: "Tests/Support"),
        .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraCore"]),
        .testTarget(name: "TesseraShardsTests", dependencies: ["TesseraShards", "TesseraCore"]),
        .testTarget(name: "TesseraSplitsTests", dependencies: ["TesseraSplits", "TesseraCore", "TesseraTestSupport"]),
        .testTarget(name: "TesseraAugmentTests", dependencies: ["TesseraAugment", "TesseraViewKernels", "TesseraViewKernelsAVX2", "TesseraViewKernelsAVX512", "TesseraViewKernelsWide", "TesseraCore", "TesseraPipeline", "TesseraSlide", "TesseraTestSupport"]),
        .testTarget(name: "TesseraStainTests", dependencies: ["TesseraStain", "TesseraCore", "TesseraSlide", "TesseraTestSupport"]),
        .testTarget(name: "TesseraTrainTests", dependencies: ["TesseraTrain", "TesseraCore", "TesseraTestSupport"]),
        .testTarget(name: "TesseraSlideTests", dependencies: ["TesseraSlide", "TesseraCore", "TesseraTestSupport"]),
        .testTarget(name: "TesseraPipelineTests", dependencies: ["TesseraPipeline", "TesseraCore", "TesseraShards", "TesseraSlide", "TesseraSplits", "TesseraStain", "TesseraAugment", "TesseraTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
