import Foundation
import TesseraCore

/// One array of a safetensors file: an element type, a row-major shape and the raw little-endian
/// bytes. The byte count always matches `shape` and `dtype` once it has been read or written.
public struct SafeTensor: Sendable, Equatable {
    /// Element types by their safetensors names.
    public enum DType: String, Sendable, CaseIterable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .bool, .u8, .i8: return 1
            case .i16, .u16, .f16, .bf16: return 2
            case .i32, .u32, .f32: return 4
            case .f64, .i64, .u64: return 8
            }
        }
    }

    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(floats: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == floats.count, "SafeTensor: shape \(shape) does not match \(floats.count) values")
        self.init(dtype: .f32, shape: shape, bytes: Self.littleEndianBytes(floats.map { $0.bitPattern }))
    }

    public init(int64s: [Int64], shape: [Int]) {
        precondition(shape.reduce(1, *) == int64s.count, "SafeTensor: shape \(shape) does not match \(int64s.count) values")
        self.init(dtype: .i64, shape: shape, bytes: Self.littleEndianBytes(int64s))
    }

    /// Number of elements the shape describes (1 for a scalar, shape []).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The values of an F32 tensor; any other dtype is an error (no silent narrowing).
    public var floats: [Float] {
        get throws {
            guard dtype == .f32 else { throw TesseraError(.mismatch, "tensor is \(dtype.rawValue), not F32") }
            return Self.fromLittleEndian(bytes, as: UInt32.self).map(Float.init(bitPattern:))
        }
    }

    /// The values of an I64 tensor; any other dtype is an error.
    public var int64s: [Int64] {
        get throws {
            guard dtype == .i64 else { throw TesseraError(.mismatch, "tensor is \(dtype.rawValue), not I64") }
            return Self.fromLittleEndian(bytes, as: Int64.self)
        }
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        let le = values.map(\.littleEndian)
        return le.withUnsafeBytes { [UInt8]($0) }
    }

    static func fromLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], as: T.Type) -> [T] {
        let n = bytes.count / MemoryLayout<T>.size
        var out = [T](repeating: 0, count: n)
        out.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<dst.count])) } }
        return out.map { T(littleEndian: $0) }
    }
}

/// Reads and writes the safetensors format (huggingface/safetensors, docs "Format"): an 8-byte
/// little-endian header length N, N bytes of JSON describing each tensor's dtype, shape and byte
/// range in the data buffer (plus an optional string map `__metadata__`), then the buffer.
///
/// Writing is atomic (readers never see half a file). Reading checks every rule the reference
/// implementation checks — header bounds, dtypes, sizes, and that the tensors tile the buffer exactly
/// — and names the file and the fault, so a damaged checkpoint ends in an error, not in wrong weights.
public enum SafeTensors {
    /// The reference reader refuses headers above 100 MB (`MAX_HEADER_SIZE` in safetensors' Rust crate).
    public static let maxHeaderBytes = 100_000_000

    public static func write(_ tensors: [String: SafeTensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata, path: path), to: path)
    }

    public static func read(_ path: String) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        guard let data = AtomicFile.read(path) else { throw AtomicFile.ioError(path: path, "cannot read safetensors file") }
        return try decode([UInt8](data), path: path)
    }

    // MARK: Writing

    static func encode(_ tensors: [String: SafeTensor], metadata: [String: String], path: String) throws -> Data {
        // Wider elements first, then by name (as the reference writer orders them), so every tensor
        // starts at a multiple of its element size and a reader may map it in place.
        let names = tensors.keys.sorted { a, b in
            let (sa, sb) = (tensors[a]!.dtype.size, tensors[b]!.dtype.size)
            return sa != sb ? sa > sb : a < b
        }
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            let t = tensors[name]!
            guard name != "__metadata__" else { throw TesseraError(.invalidConfig, path: path, "\"__metadata__\" cannot name a tensor") }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.elementCount * t.dtype.size == t.bytes.count else {
                throw TesseraError(.invalidConfig, path: path, "tensor \"\(name)\": \(t.bytes.count) bytes do not fit shape \(t.shape) of \(t.dtype.rawValue)")
            }
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        // Pad with spaces (JSON whitespace) so the buffer starts 8-byte aligned, as the reference writer does.
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for name in names { out.append(contentsOf: tensors[name]!.bytes) }
        return out
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    // MARK: Reading

    static func decode(_ file: [UInt8], path: String) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        func corrupt(_ message: String) -> TesseraError {
            TesseraError(.corrupt, path: path, "not a valid safetensors file: " + message)
        }
        guard file.count >= 8 else { throw corrupt("\(file.count) bytes, shorter than the 8-byte header length") }
        let n = file[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(maxHeaderBytes) else { throw corrupt("header length \(n) exceeds the \(maxHeaderBytes)-byte limit") }
        guard n <= UInt64(file.count - 8) else { throw corrupt("header length \(n) runs past the end of the \(file.count)-byte file") }
        let headerEnd = 8 + Int(n)
        let header = Array(file[8..<headerEnd])
        guard header.first == UInt8(ascii: "{") else { throw corrupt("header does not start with a JSON object") }
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: Data(header)) } catch { throw corrupt("header is not valid JSON") }
        guard case .object(let entries) = root else { throw corrupt("header JSON is not an object") }

        var metadata: [String: String] = [:]
        var tensors: [String: SafeTensor] = [:]
        var spans: [(name: String, begin: Int, end: Int)] = []
        let bufferSize = file.count - headerEnd
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let m) = value else { throw corrupt("__metadata__ is not an object") }
                for (k, v) in m {
                    guard case .string(let s) = v else { throw corrupt("__metadata__ value for \"\(k)\" is not a string") }
                    metadata[k] = s
                }
                continue
            }
            // Unknown keys inside an entry are ignored, as the reference reader's serde struct does.
            guard case .object(let info) = value else { throw corrupt("entry for tensor \"\(name)\" is not an object") }
            guard case .string(let dt)? = info["dtype"] else { throw corrupt("tensor \"\(name)\" has no dtype") }
            guard let dtype = SafeTensor.DType(rawValue: dt) else { throw corrupt("tensor \"\(name)\" has unknown dtype \"\(dt)\"") }
            guard case .array(let dims)? = info["shape"] else { throw corrupt("tensor \"\(name)\" has no shape") }
            let shape = try dims.map { d -> Int in
                guard let v = integer(d) else { throw corrupt("tensor \"\(name)\" has a shape entry that is not a non-negative integer") }
                return v
            }
            guard case .array(let offs)? = info["data_offsets"], offs.count == 2, let begin = integer(offs[0]), let end = integer(offs[1]) else {
                throw corrupt("tensor \"\(name)\" needs data_offsets [begin, end] of non-negative integers")
            }
            guard begin <= end else { throw corrupt("tensor \"\(name)\" has data_offsets [\(begin), \(end)] with begin after end") }
            guard end <= bufferSize else { throw corrupt("tensor \"\(name)\" has data_offsets [\(begin), \(end)] outside the \(bufferSize)-byte data buffer") }
            var expected = dtype.size
            for d in shape {
                let (p, overflow) = expected.multipliedReportingOverflow(by: d)
                guard !overflow else { throw corrupt("tensor \"\(name)\" has shape \(shape) too large to address") }
                expected = p
            }
            guard expected == end - begin else {
                throw corrupt("tensor \"\(name)\": shape \(shape) of \(dt) needs \(expected) bytes but data_offsets span \(end - begin)")
            }
            spans.append((name, begin, end))
            tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: Array(file[(headerEnd + begin)..<(headerEnd + end)]))
        }
        // The format requires the tensors to cover the buffer exactly: no overlap (one byte, two
        // tensors), no gap (hidden data), nothing after the last tensor.
        spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        for s in spans {
            if s.begin < cursor { throw corrupt("tensor \"\(s.name)\" at [\(s.begin), \(s.end)] overlaps the tensor before it (which ends at \(cursor))") }
            if s.begin > cursor { throw corrupt("gap of \(s.begin - cursor) bytes before tensor \"\(s.name)\" at offset \(cursor)") }
            cursor = s.end
        }
        guard cursor == bufferSize else { throw corrupt("\(bufferSize - cursor) trailing bytes after the last tensor") }
        return (tensors, metadata)
    }

    /// A JSON number that is an exact non-negative integer (JSONValue holds numbers as Double, exact to 2^53).
    private static func integer(_ v: JSONValue) -> Int? {
        guard case .number(let d) = v, d >= 0, d <= 9_007_199_254_740_992, d == d.rounded() else { return nil }
        return Int(d)
    }
}
