// Vector helpers for the view kernels (ViewKernels), one vector width per build: eight floats
// (baseline x86-64, SSE2 only: two registers per vector, no floor instruction, no blend; and the
// Haswell build, TESSERA_HASWELL_KERNELS, one AVX register), or sixteen (the AVX-512 build,
// TESSERA_AVX512_KERNELS, one ZMM register). The arithmetic of a lane does not depend on the width,
// so all builds give the same bytes. The helpers are `@_transparent` because LLVM otherwise declines
// to inline them into the larger loops.

#if TESSERA_AVX512_KERNELS
typealias V = SIMD16<Float>
typealias V2 = SIMD32<Float>
typealias VMask = SIMDMask<SIMD16<Int32>>
#else
typealias V = SIMD8<Float>
typealias V2 = SIMD16<Float>
typealias VMask = SIMDMask<SIMD8<Int32>>
#endif

/// Floats per vector in this build.
@_transparent var L: Int { V.scalarCount }

@_transparent func loadV(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> V {
    UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
}

@_transparent func storeV(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
}

@_transparent func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

/// a where m, else b.
@_transparent func select(_ m: VMask, _ a: V, _ b: V) -> V {
    b.replacing(with: a, where: m)
}

/// Lane-wise max and min of non-NaN values.
@_transparent func maxV(_ a: V, _ b: V) -> V { a.replacing(with: b, where: a .< b) }
@_transparent func minV(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }

/// Floor of values in 0…2²³ (what a byte store truncates them to, when they are in range).
@_transparent func floorOf(_ c: V) -> V {
#if TESSERA_HASWELL_KERNELS
    // One vroundps / vrndscaleps (SSE4.1 and later); the same value as below for every input in range.
    return c.rounded(.down)
#else
    // Adding 2²³ leaves no fraction bits: round to nearest, then step down where that rounded up.
    let r = (c + 0x1p23) - 0x1p23
    return r.replacing(with: r - 1, where: r .> c)
#endif
}

/// What storing to a byte and reading back does to a float (clamp to 0…255, truncate), with adds
/// and compares only: `rounded(.down)` would be a libm call per lane on baseline x86-64.
@_transparent func byteValue(_ v: V) -> V {
    floorOf(minV(maxV(v, .zero), V(repeating: 255)))
}

@inline(__always) func byteValue(_ v: Float) -> Float { Float(UInt8(max(0, min(255, v)))) }
