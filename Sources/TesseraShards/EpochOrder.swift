import Foundation
import TesseraCore

/// How one participant (a rank's worker) walks a dataset in an epoch.
public struct ReadOrder: Sendable, Equatable, Codable {
    public var seed: UInt64 = 0
    /// false: manifest order, no shuffling.
    public var shuffle = true
    /// Samples held in the shuffle buffer after the shard permutation (memory: this many indices).
    public var shuffleBuffer = 8192
    public var rank = 0
    public var worldSize = 1
    public var worker = 0
    public var workers = 1
    /// When the sample count does not divide by `worldSize × workers`: pad by repeating the first
    /// samples of the epoch's order (every sample seen at least once), or drop the last ones
    /// (every sample seen at most once, all participants equally long).
    public var dropLast = false

    public init() {}

    var participants: Int { worldSize * workers }
    var participant: Int { rank * workers + worker }

    public func validate() throws {
        guard worldSize >= 1, rank >= 0, rank < worldSize else {
            throw TesseraError(.invalidConfig, "rank \(rank) is not in 0..<world size \(worldSize)")
        }
        guard workers >= 1, worker >= 0, worker < workers else {
            throw TesseraError(.invalidConfig, "worker \(worker) is not in 0..<workers \(workers)")
        }
        guard shuffleBuffer >= 1 else { throw TesseraError(.invalidConfig, "shuffle buffer must be at least 1, got \(shuffleBuffer)") }
    }
}

/// Where a reader stands: save it with a checkpoint, restore it to continue with exactly the
/// samples not yet seen.
public struct ReaderState: Sendable, Equatable, Codable {
    public var epoch: Int
    /// Samples this participant has already been given in this epoch.
    public var position: Int
    public init(epoch: Int, position: Int) {
        self.epoch = epoch
        self.position = position
    }
}

/// The order of an epoch: a pure function of (seed, epoch) and the dataset's shard layout.
///
/// The global order permutes the shards, then streams their samples through a bounded shuffle
/// buffer; participant q of P takes global positions q, q + P, q + 2P… of that order, so over an
/// epoch every sample is seen exactly once across all ranks and workers (after padding or dropping
/// to a multiple of P). Memory is the shuffle buffer, not the dataset.
public struct EpochOrder: Sequence, Sendable {
    /// Global sample indices per shard, in shard order (only the samples selected for reading).
    let shards: [[Int]]
    let order: ReadOrder
    let epoch: Int
    public let total: Int
    /// Samples this participant gets in the epoch.
    public let count: Int

    init(shards: [[Int]], order: ReadOrder, epoch: Int) {
        self.shards = shards
        self.order = order
        self.epoch = epoch
        let n = shards.reduce(0) { $0 + $1.count }
        self.total = n
        let p = order.participants
        count = order.dropLast ? n / p : (n + p - 1) / p
    }

    /// The epoch's global order, before partitioning (padding repeats its start).
    func globalStream() -> AnyIterator<Int> {
        var rng = SplitMix64(seed: Self.mix(order.seed, UInt64(bitPattern: Int64(epoch))))
        var shardOrder = Array(shards.indices)
        if order.shuffle {
            // Fisher–Yates with a plain modulo draw, spelled out so other readers
            // (scripts/tessera_dataset.py) reproduce the order exactly.
            var i = shardOrder.count - 1
            while i > 0 {
                shardOrder.swapAt(i, Int(rng.next() % UInt64(i + 1)))
                i -= 1
            }
        }
        var shardCursor = 0, sampleCursor = 0
        func nextInShards() -> Int? {
            while shardCursor < shardOrder.count {
                let s = shards[shardOrder[shardCursor]]
                if sampleCursor < s.count { defer { sampleCursor += 1 }; return s[sampleCursor] }
                shardCursor += 1
                sampleCursor = 0
            }
            return nil
        }
        guard order.shuffle else { return AnyIterator(nextInShards) }
        var buffer: [Int] = []
        buffer.reserveCapacity(Swift.min(order.shuffleBuffer, total))
        return AnyIterator {
            while buffer.count < order.shuffleBuffer, let next = nextInShards() { buffer.append(next) }
            guard !buffer.isEmpty else { return nil }
            let pick = Int(rng.next() % UInt64(buffer.count))
            buffer.swapAt(pick, buffer.count - 1)
            return buffer.removeLast()
        }
    }

    /// This participant's samples, from `position` on (the ones before it are skipped unread).
    public func makeIterator(from position: Int) -> AnyIterator<Int> {
        let p = order.participants, q = order.participant
        let limit = count
        var stream = globalStream()
        var global = 0
        return AnyIterator {
            while true {
                let round = global / p
                guard round < limit else { return nil }
                // Past the end of the epoch the order starts again (as often as padding needs):
                // the padding repeats the epoch's start.
                if global > 0 && global % total == 0 { stream = globalStream() }
                guard let v = stream.next() else { return nil }
                let mine = global % p == q && round >= position
                global += 1
                if mine { return v }
            }
        }
    }

    public func makeIterator() -> AnyIterator<Int> { makeIterator(from: 0) }

    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var g = SplitMix64(seed: a ^ 0x5DEE_CE66_D1CE_4E5B)
        _ = g.next()
        g.state ^= b &* 0x9E37_79B9_7F4A_7C15
        return g.next()
    }
}
