import Foundation
import TesseraCore
@testable import TesseraPipeline
@testable import TesseraShards
import TesseraSlide
import TesseraTestSupport
import XCTest

let sharedDatasetPath = NSTemporaryDirectory() + "tessera-reader-\(getpid())"

/// The shard reader on real tiles: the bundled slide plus two microscopy images, in several shards.
final class ReaderTests: XCTestCase {
    /// Shared by the reader and interop tests; removed when the test process exits.
    static let dataset: String = {
        let dir = sharedDatasetPath
        var c = TileConfig()
        c.inputs = [Fixtures.svs, Fixtures.fixture("ihc.png"), Fixtures.fixture("BloodImage_00000.jpg")]
        c.output = dir
        c.quiet = true
        c.tileSize = 128
        c.stride = 128
        c.minTissue = 0.5
        c.assumeMpp = 0.5
        c.shardSize = 150_000
        _ = try! TileRun(config: c).run()
        atexit { try? FileManager.default.removeItem(atPath: sharedDatasetPath) }
        return dir
    }()

    func testRandomAccessMatchesTarAndManifest() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        let m = try DatasetManifest.load(directory: Self.dataset)
        XCTAssertEqual(reader.count, m.samples)
        XCTAssertGreaterThan(m.shards.count, 5)
        XCTAssertGreaterThan(reader.count, 100)
        // Every sample's bytes equal what a plain tar parser finds, and its slide id is right.
        var n = 0
        for (s, info) in m.shards.enumerated() {
            let url = URL(fileURLWithPath: Self.dataset + "/shards/" + info.name)
            let data = try Data(contentsOf: url)
            let members = try TarFormat.members(ofFileAt: url)
            XCTAssertEqual(members.count, 2 * info.samples)
            for k in stride(from: 0, to: members.count, by: 2) {
                let r = try reader.record(n)
                let jpg = members[k], json = members[k + 1]
                XCTAssertEqual(jpg.name, r.key + ".jpg")
                XCTAssertEqual(r.members["jpg"], [UInt8](data[jpg.dataOffset..<(jpg.dataOffset + jpg.size)]))
                XCTAssertEqual(r.members["json"], [UInt8](data[json.dataOffset..<(json.dataOffset + json.size)]))
                XCTAssertEqual(try TileDecoding.metadata(r).slideId, reader.slideId(of: n))
                XCTAssertEqual(try reader.locate(n).shard, s)
                n += 1
            }
        }
        XCTAssertEqual(n, reader.count)
        XCTAssertThrowsError(try reader.record(reader.count))
        // Pixels decode and match the slide at the recorded position.
        let r = try reader.record(3)
        let meta = try TileDecoding.metadata(r)
        let truth = try Slide.open(path: Fixtures.svs).readRegion(x: meta.x, y: meta.y, width: 128, height: 128)
        let tile = try TileDecoding.image(r)
        var diff = 0
        for i in tile.pixels.indices { diff += abs(Int(tile.pixels[i]) - Int(truth.pixels[i])) }
        XCTAssertLessThan(Double(diff) / Double(tile.pixels.count), 3.0)  // JPEG q90
    }

    /// The in-place path (one reused buffer, views of the members) returns the same bytes as
    /// `record(i)` for every sample, in a shuffled order so that the buffer is reused across samples
    /// of different sizes; the reused JPEG decoder gives the same pixels as a fresh decode.
    func testRecordViewsAndReusedDecoderMatchRecords() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        let buffer = RecordBuffer()
        let jpeg = try JPEGTileDecoder()
        var order = ReadOrder()
        order.seed = 5
        var stream = try reader.stream(order: order, state: ReaderState(epoch: 0, position: 0))
        var seen = 0
        while let pixelsMatch = try stream.nextRecord(buffer: buffer, { (i, view) -> Bool in
            let r = try reader.record(i)
            XCTAssertEqual(view.key, r.key)
            XCTAssertEqual(Set(view.members.map(\.ext)), Set(r.members.keys))
            for m in view.members { XCTAssertEqual([UInt8](view.bytes(of: m)), r.members[m.ext], "\(r.key).\(m.ext)") }
            XCTAssertEqual(view["jpg"].map { [UInt8]($0) }, r.members["jpg"])
            XCTAssertNil(view["rgb8"])
            XCTAssertEqual(try TileDecoding.metadata(view), try TileDecoding.metadata(r))
            return try TileDecoding.image(view, jpeg: jpeg) == (try TileDecoding.image(r))
        }) {
            XCTAssertTrue(pixelsMatch)
            seen += 1
        }
        XCTAssertEqual(seen, reader.count)
        XCTAssertEqual(stream.state.position, reader.count)
        XCTAssertThrowsError(try reader.withRecord(reader.count, buffer: buffer) { _ in })
    }

    /// A damaged JPEG gives an error, and the decoder that saw it decodes the next tile correctly.
    func testReusedJPEGDecoderSurvivesDamagedTiles() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        let good = try reader.record(1).members["jpg"]!
        let expected = try ImageDecoder.decodeRGB(good)
        let jpeg = try JPEGTileDecoder()
        let truncated = Array(good.prefix(good.count / 2))
        var garbled = good
        for i in stride(from: good.count / 3, to: good.count / 3 + 64, by: 1) { garbled[i] = 0xFF }
        for bad in [truncated, Array(good.prefix(40)), garbled, [0xFF, 0xD8, 0xFF], [UInt8](repeating: 7, count: 100)] {
            XCTAssertThrowsError(try bad.withUnsafeBytes { try jpeg.decode($0) }) { XCTAssertTrue("\($0)".contains("JPEG"), "\($0)") }
            XCTAssertEqual(try good.withUnsafeBytes { try jpeg.decode($0) }, expected)
        }
        // A header read without a decode is abandoned cleanly by the next tile.
        XCTAssertEqual(try good.withUnsafeBytes { try jpeg.decode($0) }, expected)
    }

    func testOrderIsDeterministicShuffledAndCompleteForEachEpoch() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        var plain = ReadOrder()
        plain.shuffle = false
        XCTAssertEqual(Array(try reader.epoch(0, order: plain)), Array(0..<reader.count))
        var order = ReadOrder()
        order.seed = 7
        order.shuffleBuffer = 50
        let e0 = Array(try reader.epoch(0, order: order))
        XCTAssertEqual(e0, Array(try reader.epoch(0, order: order)))
        XCTAssertEqual(e0.sorted(), Array(0..<reader.count))
        XCTAssertNotEqual(e0, Array(0..<reader.count))
        let e1 = Array(try reader.epoch(1, order: order))
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e1.sorted(), Array(0..<reader.count))
        order.seed = 8
        XCTAssertNotEqual(e0, Array(try reader.epoch(0, order: order)))
    }

    func testRanksAndWorkersSeeEverySampleExactlyOnce() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        let n = reader.count
        for dropLast in [false, true] {
            var seen: [Int] = []
            var lengths = Set<Int>()
            for rank in 0..<3 {
                for worker in 0..<2 {
                    var o = ReadOrder()
                    o.seed = 3
                    o.rank = rank; o.worldSize = 3; o.worker = worker; o.workers = 2
                    o.dropLast = dropLast
                    let mine = Array(try reader.epoch(2, order: o))
                    lengths.insert(mine.count)
                    seen += mine
                }
            }
            XCTAssertEqual(lengths.count, 1, "participants differ in length")
            if dropLast {
                XCTAssertEqual(seen.count, n / 6 * 6)
                XCTAssertEqual(Set(seen).count, seen.count)
            } else {
                XCTAssertEqual(seen.count, (n + 5) / 6 * 6)
                XCTAssertEqual(Set(seen), Set(0..<n))
                // Padding repeats only the epoch's first samples, each at most once more.
                XCTAssertLessThanOrEqual(seen.count - n, 5)
            }
        }
        // Far more participants than samples: every participant still gets the same count.
        var o = ReadOrder()
        o.worldSize = 4 * n + 3
        var lengths = Set<Int>()
        for rank in [0, 1, n, o.worldSize - 1] {
            o.rank = rank
            lengths.insert(Array(try reader.epoch(0, order: o)).count)
        }
        XCTAssertEqual(lengths, [1])
        var bad = ReadOrder()
        bad.rank = 3; bad.worldSize = 3
        XCTAssertThrowsError(try reader.epoch(0, order: bad))
    }

    func testResumeContinuesWithExactlyTheUnseenSamples() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        var o = ReadOrder()
        o.seed = 11
        o.rank = 1; o.worldSize = 2
        var full = try reader.stream(order: o, state: ReaderState(epoch: 4, position: 0))
        var all: [String] = []
        var saved: ReaderState?
        while let (_, r) = try full.nextRecord() {
            all.append(r.key)
            if all.count == 17 { saved = full.state }
        }
        XCTAssertEqual(saved, ReaderState(epoch: 4, position: 17))
        var resumed = try reader.stream(order: o, state: saved!)
        var rest: [String] = []
        while let (_, r) = try resumed.nextRecord() { rest.append(r.key) }
        XCTAssertEqual(rest, Array(all.dropFirst(17)))
    }

    func testSlideSelection() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        var o = ReadOrder()
        o.shuffle = false
        let only = Array(try reader.epoch(0, order: o, slides: ["ihc"]))
        XCTAssertFalse(only.isEmpty)
        XCTAssertTrue(only.allSatisfy { reader.slideId(of: $0) == "ihc" })
        XCTAssertEqual(only.count, try DatasetManifest.load(directory: Self.dataset).slides.first { $0.id == "ihc" }!.samples)
        XCTAssertThrowsError(try reader.epoch(0, order: o, slides: ["no-such-slide"])) { XCTAssertTrue("\($0)".contains("no-such-slide")) }
    }

    /// Each kind of damage gives a clear error naming the shard (and the sample where there is one).
    func testDamagedShardsGiveClearErrors() throws {
        func copy() throws -> (String, DatasetManifest) {
            let dir = Fixtures.tempDir(self) + "/ds"
            try FileManager.default.copyItem(atPath: Self.dataset, toPath: dir)
            return (dir, try DatasetManifest.load(directory: dir))
        }
        // Flipped byte inside sample data: CRC error naming shard and sample key.
        do {
            let (dir, m) = try copy()
            let shard = dir + "/shards/" + m.shards[1].name
            let idx = try ShardIndex.load(from: ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: shard)))
            var data = try Data(contentsOf: URL(fileURLWithPath: shard))
            let victim = idx.samples[2]
            data[victim.members["jpg"]![0] + 100] ^= 0x01
            try data.write(to: URL(fileURLWithPath: shard))
            let reader = try DatasetReader(directory: dir)
            let g = m.shards[0].samples + 2
            XCTAssertThrowsError(try reader.record(g)) { e in
                XCTAssertTrue("\(e)".contains(m.shards[1].name), "\(e)")
                XCTAssertTrue("\(e)".contains(victim.key), "\(e)")
                XCTAssertTrue("\(e)".contains("CRC32C"), "\(e)")
            }
            XCTAssertNoThrow(try reader.record(g - 1))
            // The in-place path checks the same CRC, and a failed read leaves the buffer usable.
            let buffer = RecordBuffer()
            XCTAssertThrowsError(try reader.withRecord(g, buffer: buffer) { _ in }) { e in
                XCTAssertTrue("\(e)".contains(victim.key) && "\(e)".contains("CRC32C"), "\(e)")
            }
            XCTAssertEqual(try reader.withRecord(g - 1, buffer: buffer) { [UInt8]($0["jpg"]!) }, try reader.record(g - 1).members["jpg"])
        }
        // A shard truncated after it was opened: the read fails naming the sample, never a crash.
        do {
            let (dir, m) = try copy()
            let reader = try DatasetReader(directory: dir)
            let shard = dir + "/shards/" + m.shards[1].name
            let idx = try ShardIndex.load(from: ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: shard)))
            let last = idx.samples[idx.samples.count - 1]
            XCTAssertEqual(truncate(shard, off_t(last.offset + last.length / 2)), 0)
            let g = m.shards[0].samples + idx.samples.count - 1
            XCTAssertThrowsError(try reader.withRecord(g, buffer: RecordBuffer()) { _ in }) { e in
                XCTAssertTrue("\(e)".contains("truncated") && "\(e)".contains(last.key), "\(e)")
            }
            XCTAssertThrowsError(try reader.record(g)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
            XCTAssertNoThrow(try reader.record(g - 1))
        }
        // Members that overlap in the index: that sample is refused, its neighbours still read.
        do {
            let (dir, m) = try copy()
            let url = ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: dir + "/shards/" + m.shards[0].name))
            var idx = try ShardIndex.load(from: url)
            let jpg = idx.samples[1].members["jpg"]!
            idx.samples[1].members["json"] = [jpg[0] + 1, 10]
            try idx.encoded().write(to: url)
            let reader = try DatasetReader(directory: dir)
            XCTAssertThrowsError(try reader.record(1)) { XCTAssertTrue("\($0)".contains("overlap"), "\($0)") }
            XCTAssertNoThrow(try reader.record(0))
            XCTAssertNoThrow(try reader.record(2))
        }
        // Truncated shard: refused at open, naming the shard.
        do {
            let (dir, m) = try copy()
            let shard = dir + "/shards/" + m.shards[2].name
            let data = try Data(contentsOf: URL(fileURLWithPath: shard))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: shard))
            XCTAssertThrowsError(try DatasetReader(directory: dir)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        }
        // Missing index, missing shard.
        do {
            let (dir, m) = try copy()
            try FileManager.default.removeItem(atPath: dir + "/shards/" + ShardIndex.indexName(forShard: m.shards[0].name))
            XCTAssertThrowsError(try DatasetReader(directory: dir)) { XCTAssertTrue("\($0)".contains("index sidecar missing"), "\($0)") }
            try FileManager.default.removeItem(atPath: dir + "/shards/" + m.shards[0].name)
            XCTAssertThrowsError(try DatasetReader(directory: dir)) { XCTAssertTrue("\($0)".contains("missing"), "\($0)") }
        }
        // A hostile key in the index (path traversal) is refused.
        do {
            let (dir, m) = try copy()
            let url = ShardIndex.indexURL(forShardAt: URL(fileURLWithPath: dir + "/shards/" + m.shards[0].name))
            var idx = try ShardIndex.load(from: url)
            idx.samples[0].key = "../../etc/passwd"
            try idx.encoded().write(to: url)
            XCTAssertThrowsError(try DatasetReader(directory: dir)) { XCTAssertTrue("\($0)".contains("unsafe key"), "\($0)") }
        }
    }

    func testContactSheetShowsTiles() throws {
        let reader = try DatasetReader(directory: Self.dataset)
        let sheet = try ContactSheet.render(reader, count: 9, seed: 1, cell: 64)
        XCTAssertEqual(sheet.width, 3 * 66 + 2)
        XCTAssertEqual(sheet.height, 3 * 66 + 2)
        // Not blank: tissue colours are present.
        XCTAssertGreaterThan(Set(sheet.pixels).count, 100)
    }
}
