import CVipsShim
import Foundation
import TesseraCore

/// Process-wide libvips start-up. Safe to call from any thread, any number of times.
public enum VipsRuntime {
    private static let startedLock = NSLock()
    nonisolated(unsafe) private static var startedFlag = false

    private static let started: Bool = {
        if tsr_init() != 0 { return false }
        startedLock.lock(); startedFlag = true; startedLock.unlock()
        // Tessera runs its own worker pool; one libvips thread per call keeps the two from
        // oversubscribing the cores (measured: both pools at full width fight on 2 cores).
        tsr_set_concurrency(1)
        return true
    }()

    /// Starts libvips once; throws if the library cannot start.
    public static func start() throws {
        if !started { throw TesseraError(.io, "libvips failed to start: \(takeError())", hint: "check that libvips is installed (apt-get install libvips-dev)") }
    }

    public static var version: String { String(cString: tsr_version()) }

    /// The text of libvips' error buffer, cleared afterwards.
    static func takeError() -> String {
        guard let p = tsr_error_take() else { return "unknown libvips error" }
        defer { tsr_free(p) }
        let s = String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? "unknown libvips error" : condense(s)
    }

    /// One line from libvips' multi-line error buffer: repeated messages (a damaged JPEG repeats its
    /// warning once per scanline group) are counted instead of repeated, and at most `limit` distinct
    /// messages are kept, so a manifest's failure reason stays readable.
    static func condense(_ buffer: String, limit: Int = 6) -> String {
        var order: [Substring] = []
        var counts: [Substring: Int] = [:]
        for line in buffer.split(separator: "\n") {
            let l = line.trimmingCharacters(in: .whitespaces)
            guard !l.isEmpty else { continue }
            let key = Substring(l)
            if counts[key] == nil { order.append(key) }
            counts[key, default: 0] += 1
        }
        func text(_ m: Substring) -> String { counts[m]! > 1 ? "\(m) (×\(counts[m]!))" : String(m) }
        // The last message is usually the loader's own verdict ("decompress error tile 0 x 0"): keep it.
        guard order.count > limit else { return order.map(text).joined(separator: "; ") }
        return (order.prefix(limit - 1).map(text) + ["… \(order.count - limit) more", text(order.last!)]).joined(separator: "; ")
    }

    /// Releases libvips' per-thread state; call when a worker thread that used libvips ends.
    /// A no-op when libvips was never started in this process (shutting down uninitialized
    /// per-thread state crashes inside GLib).
    public static func threadShutdown() {
        startedLock.lock()
        let on = startedFlag
        startedLock.unlock()
        if on { tsr_thread_shutdown() }
    }
}

/// Owns one reference to a `VipsImage`. libvips images are immutable once built and may be
/// shared between threads; each reading thread uses its own region.
final class VipsImageRef: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { tsr_unref(UnsafeMutableRawPointer(pointer)) }

    var width: Int { Int(tsr_width(pointer)) }
    var height: Int { Int(tsr_height(pointer)) }
    var bands: Int { Int(tsr_bands(pointer)) }

    func string(_ field: String) -> String? {
        guard let p = tsr_get_string(pointer, field) else { return nil }
        defer { tsr_free(p) }
        return String(cString: p)
    }

    var fieldNames: [String] {
        guard let v = tsr_field_names(pointer) else { return [] }
        defer { tsr_free_strv(v) }
        var names: [String] = []
        var i = 0
        while let p = v[i] { names.append(String(cString: p)); i += 1 }
        return names
    }

    /// Runs a libvips call that produces an image; throws with libvips' message on failure.
    static func make(path: String?, _ what: String, _ body: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws -> VipsImageRef {
        var out: OpaquePointer?
        if body(&out) != 0 || out == nil {
            throw TesseraError(.unreadable, path: path, "\(what) failed: \(VipsRuntime.takeError())")
        }
        return VipsImageRef(out!)
    }

    /// Renders the whole image into memory; only for small images (thumbnails).
    func renderRGB(path: String?) throws -> RGBImage {
        precondition(bands == 3)
        var buf: UnsafeMutablePointer<UInt8>?
        var len = 0
        if tsr_write_to_memory(pointer, &buf, &len) != 0 || buf == nil {
            throw TesseraError(.corrupt, path: path, "decoding pixels failed: \(VipsRuntime.takeError())")
        }
        defer { tsr_free(buf) }
        let pixels = Array(UnsafeBufferPointer(start: buf, count: len))
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}

/// A thread-confined reader of rectangles from one image (one `VipsRegion`).
final class VipsRegionReader {
    private let image: VipsImageRef
    private let region: OpaquePointer

    init(_ image: VipsImageRef) throws {
        self.image = image
        guard let r = tsr_region_new(image.pointer) else {
            throw TesseraError(.io, "cannot create a libvips region: \(VipsRuntime.takeError())")
        }
        self.region = r
    }
    deinit { tsr_unref(UnsafeMutableRawPointer(region)) }

    /// Reads `width × height` pixels at (x, y) into a packed RGB buffer.
    func read(x: Int, y: Int, width: Int, height: Int, path: String) throws -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * image.bands)
        let rc = pixels.withUnsafeMutableBufferPointer {
            tsr_region_read(region, Int32(x), Int32(y), Int32(width), Int32(height), $0.baseAddress)
        }
        if rc != 0 {
            throw TesseraError(.corrupt, path: path, "reading pixels at (\(x), \(y)) size \(width)×\(height) failed: \(VipsRuntime.takeError())",
                               hint: "the file is damaged; re-export or re-scan it")
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
