import CDigest
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streaming SHA-256 (FIPS 180-4), computed by the system's libcrypto.
///
/// Feeding the same bytes in any split across `update` calls yields the same digest.
/// After `finalize()` the value is reset, so it can be reused for a new message.
public struct SHA256: Sendable {
    /// Failure to read a file being hashed; the description names the path and the OS reason.
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var operation: String
        public var code: Int32

        public var description: String {
            "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    private var context = tsr_sha256_ctx()

    public init() {
        tsr_sha256_init(&context)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        tsr_sha256_update(&context, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The 32-byte digest; the value is reset afterwards for a new message.
    public mutating func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        tsr_sha256_final(&context, &digest)
        tsr_sha256_init(&context)
        return digest
    }

    public static func hex(_ digest: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digest.count * 2)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func hexDigest(of bytes: [UInt8]) -> String {
        hex(digest(bytes))
    }

    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Hashes a file without loading it whole; reads 1 MiB at a time.
    public static func hexDigest(ofFileAt path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ReadError(path: path, operation: "open", code: errno) }
        defer { close(fd) }

        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }

        var hasher = SHA256()
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(path: path, operation: "read", code: errno)
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(start: buffer, count: n))
        }
        return hex(hasher.finalize())
    }
}
