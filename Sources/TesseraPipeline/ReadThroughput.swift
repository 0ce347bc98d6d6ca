import Foundation
import TesseraCore
import TesseraShards
import TesseraSlide

/// Reads one epoch of a dataset as a training loader would, on `threads` threads (each one a worker
/// partition of the epoch), optionally decoding every tile: `tessera read` and scripts/bench-read.
public enum ReadThroughput {
    public struct Result: Sendable {
        public var samples: Int
        /// Bytes of all members returned (tile + metadata), CRC-checked.
        public var bytes: Int
        public var pixels: Int
        public var seconds: Double
    }

    final class Totals: @unchecked Sendable {
        let lock = NSLock()
        var samples = 0, bytes = 0, pixels = 0
        var error: Error?
        func add(_ s: Int, _ b: Int, _ p: Int) { lock.lock(); samples += s; bytes += b; pixels += p; lock.unlock() }
        func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    }

    public static func run(_ reader: DatasetReader, order: ReadOrder, epoch: Int = 0, decode: Bool, threads: Int,
                           slides: Set<String>? = nil, keys: Set<String>? = nil) throws -> Result {
        let totals = Totals()
        let start = Date()
        let group = DispatchGroup()
        for t in 0..<threads {
            var o = order
            o.worker = t
            o.workers = threads
            o.dropLast = true
            let stream = try reader.stream(order: o, state: ReaderState(epoch: epoch, position: 0), slides: slides, keys: keys)
            group.enter()
            let thread = Thread {
                var s = stream
                var n = 0, b = 0, p = 0
                do {
                    // Each sample is read into one reused buffer, CRC-checked there and used in
                    // place (as a loader copying into its batch would); decoding makes new pixels.
                    let buffer = RecordBuffer()
                    let jpeg = try JPEGTileDecoder()
                    var more = true
                    while more {
                        more = try s.nextRecord(buffer: buffer) { (_, view) -> Void in
                            n += 1
                            for m in view.members { b += m.count }
                            if decode { p += try TileDecoding.image(view, jpeg: jpeg).pixels.count / 3 }
                        } != nil
                    }
                } catch { totals.fail(error) }
                totals.add(n, b, p)
                group.leave()
            }
            thread.start()
        }
        group.wait()
        if let e = totals.error { throw e }
        return Result(samples: totals.samples, bytes: totals.bytes, pixels: totals.pixels, seconds: Date().timeIntervalSince(start))
    }
}
