import Foundation
import TesseraCore
import TesseraShards
import TesseraSlide

/// Turns a shard record back into pixels and metadata, whatever the tile encoding.
public enum TileDecoding {
    public static func metadata(_ record: ShardRecord) throws -> SampleMetadata {
        guard let json = record.members["json"] else {
            throw TesseraError(.corrupt, "sample \(record.key) has no .json member")
        }
        do { return try JSONDecoder().decode(SampleMetadata.self, from: Data(json)) } catch {
            throw TesseraError(.corrupt, "sample \(record.key): metadata is not valid: \(error)")
        }
    }

    public static func image(_ record: ShardRecord) throws -> RGBImage {
        if let bytes = record.members["jpg"] ?? record.members["png"] {
            do { return try ImageDecoder.decodeRGB(bytes) } catch {
                throw TesseraError(.corrupt, "sample \(record.key): \(error)")
            }
        }
        if let raw = record.members["rgb8"] {
            let size = try metadata(record).tileSize
            guard raw.count == size * size * 3 else {
                throw TesseraError(.corrupt, "sample \(record.key): rgb8 member holds \(raw.count) bytes, expected \(size)×\(size)×3")
            }
            return RGBImage(width: size, height: size, pixels: raw)
        }
        throw TesseraError(.corrupt, "sample \(record.key) has no image member (.jpg, .png or .rgb8)")
    }
}

/// A grid of sample tiles as one PNG, for looking at a dataset rather than reading about it.
public enum ContactSheet {
    /// Draws `count` samples chosen with `seed` (all if fewer), each shrunk to `cell` pixels.
    public static func render(_ reader: DatasetReader, count: Int, seed: UInt64 = 0, cell: Int = 128) throws -> RGBImage {
        var rng = SplitMix64(seed: seed)
        var picks = Array(0..<reader.count)
        picks.shuffle(using: &rng)
        picks = Array(picks.prefix(count)).sorted()
        let columns = max(1, Int(Double(picks.count).squareRoot().rounded(.up)))
        let rows = max(1, (picks.count + columns - 1) / columns)
        let gap = 2
        var sheet = RGBImage(width: columns * (cell + gap) + gap, height: rows * (cell + gap) + gap, fill: 255)
        for (n, i) in picks.enumerated() {
            let tile = try TileDecoding.image(try reader.record(i))
            let ox = gap + (n % columns) * (cell + gap), oy = gap + (n / columns) * (cell + gap)
            for y in 0..<cell {
                let sy = y * tile.height / cell
                for x in 0..<cell {
                    let sx = x * tile.width / cell
                    let s = (sy * tile.width + sx) * 3, d = ((oy + y) * sheet.width + ox + x) * 3
                    sheet.pixels[d] = tile.pixels[s]
                    sheet.pixels[d + 1] = tile.pixels[s + 1]
                    sheet.pixels[d + 2] = tile.pixels[s + 2]
                }
            }
        }
        return sheet
    }
}
