#if os(Linux)
/// glibc's mallopt (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

extension Array where Element == Float {
    /// An array whose every element `body` writes (no zero-fill: activations are rewritten whole).
    static func filled(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
    }
}

enum Memory {
    /// Keeps freed activation buffers in the heap instead of returning them to the kernel, so each
    /// step reuses the previous step's pages rather than faulting in and zeroing fresh ones (glibc
    /// otherwise serves blocks above 32 MB–128 KB from mmap and unmaps them on free).
    static func retainFreedBuffers() {
        #if os(Linux)
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 30)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, Int32.max)
        #endif
    }
}
