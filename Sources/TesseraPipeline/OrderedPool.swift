import Foundation
import TesseraSlide

/// A fixed pool of worker threads between one producer and one consumer.
///
/// Guarantees: jobs are processed concurrently but results come out in submission order;
/// at most `capacity` jobs are in flight or waiting to be consumed, so `submit` blocks
/// (back-pressure) and memory stays bounded whatever the input size.
final class OrderedPool<Job, Output, Context>: @unchecked Sendable {
    private let cond = NSCondition()
    private var queue: [(Int, Job)] = []
    private var queueHead = 0
    private var results: [Int: Output] = [:]
    private var submitted = 0
    private var consumed = 0
    private var closed = false
    private let capacity: Int
    private var threads: [Thread] = []
    private let running = DispatchGroup()

    init(workers: Int, capacity: Int, makeContext: @escaping @Sendable () -> Context,
         process: @escaping @Sendable (Job, Context) -> Output) {
        self.capacity = max(capacity, workers)
        for i in 0..<workers {
            running.enter()
            let t = Thread { [self] in
                let context = makeContext()
                while let (seq, job) = self.take() {
                    let out = process(job, context)
                    self.cond.lock()
                    self.results[seq] = out
                    self.cond.broadcast()
                    self.cond.unlock()
                }
                VipsRuntime.threadShutdown()
                self.running.leave()
            }
            t.name = "tessera-worker-\(i)"
            t.stackSize = 4 << 20
            threads.append(t)
            t.start()
        }
    }

    private func take() -> (Int, Job)? {
        cond.lock(); defer { cond.unlock() }
        while queueHead == queue.count && !closed { cond.wait() }
        guard queueHead < queue.count else { return nil }
        let item = queue[queueHead]
        queueHead += 1
        if queueHead > 1024 { queue.removeFirst(queueHead); queueHead = 0 }
        return item
    }

    /// Adds a job; blocks while `capacity` jobs are already in flight.
    func submit(_ job: Job) {
        cond.lock(); defer { cond.unlock() }
        while submitted - consumed >= capacity { cond.wait() }
        queue.append((submitted, job))
        submitted += 1
        cond.broadcast()
    }

    /// No more jobs will be submitted.
    func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }

    /// The next result in submission order; nil once closed and drained.
    func next() -> Output? {
        cond.lock(); defer { cond.unlock() }
        while results[consumed] == nil {
            if closed && consumed == submitted { return nil }
            cond.wait()
        }
        let out = results.removeValue(forKey: consumed)!
        consumed += 1
        cond.broadcast()
        return out
    }

    /// Waits for the worker threads to end (after `close` and draining).
    func join() { running.wait() }
}
