import Foundation
import TesseraCore
@testable import TesseraPipeline
import TesseraShards
import TesseraSlide
import TesseraTestSupport
import XCTest

/// A corpus of broken and hostile inputs, generated here from the bundled data, tiled by the real
/// binary next to two good slides: no crash, no hang, each bad file a failed entry with a reason
/// (or, where the damage spares the pixels the tiler reads, done and verified), the good slides
/// tiled, and every output file and key inside the output directory.
final class HostileInputTests: XCTestCase {
    static let binary = Fixtures.binary

    /// Writes `bytes` to a file whose name is given as raw bytes (so it may be invalid UTF-8).
    func writeRaw(dir: String, name: [UInt8], _ bytes: Data) throws {
        let path = Array(dir.utf8) + [UInt8(ascii: "/")] + name + [0]
        let fd = path.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        close(fd)
    }

    /// A minimal little-endian TIFF header declaring `width` × `height` 8-bit grey pixels in one
    /// uncompressed strip of which only a few bytes exist: a decompression bomb in 200 bytes.
    static func bombTIFF(width: UInt32, height: UInt32) -> Data {
        var d = Data([0x49, 0x49, 42, 0, 8, 0, 0, 0])
        func u16(_ v: UInt16) { d.append(contentsOf: [UInt8(v & 0xff), UInt8(v >> 8)]) }
        func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { d.append(UInt8((v >> UInt32(s)) & 0xff)) } }
        let entries: [(UInt16, UInt16, UInt32)] = [
            (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 200), (277, 3, 1), (278, 4, height), (279, 4, 16),
        ]
        u16(UInt16(entries.count))
        for (tag, type, value) in entries {
            u16(tag); u16(type); u32(1)
            if type == 3 { u16(UInt16(value)); u16(0) } else { u32(value) }
        }
        u32(0)
        while d.count < 216 { d.append(0x80) }
        return d
    }

    func testHostileCorpusFailsEntryByEntryAndTheRestIsTiled() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("build the tool first (swift build): \(Self.binary) missing")
        }
        let base = Fixtures.tempDir(self)
        let col = base + "/collection"
        let fm = FileManager.default
        try fm.createDirectory(atPath: col + "/sub", withIntermediateDirectories: true)
        // The good ones.
        try fm.copyItem(atPath: Fixtures.svs, toPath: col + "/good.svs")
        try fm.copyItem(atPath: Fixtures.fixture("BloodImage_00000.jpg"), toPath: col + "/good-cells.jpg")
        // Truncated at 10 points of a real SVS and of a libvips pyramidal TIFF.
        let svs = try Data(contentsOf: URL(fileURLWithPath: Fixtures.svs))
        let tif = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.pyramid(self)))
        let cuts = [0.001, 0.01, 0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97]
        var mustFail: Set<String> = []
        var mayTile: Set<String> = []
        for (i, f) in cuts.enumerated() {
            try svs.prefix(Int(Double(svs.count) * f)).write(to: URL(fileURLWithPath: col + "/trunc-svs-\(i).svs"))
            try tif.prefix(Int(Double(tif.count) * f)).write(to: URL(fileURLWithPath: col + "/trunc-tif-\(i).tif"))
            mayTile.formUnion(["trunc-svs-\(i)", "trunc-tif-\(i)"])
        }
        // Seeded byte flips: in the header (first 512 bytes) and in the tile data (middle of the file).
        var rng = SplitMix64(seed: 9)
        for (name, source) in [("svs", svs), ("tif", tif)] {
            for (region, range) in [("head", 0..<512), ("data", source.count / 4..<(source.count * 3 / 4))] {
                for k in 0..<3 {
                    var bytes = [UInt8](source)
                    for _ in 0..<(region == "head" ? 8 : 64) {
                        let at = range.lowerBound + Int(rng.next() % UInt64(range.count))
                        bytes[at] ^= UInt8(1 << (rng.next() % 8))
                    }
                    try Data(bytes).write(to: URL(fileURLWithPath: col + "/flip-\(name)-\(region)-\(k).\(name)"))
                    mayTile.insert("flip-\(name)-\(region)-\(k)")
                }
            }
        }
        // Always failures.
        fm.createFile(atPath: col + "/zero.svs", contents: Data())
        try fm.createDirectory(atPath: col + "/folder.svs", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: col + "/loop-a.svs", withDestinationPath: col + "/loop-b.svs")
        try fm.createSymbolicLink(atPath: col + "/loop-b.svs", withDestinationPath: col + "/loop-a.svs")
        try fm.createSymbolicLink(atPath: col + "/sub/up", withDestinationPath: "..")   // a directory loop
        try Self.bombTIFF(width: 1_000_000, height: 1_000_000).write(to: URL(fileURLWithPath: col + "/bomb.tif"))
        try Data("this is not a JPEG, just text\n".utf8).write(to: URL(fileURLWithPath: col + "/text.jpg"))
        mustFail.formUnion(["zero", "loop-a", "loop-b", "bomb", "text"])
        let running_as_root = getuid() == 0
        if !running_as_root {
            try fm.copyItem(atPath: Fixtures.svs, toPath: col + "/locked.svs")
            chmod(col + "/locked.svs", 0)
            mustFail.insert("locked")
        } else {
            print("HostileInputTests: running as root, where file permissions do not apply: the unreadable-file case is skipped")
        }
        // Names: invalid UTF-8 and dots meant to climb out of the output. (Names starting with a dot are
        // hidden files, skipped by the walk by design.)
        let cells = try Data(contentsOf: URL(fileURLWithPath: Fixtures.fixture("BloodImage_00000.jpg")))
        try writeRaw(dir: col + "/sub", name: Array("caf".utf8) + [0xE9, 0xFF] + Array(".jpg".utf8), cells)
        try cells.write(to: URL(fileURLWithPath: col + "/sub/x..%2F..%2Fescape..jpg"))
        try cells.write(to: URL(fileURLWithPath: col + "/a...jpg"))
        let outside = base + "/collection/sub/../../collection/sub/../good-cells.jpg"   // an explicit input with ../

        let out = base + "/out"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["tile", col, outside, "-o", out, "--tile-size", "128", "--min-tissue", "0.3", "--slide-timeout", "60", "--quiet"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(600)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return XCTFail("tile hung on the hostile corpus") }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationReason, .exit, "crashed: \(stderr)")
        XCTAssertEqual(p.terminationStatus, 3, stderr)   // 3 = done, some slides failed

        let m = try DatasetManifest.load(directory: out)
        XCTAssertEqual(m.status, .complete)
        let byId = Dictionary(uniqueKeysWithValues: m.slides.map { ($0.id, $0) })
        var table = ""
        for s in m.slides { table += "\(s.id)\t\(s.status.rawValue)\t\(s.errorKind ?? "")\t\(s.samples)\t\(s.reason ?? "")\n" }
        print(table)
        XCTAssertEqual(byId["good"]?.status, .done)
        XCTAssertGreaterThan(byId["good"]?.samples ?? 0, 10)
        XCTAssertEqual(byId["good-cells"]?.status, .done)
        XCTAssertEqual(byId["good-cells_2"]?.status, .done, "the explicit ../ input")
        for id in mustFail.sorted() {
            XCTAssertEqual(byId[id]?.status, .failed, id)
        }
        XCTAssertEqual(byId["bomb"]?.errorKind, "too-large", byId["bomb"]?.reason ?? "no bomb entry")
        XCTAssertEqual(byId["folder"]?.status, .failed, "a directory named like a slide")
        for id in mayTile.sorted() {
            guard let s = byId[id] else { XCTFail("\(id) missing from the manifest"); continue }
            XCTAssertTrue(s.status == .failed || s.status == .done, id)
        }
        // The bundled SVS keeps its level-0 tiles in the first 65.8% of the file (thumbnail, label and
        // macro images follow). A cut inside level 0 fails the slide; a cut after it loses only
        // associated images, so the slide tiles to exactly the intact file's tiles, byte for byte:
        // nothing damaged gets in under a "done".
        let reader = try DatasetReader(directory: out)
        var tilesOf: [String: [String: [UInt8]]] = [:]
        for i in 0..<reader.count {
            let r = try reader.record(i)
            guard let slide = reader.slideId(of: i) else { continue }
            tilesOf[slide, default: [:]][String(r.key.dropFirst(slide.count))] = r.members["jpg"] ?? r.members["png"]
        }
        XCTAssertGreaterThan(tilesOf["good"]?.count ?? 0, 10)
        for (i, f) in cuts.enumerated() {
            let id = "trunc-svs-\(i)"
            if f < 0.658 {
                XCTAssertEqual(byId[id]?.status, .failed, "\(id): a cut inside level 0 must fail")
            } else {
                XCTAssertEqual(byId[id]?.status, .done, "\(id): level 0 is intact")
                XCTAssertEqual(tilesOf[id], tilesOf["good"], "\(id): tiles differ from the intact slide's")
            }
        }
        // Every failure says why and names its file.
        for s in m.slides where s.status == .failed {
            XCTAssertFalse((s.reason ?? "").isEmpty, s.id)
            XCTAssertNotNil(s.errorKind, s.id)
        }
        // The oddly named images were tiled, under safe ids.
        let named = m.slides.filter { $0.path.contains("escape") || $0.path.hasSuffix("a...jpg") }
        XCTAssertEqual(named.count, 2, table)
        for s in named { XCTAssertEqual(s.status, .done, "\(s.id): \(s.reason ?? "")") }
        // A name that is not UTF-8 cannot be carried in a String path: failed, saying so.
        let latin1 = m.slides.filter { $0.path.contains("caf") }
        XCTAssertEqual(latin1.count, 1, table)
        XCTAssertEqual(latin1.first?.status, .failed)
        XCTAssertTrue(latin1.first?.reason?.contains("not valid UTF-8") ?? false, latin1.first?.reason ?? "")
        // The directory loop (sub/up -> ..) is walked once: every file is listed once.
        XCTAssertEqual(m.slides.filter { $0.path.contains("/up/") }.count, 0, table)
        // Keys and files stay inside the output directory and are WebDataset-safe.
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        for s in m.slides { XCTAssertTrue(s.id.unicodeScalars.allSatisfy { safe.contains($0) }, s.id) }
        for shard in m.shards {
            let idx = try ShardIndex.load(from: ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: out + "/shards/" + shard.name)))
            for e in idx.samples { XCTAssertTrue(e.key.unicodeScalars.allSatisfy { safe.contains($0) }, e.key) }
        }
        let realOut = (out as NSString).resolvingSymlinksInPath
        let listed = try fm.subpathsOfDirectory(atPath: out)
        for rel in listed {
            XCTAssertTrue(((out + "/" + rel) as NSString).resolvingSymlinksInPath.hasPrefix(realOut + "/"), rel)
        }
        XCTAssertFalse(fm.fileExists(atPath: base + "/escape.jpg"))
        XCTAssertEqual(try DatasetVerifier.verify(directory: out), [])
        if !running_as_root { chmod(col + "/locked.svs", 0o644) }
    }

    /// The pixel limit is checked on the header, before any pixel is read, and is configurable.
    func testPixelLimitRefusesBeforeReading() throws {
        let dir = Fixtures.tempDir(self)
        let bomb = dir + "/bomb.tif"
        try Self.bombTIFF(width: 1_000_000, height: 1_000_000).write(to: URL(fileURLWithPath: bomb))
        XCTAssertThrowsError(try Slide.open(path: bomb)) { e in
            XCTAssertEqual((e as? TesseraError)?.kind, .tooLarge)
            XCTAssertTrue("\(e)".contains("1000000 × 1000000"), "\(e)")
            XCTAssertTrue("\(e)".contains("--max-pixels"), "\(e)")
        }
        // A real slide under a lowered limit (2220 × 2967 = 6.6 M pixels).
        XCTAssertThrowsError(try Slide.open(path: Fixtures.svs, maxPixels: 6_000_000)) {
            XCTAssertEqual(($0 as? TesseraError)?.kind, .tooLarge)
        }
        XCTAssertNoThrow(try Slide.open(path: Fixtures.svs, maxPixels: 7_000_000))
        // Through the config: failed in the manifest, not a crash; the limit is not part of the dataset's identity.
        var c = TileConfig()
        c.inputs = [Fixtures.svs]
        c.output = dir + "/ds"
        c.quiet = true
        c.maxPixels = 1_000_000
        let s = try TileRun(config: c).run()
        XCTAssertEqual(s.failed, 1)
        let m = try DatasetManifest.load(directory: dir + "/ds")
        XCTAssertEqual(m.slides.first?.errorKind, "too-large")
        var d = c
        d.maxPixels = Slide.defaultMaxPixels
        XCTAssertEqual(try c.outputDefiningJSON(), try d.outputDefiningJSON())
        c.maxPixels = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("max-pixels"), "\($0)") }
        // The pipeline-file key.
        let yaml = dir + "/p.yaml"
        try "tile:\n  max_pixels: 5000\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        XCTAssertEqual(try PipelineFile.load(path: yaml).tile?.maxPixels, 5000)
    }
}
