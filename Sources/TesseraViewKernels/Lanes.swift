// Eight-lane Float helpers for the view kernels (ViewKernels). Baseline x86-64 has SSE2 only: no
// floor instruction, no blend, two registers per SIMD8 (the Haswell build, TESSERA_HASWELL_KERNELS,
// has all three). These keep to adds, compares and selects, and are `@_transparent` because LLVM
// otherwise declines to inline them into the larger loops.

@_transparent func load8(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

@_transparent func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
}

@_transparent func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

/// a where m, else b.
@_transparent func select(_ m: SIMDMask<SIMD8<Int32>>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    b.replacing(with: a, where: m)
}

/// Lane-wise max and min of non-NaN values.
@_transparent func max8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }
@_transparent func min8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

/// Floor of values in 0…2²³ (what a byte store truncates them to, when they are in range).
@_transparent func floorOf(_ c: SIMD8<Float>) -> SIMD8<Float> {
#if TESSERA_HASWELL_KERNELS
    // One vroundps (SSE4.1 and later); the same value as below for every input in range.
    return c.rounded(.down)
#else
    // Adding 2²³ leaves no fraction bits: round to nearest, then step down where that rounded up.
    let r = (c + 0x1p23) - 0x1p23
    return r.replacing(with: r - 1, where: r .> c)
#endif
}

/// What storing to a byte and reading back does to a float (clamp to 0…255, truncate), with adds
/// and compares only: `rounded(.down)` would be a libm call per lane on baseline x86-64.
@_transparent func byteValue(_ v: SIMD8<Float>) -> SIMD8<Float> {
    floorOf(min8(max8(v, .zero), SIMD8(repeating: 255)))
}

@inline(__always) func byteValue(_ v: Float) -> Float { Float(UInt8(max(0, min(255, v)))) }
