import Foundation
import TesseraCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a shard-related file. The description names the file and carries the
/// OS reason text (e.g. "No space left on device") so disk-full and file-size-limit failures are obvious.
public struct ShardIOError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    public var code: Int32

    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    /// A full disk, a quota or a file-size limit (RLIMIT_FSIZE fails writes with EFBIG).
    public var isNoSpace: Bool { code == ENOSPC || code == EFBIG || code == EDQUOT }

    public var description: String {
        isNoSpace
            ? "\(operation) failed for \(path): no space left for the output (\(String(cString: strerror(code))), errno \(code))"
            : "\(operation) failed for \(path): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// The error a user sees: "no space" says what to do; anything else is an I/O error on the file.
    public var userError: TesseraError {
        isNoSpace
            ? TesseraError(.noSpace, path: path, "\(operation) failed: no space left for the output (\(String(cString: strerror(code))))",
                           hint: "free disk space or raise the file-size limit, then rerun the same command: it resumes or restarts without duplicates")
            : TesseraError(.io, path: path, "\(operation) failed: \(String(cString: strerror(code)))")
    }
}

/// Minimal POSIX ustar reading and writing.
///
/// Headers written here are deterministic (mode 0644, uid/gid 0, empty user/group names, mtime 0,
/// regular-file type) so identical input gives byte-identical archives that GNU tar and Python's
/// `tarfile` read without warnings. The reader accepts only regular files and directories with
/// safe relative names, and never trusts sizes beyond the real file length.
public enum TarFormat {
    public static let blockSize = 512
    /// Largest size an 11-digit octal size field can hold (8 GiB - 1).
    public static let maxMemberSize = 0o77777777777

    /// A header could not be produced for the requested member.
    public struct HeaderError: Error, CustomStringConvertible, Sendable {
        public var name: String
        public var reason: String
        public var description: String { "cannot write tar header for \"\(name)\": \(reason)" }
    }

    /// The archive is damaged or unsafe; names the file and the byte offset of the offending header.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var offset: Int
        public var reason: String
        public var description: String { "\(path): at byte offset \(offset): \(reason)" }
    }

    public struct Member: Sendable, Equatable {
        public var name: String
        /// Offset of the member's first data byte in the archive (its header starts 512 bytes earlier).
        public var dataOffset: Int
        public var size: Int
        /// ustar type flag byte: ASCII '0' (or NUL) for regular files, '5' for directories.
        public var typeflag: UInt8

        public init(name: String, dataOffset: Int, size: Int, typeflag: UInt8 = UInt8(ascii: "0")) {
            self.name = name
            self.dataOffset = dataOffset
            self.size = size
            self.typeflag = typeflag
        }
    }

    /// True when extracting `name` cannot escape the destination directory.
    public static func isSafeMemberName(_ name: String) -> Bool {
        if name.isEmpty || name.hasPrefix("/") || name.utf8.contains(0) { return false }
        return !name.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    /// Bytes of zero padding needed after `size` data bytes to reach a block boundary.
    public static func paddingLength(forSize size: Int) -> Int {
        (blockSize - size % blockSize) % blockSize
    }

    public static func header(name: String, size: Int) throws -> [UInt8] {
        guard isSafeMemberName(name) else {
            throw HeaderError(name: name, reason: "name is empty, absolute, contains NUL or a '..' component")
        }
        guard !name.hasSuffix("/") else {
            throw HeaderError(name: name, reason: "a trailing '/' would make it a directory name")
        }
        guard size >= 0, size <= maxMemberSize else {
            throw HeaderError(name: name, reason: "size \(size) is outside 0...\(maxMemberSize)")
        }
        let (namePart, prefixPart) = try splitName(name)

        var h = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: some Sequence<UInt8>, at offset: Int) {
            var i = offset
            for b in bytes { h[i] = b; i += 1 }
        }
        put(namePart, at: 0)
        put("0000644\0".utf8, at: 100)        // mode
        put("0000000\0".utf8, at: 108)        // uid
        put("0000000\0".utf8, at: 116)        // gid
        put(octal(size, digits: 11) + [0], at: 124)
        put("00000000000\0".utf8, at: 136)    // mtime: fixed so output is reproducible
        put("        ".utf8, at: 148)         // checksum is computed with this field as spaces
        h[156] = UInt8(ascii: "0")
        put("ustar\0".utf8, at: 257)
        put("00".utf8, at: 263)
        put("0000000\0".utf8, at: 329)        // devmajor
        put("0000000\0".utf8, at: 337)        // devminor
        put(prefixPart, at: 345)

        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(sum, digits: 6) + [0], at: 148) // byte 155 stays a space, as GNU tar writes it
        return h
    }

    /// Fits a name into ustar's 100-byte name plus 155-byte prefix, splitting at a '/'.
    private static func splitName(_ name: String) throws -> (name: [UInt8], prefix: [UInt8]) {
        let bytes = Array(name.utf8)
        if bytes.count <= 100 { return (bytes, []) }
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "/") {
            if i > 155 { break }
            let rest = bytes.count - i - 1
            if rest >= 1 && rest <= 100 {
                return (Array(bytes[(i + 1)...]), Array(bytes[..<i]))
            }
        }
        throw HeaderError(name: name, reason: "name is \(bytes.count) bytes and cannot be split into ustar prefix (155) + name (100)")
    }

    private static func octal(_ value: Int, digits: Int) -> [UInt8] {
        var out = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
        var v = value
        var i = digits - 1
        while v > 0 && i >= 0 {
            out[i] = UInt8(ascii: "0") + UInt8(v & 7)
            v >>= 3
            i -= 1
        }
        return out
    }

    /// Parses an octal field (NUL/space terminated) or a GNU base-256 field; nil when malformed.
    static func parseNumber(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            // Base-256: only non-negative values that fit in Int are meaningful for sizes.
            if first == 0xff { return nil }
            var value = Int(first & 0x7f)
            for b in field.dropFirst() {
                if value > (Int.max >> 8) { return nil }
                value = (value << 8) | Int(b)
            }
            return value
        }
        var i = field.startIndex
        while i < field.endIndex && (field[i] == UInt8(ascii: " ") || field[i] == 0) { i += 1 }
        var value = 0
        var sawDigit = false
        while i < field.endIndex, field[i] >= UInt8(ascii: "0"), field[i] <= UInt8(ascii: "7") {
            if value > (Int.max >> 3) { return nil }
            value = value * 8 + Int(field[i] - UInt8(ascii: "0"))
            sawDigit = true
            i += 1
        }
        while i < field.endIndex {
            guard field[i] == 0 || field[i] == UInt8(ascii: " ") else { return nil }
            i += 1
        }
        return sawDigit ? value : 0
    }

    private static func cString(_ field: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if let nul = field.firstIndex(of: 0) { return field[field.startIndex..<nul] }
        return field
    }

    /// Parses a whole tar file's members. Throws `FormatError` on bad checksum, truncation, unsupported
    /// member types, undecodable or unsafe names ('..' component or leading '/'), and `ShardIOError`
    /// when the file cannot be read.
    public static func members(ofFileAt url: URL) throws -> [Member] {
        let path = url.path
        let file = try ReadOnlyFile(path: path)
        defer { file.close() }
        let fileSize = file.size

        func fail(_ offset: Int, _ reason: String) -> FormatError {
            FormatError(path: path, offset: offset, reason: reason)
        }

        var result: [Member] = []
        var block = [UInt8](repeating: 0, count: blockSize)
        var offset = 0
        while true {
            if offset == fileSize {
                throw fail(offset, "archive is truncated: ends without the end-of-archive marker (two zero blocks)")
            }
            if fileSize - offset < blockSize {
                throw fail(offset, "archive is truncated: only \(fileSize - offset) bytes remain where a 512-byte header is expected")
            }
            try file.read(into: &block, at: offset)

            if block.allSatisfy({ $0 == 0 }) {
                if fileSize - offset < 2 * blockSize {
                    throw fail(offset, "archive is truncated: end-of-archive marker has only one zero block")
                }
                try file.read(into: &block, at: offset + blockSize)
                if !block.allSatisfy({ $0 == 0 }) {
                    throw fail(offset, "lone zero block followed by more data")
                }
                return result
            }

            guard let stored = parseNumber(block[148..<156]) else {
                throw fail(offset, "header checksum field is not a number")
            }
            var unsignedSum = 0, signedSum = 0
            for (i, b) in block.enumerated() {
                let v = (148..<156).contains(i) ? UInt8(ascii: " ") : b
                unsignedSum += Int(v)
                signedSum += Int(Int8(bitPattern: v))
            }
            // Some historic writers summed signed chars; both are accepted as tar itself does.
            guard stored == unsignedSum || stored == signedSum else {
                throw fail(offset, "header checksum mismatch (stored \(stored), computed \(unsignedSum))")
            }

            let magic = Array(block[257..<263])
            let isPOSIXUstar = magic == Array("ustar\0".utf8)
            var nameBytes = Array(cString(block[0..<100]))
            if isPOSIXUstar {
                let prefix = cString(block[345..<500])
                if !prefix.isEmpty { nameBytes = Array(prefix) + [UInt8(ascii: "/")] + nameBytes }
            }
            guard let name = String(bytes: nameBytes, encoding: .utf8) else {
                throw fail(offset, "member name is not valid UTF-8")
            }
            guard isSafeMemberName(name) else {
                throw fail(offset, "unsafe member name \"\(name)\" (empty, absolute, or containing a '..' component)")
            }

            let typeflag = block[156]
            switch typeflag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"), UInt8(ascii: "5"):
                break
            default:
                let shown = (32..<127).contains(typeflag) ? "'\(Character(UnicodeScalar(typeflag)))'" : "0x\(String(typeflag, radix: 16))"
                throw fail(offset, "member \"\(name)\" has unsupported type \(shown) (only regular files and directories are accepted)")
            }

            guard let size = parseNumber(block[124..<136]) else {
                throw fail(offset, "member \"\(name)\" has a malformed size field")
            }
            let dataOffset = offset + blockSize
            let available = fileSize - dataOffset
            guard size <= available else {
                throw fail(offset, "archive is truncated: member \"\(name)\" declares \(size) data bytes but only \(available) remain")
            }
            let padded = size + paddingLength(forSize: size)
            guard padded <= available else {
                throw fail(offset, "archive is truncated: padding after member \"\(name)\" is incomplete")
            }
            let normalizedType = typeflag == 0 || typeflag == UInt8(ascii: "7") ? UInt8(ascii: "0") : typeflag
            result.append(Member(name: name, dataOffset: dataOffset, size: size, typeflag: normalizedType))
            offset = dataOffset + padded
        }
    }
}

/// `close` is shadowed inside types that define their own `close()`.
func posixClose(_ fd: Int32) {
    _ = close(fd)
}

/// Positional reads on a file descriptor; system-call failures become `ShardIOError`.
struct ReadOnlyFile {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ShardIOError(path: path, operation: "open", code: errno) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let code = errno
            posixClose(fd)
            throw ShardIOError(path: path, operation: "stat", code: code)
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    func close() {
        posixClose(fd)
    }

    /// Fills exactly `count` bytes; a file shorter than expected is a `FormatError`, not a short read.
    func read(into pointer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pread(fd, pointer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ShardIOError(path: path, operation: "read", code: errno)
            }
            if n == 0 {
                throw TarFormat.FormatError(path: path, offset: offset + done, reason: "unexpected end of file")
            }
            done += n
        }
    }

    func read(into buffer: inout [UInt8], at offset: Int) throws {
        let count = buffer.count
        try buffer.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: count, at: offset) }
    }
}
