import CVipsShim
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

/// A libjpeg-turbo decoder kept for many tiles (one per thread: not thread-safe). Output is the
/// same as `ImageDecoder.decodeRGB` (default accurate IDCT and upsampling, as Pillow decodes).
public final class JPEGTileDecoder {
    private let decoder: OpaquePointer
    private var message = [CChar](repeating: 0, count: 200)

    public init() throws {
        guard let d = tsr_jpeg_decoder_new() else { throw TesseraError(.io, "out of memory creating a JPEG decoder") }
        decoder = d
    }
    deinit { tsr_jpeg_decoder_free(decoder) }

    /// Decodes JPEG bytes straight into a new pixel array (no zero-fill, no intermediate copy).
    public func decode(_ bytes: UnsafeRawBufferPointer) throws -> RGBImage {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw TesseraError(.corrupt, "decoding JPEG failed: empty data")
        }
        var w: Int32 = 0, h: Int32 = 0
        guard tsr_jpeg_decoder_header(decoder, base, bytes.count, &w, &h, &message, message.count) == 0 else { throw failure() }
        let count = Int(w) * Int(h) * 3
        var rc: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            rc = tsr_jpeg_decoder_read(decoder, buf.baseAddress, count, &message, message.count)
            initialized = rc == 0 ? count : 0
        }
        guard rc == 0 else { throw failure() }
        return RGBImage(width: Int(w), height: Int(h), pixels: pixels)
    }

    private func failure() -> TesseraError {
        TesseraError(.corrupt, "decoding JPEG failed: \(String(cString: message))")
    }
}

extension TileDecoding {
    /// Metadata of a sample read in place.
    public static func metadata(_ view: RecordView) throws -> SampleMetadata {
        guard let json = view["json"] else { throw TesseraError(.corrupt, "sample \(view.key) has no .json member") }
        do { return try JSONDecoder().decode(SampleMetadata.self, from: Data(json)) } catch {
            throw TesseraError(.corrupt, "sample \(view.key): metadata is not valid: \(error)")
        }
    }

    /// Pixels of a sample read in place; JPEG through `jpeg` (reused across calls), the same pixels
    /// as `image(_: ShardRecord)`.
    public static func image(_ view: RecordView, jpeg: JPEGTileDecoder) throws -> RGBImage {
        if let bytes = view["jpg"] {
            do { return try jpeg.decode(bytes) } catch let e as TesseraError {
                throw TesseraError(.corrupt, "sample \(view.key): \(e.message)")
            }
        }
        if let bytes = view["png"] {
            do { return try ImageDecoder.decodeRGB(Array(bytes)) } catch {
                throw TesseraError(.corrupt, "sample \(view.key): \(error)")
            }
        }
        if let raw = view["rgb8"] {
            let size = try metadata(view).tileSize
            guard raw.count == size * size * 3 else {
                throw TesseraError(.corrupt, "sample \(view.key): rgb8 member holds \(raw.count) bytes, expected \(size)×\(size)×3")
            }
            return RGBImage(width: size, height: size, pixels: [UInt8](raw))
        }
        throw TesseraError(.corrupt, "sample \(view.key) has no image member (.jpg, .png or .rgb8)")
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

/// Reads and decodes dataset samples on worker threads, each thread reusing its own record buffer
/// and JPEG decoder (kept in the thread's dictionary, freed with the thread): per tile, one
/// positional read, the CRC check and the decode, with no per-sample decoder set-up or copies.
/// The pixels are those of `TileDecoding.image(_: ShardRecord)`; a `.jpg` member that is not a
/// JPEG fails here (the record path would hand it to libvips), naming the sample either way.
public enum ThreadTileReader {
    final class State {
        let buffer = RecordBuffer()
        let jpeg: JPEGTileDecoder
        init() throws { jpeg = try JPEGTileDecoder() }
    }

    static let key = "tessera.tile-reader"

    public static func image(_ reader: DatasetReader, _ i: Int) throws -> RGBImage {
        let dictionary = Thread.current.threadDictionary
        let state: State
        if let s = dictionary[key] as? State { state = s } else {
            state = try State()
            dictionary[key] = state
        }
        return try reader.withRecord(i, buffer: state.buffer) { view in try TileDecoding.image(view, jpeg: state.jpeg) }
    }
}
