extension Array where Element == Float {
    /// An array whose every element `body` writes (no zero-fill: activations are rewritten whole).
    static func filled(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
    }
}
