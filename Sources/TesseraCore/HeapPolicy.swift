#if os(Linux)
/// glibc's mallopt (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Process-wide allocator settings for the training and view loops.
public enum HeapPolicy {
    /// Keeps freed large buffers (activations, batch tensors) in the heap instead of returning them
    /// to the kernel, so each step reuses the previous step's pages rather than faulting in and
    /// zeroing fresh ones (glibc otherwise serves blocks above 128 KB–32 MB from mmap and unmaps them
    /// on free; that was ≈10–20% of a step's CPU). Idempotent.
    public static func retainFreedBuffers() {
        #if os(Linux)
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 30)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, Int32.max)
        #endif
    }
}
