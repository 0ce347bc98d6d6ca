import Foundation

/// A fixed pool of worker threads between one producer and one consumer.
///
/// Guarantees: jobs are processed concurrently but results come out in submission order;
/// at most `capacity` jobs are in flight or waiting to be consumed, so `submit` blocks
/// (back-pressure) and memory stays bounded whatever the input size. A job running longer
/// than `stuckLimit` is abandoned: its thread is left to finish or hang on its own, its result
/// is replaced, and a fresh worker takes its place, so one stuck call never stops the run.
/// `cancel()` lets a consumer stop early: waiting jobs are dropped, `submit` no longer blocks, and
/// the workers end once their current job is done.
public final class OrderedPool<Job, Output, Context>: @unchecked Sendable {
    private let cond = NSCondition()
    /// Waiting jobs; taken entries are cleared at once so that a finished job's data is freed.
    private var queue: [(Int, Job)?] = []
    private var queueHead = 0
    private var results: [Int: Output] = [:]
    private var running: [Int: (started: Date, job: Job)] = [:]
    private var abandoned = Set<Int>()
    private var submitted = 0
    private var consumed = 0
    private var closed = false
    private var cancelled = false
    private var liveWorkers = 0
    private let capacity: Int
    private let makeContext: @Sendable () -> Context
    private let process: @Sendable (Job, Context) -> Output
    /// Runs on each worker thread as it ends (e.g. releasing libvips' per-thread state).
    private let threadExit: @Sendable () -> Void
    private var workerCount = 0

    public init(workers: Int, capacity: Int, makeContext: @escaping @Sendable () -> Context,
         threadExit: @escaping @Sendable () -> Void = {},
         process: @escaping @Sendable (Job, Context) -> Output) {
        self.threadExit = threadExit
        self.capacity = max(capacity, workers)
        self.makeContext = makeContext
        self.process = process
        cond.lock()
        for _ in 0..<workers { startWorker() }
        cond.unlock()
    }

    /// Must be called with `cond` held.
    private func startWorker() {
        liveWorkers += 1
        workerCount += 1
        let t = Thread { [self] in
            let context = makeContext()
            while let (seq, job) = take() {
                let out = process(job, context)
                cond.lock()
                running.removeValue(forKey: seq)
                if abandoned.remove(seq) != nil {
                    // A replacement worker already took this thread's place.
                    cond.unlock()
                    threadExit()
                    return
                }
                if !cancelled { results[seq] = out }
                cond.broadcast()
                cond.unlock()
            }
            threadExit()
            cond.lock()
            liveWorkers -= 1
            cond.broadcast()
            cond.unlock()
        }
        t.name = "tessera-worker-\(workerCount)"
        t.stackSize = 4 << 20
        t.start()
    }

    private func take() -> (Int, Job)? {
        cond.lock(); defer { cond.unlock() }
        while queueHead == queue.count && !closed && !cancelled { cond.wait() }
        guard !cancelled, queueHead < queue.count, let item = queue[queueHead] else { return nil }
        queue[queueHead] = nil
        queueHead += 1
        if queueHead > 256 { queue.removeFirst(queueHead); queueHead = 0 }
        running[item.0] = (Date(), item.1)
        return item
    }

    /// Adds a job; blocks while `capacity` jobs are already in flight. After `cancel()` the job
    /// is dropped at once.
    public func submit(_ job: Job) {
        cond.lock(); defer { cond.unlock() }
        while submitted - consumed >= capacity && !cancelled { cond.wait() }
        if cancelled { return }
        queue.append((submitted, job))
        submitted += 1
        cond.broadcast()
    }

    /// No more jobs will be submitted.
    public func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }

    /// The consumer wants no more results: waiting jobs and results are dropped, producers blocked
    /// in `submit` return, and each worker ends after the job it is running. `next()` then returns nil.
    public func cancel() {
        cond.lock()
        cancelled = true
        queue.removeAll()
        queueHead = 0
        results.removeAll()
        cond.broadcast()
        cond.unlock()
    }

    /// The next result in submission order; nil once closed and drained, or after `cancel()`. When
    /// the awaited job has run longer than `stuckLimit` seconds, returns `stuck(job)` in its place.
    public func next(stuckLimit: TimeInterval? = nil, stuck: (Job) -> Output) -> Output? {
        cond.lock(); defer { cond.unlock() }
        while results[consumed] == nil {
            if cancelled || (closed && consumed == submitted) { return nil }
            if let limit = stuckLimit, let r = running[consumed], Date().timeIntervalSince(r.started) > limit {
                abandoned.insert(consumed)
                running.removeValue(forKey: consumed)
                liveWorkers -= 1
                startWorker()
                results[consumed] = stuck(r.job)
                break
            }
            _ = cond.wait(until: Date().addingTimeInterval(stuckLimit == nil ? 3600 : 0.5))
        }
        let out = results.removeValue(forKey: consumed)!
        consumed += 1
        cond.broadcast()
        return out
    }

    /// Waits for the worker threads to end (after `close` and draining); abandoned ones are not waited for.
    public func join() {
        cond.lock()
        while liveWorkers > 0 { cond.wait() }
        cond.unlock()
    }
}
