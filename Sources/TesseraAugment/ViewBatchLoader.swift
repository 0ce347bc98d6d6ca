import Foundation
import TesseraCore

/// One batch of views: per crop group a contiguous float32 tensor of shape
/// [count × batch, 3, size, size], view-major (all samples' view 0, then all samples' view 1 …,
/// as DINO concatenates its crops), normalized by the recipe.
public struct ViewBatch: Sendable {
    /// The samples (dataset indices) in batch order.
    public var samples: [Int]
    public var tensors: [[Float]]
    /// Per crop group: [N, C, H, W].
    public var shapes: [[Int]]
}

/// Worker threads turning tiles into batches of views behind a bounded queue: `next()` returns
/// batches in a stable order (the order of `samples`) whatever the number of workers, at most
/// `prefetch` batches are held, and the producer waits when the consumer is slow (back-pressure).
/// Each batch is a pure function of (recipe, seed, epoch, sample indices), so it is byte-identical
/// for any number of workers. A loader dropped or cancelled before the end of its epoch stops its
/// threads (each after the batch it is making).
public final class ViewBatchLoader: @unchecked Sendable {
    public let generator: ViewGenerator
    public let batchSize: Int
    private let pool: OrderedPool<[Int], Result<ViewBatch, Error>, Void>
    private let epoch: Int

    /// - Parameters:
    ///   - samples: dataset indices in the order to serve them (an epoch of a reader).
    ///   - tile: reads and decodes one sample (called on worker threads).
    ///   - dropLast: drop a final short batch instead of serving it.
    public init(samples: [Int], epoch: Int, generator: ViewGenerator, batchSize: Int, workers: Int, prefetch: Int = 4,
                dropLast: Bool = false, threadExit: @escaping @Sendable () -> Void = {},
                tile: @escaping @Sendable (Int) throws -> RGBImage) throws {
        guard batchSize >= 1 else { throw TesseraError(.invalidConfig, "batch size must be at least 1, got \(batchSize)") }
        guard workers >= 1 else { throw TesseraError(.invalidConfig, "workers must be at least 1, got \(workers)") }
        HeapPolicy.retainFreedBuffers()
        self.generator = generator
        self.batchSize = batchSize
        self.epoch = epoch
        let recipe = generator.recipe
        pool = OrderedPool(workers: workers, capacity: max(prefetch, workers), makeContext: { () }, threadExit: threadExit) { indices, _ in
            Result { try Self.assemble(indices, epoch: epoch, recipe: recipe, generator: generator, tile: tile) }
        }
        var batches: [[Int]] = []
        var i = 0
        while i < samples.count {
            let b = Array(samples[i..<min(samples.count, i + batchSize)])
            if b.count == batchSize || !dropLast { batches.append(b) }
            i += batchSize
        }
        let pool = self.pool, all = batches
        Thread.detachNewThread {
            for b in all { pool.submit(b) }
            pool.close()
        }
    }

    deinit { pool.cancel() }

    /// Stops early: batches not yet taken are dropped and the worker threads end; `next()` returns nil.
    public func cancel() { pool.cancel() }

    /// The next batch, or nil at the end of the epoch (or after `cancel()`); rethrows a sample's
    /// read or decode error.
    public func next() throws -> ViewBatch? {
        guard let r = pool.next(stuck: { _ in .failure(TesseraError(.timeout, "a view batch got stuck")) }) else { return nil }
        return try r.get()
    }

    static func assemble(_ indices: [Int], epoch: Int, recipe: ViewRecipe, generator: ViewGenerator,
                         tile: (Int) throws -> RGBImage) throws -> ViewBatch {
        let b = indices.count
        // Each tile is read (and stain-jittered), prepared for resampling and all its views are
        // normalized straight into their places in the group tensors — view-major — before the next
        // tile is read, so its bytes are still in cache; no per-view array and no copy.
        let canvas = ViewCanvas()
        let per = recipe.crops.map { 3 * $0.size * $0.size }
        var failure: Error?
        // All group tensors are open at once (nested uninitialized arrays).
        func fill(_ bases: [UnsafeMutablePointer<Float>]) {
            for (s, i) in indices.enumerated() {
                let image: RGBImage
                do { image = generator.stained(try tile(i), sample: i, epoch: epoch) } catch {
                    failure = error
                    // The tensors are thrown away with the error; they only need to be initialized.
                    for (gi, g) in recipe.crops.enumerated() { bases[gi].initialize(repeating: 0, count: g.count * b * per[gi]) }
                    return
                }
                let source = Resample.Source(image)
                var view = 0
                for (gi, g) in recipe.crops.enumerated() {
                    for v in 0..<g.count {
                        generator.render(source, group: g, position: v, sample: i, epoch: epoch, view: view, into: canvas)
                        canvas.normalize(mean: generator.mean, std: generator.std, into: bases[gi] + (v * b + s) * per[gi])
                        view += 1
                    }
                }
            }
        }
        func open(_ gi: Int, _ bases: [UnsafeMutablePointer<Float>]) -> [[Float]] {
            guard gi < recipe.crops.count else { fill(bases); return [] }
            let count = recipe.crops[gi].count * b * per[gi]
            var rest: [[Float]] = []
            let tensor = [Float](unsafeUninitializedCapacity: count) { buffer, n in
                rest = open(gi + 1, bases + [buffer.baseAddress!])
                n = count
            }
            return [tensor] + rest
        }
        let tensors = open(0, [])
        if let failure { throw failure }
        let shapes = recipe.crops.map { [$0.count * b, 3, $0.size, $0.size] }
        return ViewBatch(samples: indices, tensors: tensors, shapes: shapes)
    }
}
