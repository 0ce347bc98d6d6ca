import ArgumentParser
import Foundation
import TesseraCore
import TesseraPipeline
import TesseraSlide
import TesseraStain

struct StainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stain",
        abstract: "Fit, apply and look at stain normalization (Macenko, Reinhard, Vahadane) and stain augmentation.",
        subcommands: [StainFitCommand.self, StainApplyCommand.self, StainShowCommand.self, StainAugmentCommand.self, StainBenchCommand.self])
}

struct StainReferenceOptions: ParsableArguments {
    @Option(help: "For slides: sample tissue tiles at this µm/px (default: native resolution).")
    var mpp: Double?
    @Option(name: .customLong("assume-mpp"), help: "µm/px for slides that record none.")
    var assumeMpp: Double?
    @Option(help: "For slides: how many tissue tiles to fit on (default 64).")
    var tiles = 64
    @Option(name: .customLong("min-tissue"), help: "For slides: minimum tissue fraction of a sampled tile (default 0.5).")
    var minTissue = 0.5

    var options: StainReference.Options {
        var o = StainReference.Options()
        o.mpp = mpp
        o.assumeMpp = assumeMpp
        o.tiles = tiles
        o.minTissue = minTissue
        return o
    }
}

func parseMethod(_ s: String) throws -> StainMethod {
    guard let m = StainMethod(rawValue: s) else {
        throw TesseraError(.invalidConfig, "unknown stain method `\(s)`", hint: "one of: \(StainMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return m
}

/// Where the normalization target comes from (apply, show).
struct StainTargetOptions: ParsableArguments {
    @Option(help: "Target JSON from `tessera stain fit`.")
    var stain: String?
    @Option(help: "Method to fit on --reference (or its built-in target) instead of --stain.")
    var method: String?
    @Option(help: "Reference image or slide to fit --method on (`show` also draws it).")
    var reference: String?

    func resolve(_ options: StainReference.Options, referenceImage: RGBImage? = nil) throws -> StainTarget {
        try resolveTarget(stain: stain, method: method, reference: reference, options: options, referenceImage: referenceImage)
    }
}

/// A target from --stain FILE, or fitted on --reference, or the method's published default.
func resolveTarget(stain: String?, method: String?, reference: String?, options: StainReference.Options,
                   referenceImage: RGBImage? = nil) throws -> StainTarget {
    if let stain { return try StainTarget.load(path: stain) }
    let m = try parseMethod(method ?? "macenko")
    if let reference {
        let image = try referenceImage ?? StainReference.load(path: reference, options: options)
        return try StainNormalizer.fit(image, method: m, source: (reference as NSString).lastPathComponent)
    }
    guard let t = StainTarget.defaultTarget(m) else {
        throw TesseraError(.invalidConfig, "\(m.rawValue) has no built-in target", hint: "give --stain stain.json or --reference IMAGE")
    }
    return t
}

struct StainFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fit", abstract: "Fit a target to a reference image or slide and write it as JSON.")
    @Argument(help: "Reference image or slide.")
    var reference: String
    @Option(help: "macenko (torchstain), macenko-staintools, reinhard (OpenCV LAB, staintools), reinhard-cielab (torchstain), vahadane.")
    var method = "macenko"
    @Option(help: "Where to write the target JSON.")
    var out: String
    @OptionGroup var ref: StainReferenceOptions

    func run() throws {
        do {
            let m = try parseMethod(method)
            let image = try StainReference.load(path: reference, options: ref.options)
            let target = try StainNormalizer.fit(image, method: m, source: (reference as NSString).lastPathComponent)
            try target.save(path: out)
            print("\(out): \(m.rawValue) fitted on \(reference) (\(image.width)×\(image.height) px)")
            if let v = target.stainVectors, let c = target.maxConcentrations {
                print(String(format: "  H = (%.4f, %.4f, %.4f)  E = (%.4f, %.4f, %.4f)  max C = (%.4f, %.4f)", v[0][0], v[0][1], v[0][2], v[1][0], v[1][1], v[1][2], c[0], c[1]))
            }
            if let m = target.labMean, let s = target.labStd {
                print(String(format: "  LAB mean = (%.3f, %.3f, %.3f)  std = (%.3f, %.3f, %.3f)", m[0], m[1], m[2], s[0], s[1], s[2]))
            }
        } catch { throw fail(error) }
    }
}

struct StainApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Normalize one image to a target and write a PNG.")
    @Argument(help: "Input image.")
    var input: String
    @OptionGroup var target: StainTargetOptions
    @Option(help: "Output PNG.")
    var out: String
    @OptionGroup var ref: StainReferenceOptions

    func run() throws {
        do {
            let target = try self.target.resolve(ref.options)
            let image = try StainReference.load(path: input, options: ref.options)
            let (result, changed) = try StainNormalizer(target: target).normalize(image)
            try PNGWriter.write(result, to: out)
            print("\(out): \(changed ? "normalized (\(target.method.rawValue))" : "unchanged: too little stain to fit (passed through)")")
        } catch { throw fail(error) }
    }
}

struct StainShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Write a PNG: source | target reference | normalized, with the stain vectors as colour swatches.")
    @Argument(help: "Input image.")
    var input: String
    @OptionGroup var target: StainTargetOptions
    @Option(help: "Output PNG.")
    var out: String
    @OptionGroup var ref: StainReferenceOptions

    func run() throws {
        do {
            let refImage = try self.target.reference.map { try StainReference.load(path: $0, options: ref.options) }
            let target = try self.target.resolve(ref.options, referenceImage: refImage)
            let image = try StainReference.load(path: input, options: ref.options)
            let (result, _) = try StainNormalizer(target: target).normalize(image)
            let source = try? StainNormalizer.fit(image, method: target.method == .none ? .macenko : target.method)
            try PNGWriter.write(StainFigure.render(source: image, reference: refImage, normalized: result,
                                                   sourceTarget: source, target: target), to: out)
            print("\(out): source | \(refImage == nil ? "" : "reference | ")normalized (\(target.method.rawValue)), stain swatches below")
        } catch { throw fail(error) }
    }
}

struct StainAugmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "augment", abstract: "Write a PNG grid of stain-jittered versions of an image (for choosing σ by eye).")
    @Argument(help: "Input image.")
    var input: String
    @Option(help: "hed (Tellez et al. 2018 colour deconvolution) or macenko (per-tile stain concentrations).")
    var space = "hed"
    @Option(help: "α ~ U(1−σ1, 1+σ1) (default 0.05 for hed, 0.2 for macenko).")
    var sigma1: Double?
    @Option(help: "β ~ U(−σ2, σ2) (default 0.05 for hed, 0.2 for macenko).")
    var sigma2: Double?
    @Flag(name: .customLong("augment-background"), help: "Also perturb background (LAB L ≥ 0.8·255) pixels.")
    var augmentBackground = false
    @Option(help: "Versions to draw (default 8).")
    var count = 8
    @Option(help: "Seed (version i uses seed + i).")
    var seed: UInt64 = 0
    @Option(help: "Output PNG.")
    var out: String

    func run() throws {
        do {
            guard let s = StainJitter.Space(rawValue: space) else { throw TesseraError(.invalidConfig, "--space must be hed or macenko, got \(space)") }
            var jitter = StainJitter(space: s)
            if let sigma1 { jitter.sigma1 = sigma1 }
            if let sigma2 { jitter.sigma2 = sigma2 }
            jitter.augmentBackground = augmentBackground
            try jitter.validate()
            let image = try StainReference.load(path: input, options: StainReference.Options())
            var versions = [image]
            for i in 0..<max(1, count) {
                var rng = SplitMix64(seed: seed &+ UInt64(i))
                versions.append(jitter.apply(image, rng: &rng).image)
            }
            try PNGWriter.write(StainFigure.grid(versions, columns: min(versions.count, 3)), to: out)
            print("\(out): original + \(versions.count - 1) \(s.rawValue) jitters (σ1 \(jitter.sigma1), σ2 \(jitter.sigma2))")
        } catch { throw fail(error) }
    }
}

struct StainBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Time stain operations in-process (used by scripts/bench-stain); prints one JSON line.",
        shouldDisplay: false)
    @Argument(help: "Images (cut into tiles with --tile).")
    var images: [String]
    @Option(help: "Method.")
    var method = "macenko"
    @Option(help: "Target JSON (default: fitted on the first image).")
    var stain: String?
    @Option(help: "fit-transform, transform (source fitted once per image), or fit.")
    var operation = "fit-transform"
    @Option(help: "Cut each image into tiles of this side (0 = whole images).")
    var tile = 0
    @Option(name: .customLong("min-seconds"), help: "Repeat until this much CPU time.")
    var minSeconds = 1.0

    func run() throws {
        do {
            let m = try parseMethod(method)
            var inputs: [RGBImage] = []
            for path in images {
                let im = try StainReference.load(path: path, options: StainReference.Options())
                if tile > 0 {
                    for y in stride(from: 0, through: im.height - tile, by: tile) {
                        for x in stride(from: 0, through: im.width - tile, by: tile) { inputs.append(im.crop(x: x, y: y, width: tile, height: tile)) }
                    }
                } else {
                    inputs.append(im)
                }
            }
            guard let first = inputs.first else { throw TesseraError(.invalidConfig, "no images (or none as large as --tile)") }
            let target = try stain.map { try StainTarget.load(path: $0) } ?? StainNormalizer.fit(first, method: m)
            let r = try StainBenchmark.run(inputs, method: m, target: target, operation: operation, minSeconds: minSeconds)
            print(String(decoding: try CanonicalJSON.encode(r), as: UTF8.self))
        } catch { throw fail(error) }
    }
}
