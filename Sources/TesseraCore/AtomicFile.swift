import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// File helpers: writes that readers see either whole or not at all (never torn), whole-file reads,
/// and errno turned into errors that name the file.
public enum AtomicFile {
    /// Writes `data` to `path` through a temporary file, fsync and rename.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ioError(path: tmp, "cannot create") }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { ok = false; break }
                off += n
            }
        }
        if !ok { let e = ioError(path: path, "cannot write"); close(fd); unlink(tmp); throw e }
        if fsync(fd) != 0 { let e = ioError(path: path, "cannot flush"); close(fd); unlink(tmp); throw e }
        close(fd)
        guard rename(tmp, path) == 0 else { let e = ioError(path: path, "cannot rename into place"); unlink(tmp); throw e }
    }

    /// The whole regular file, or nil when it cannot be read or holds more than `maxBytes` (checked
    /// before reading). With `streams`, a pipe or character device (`<(find …)`, /dev/stdin) is read
    /// to its end too, up to `maxBytes`. (FileManager.contents leaked its buffer when the caller
    /// threw afterwards, and Foundation's readers leak 4 KB per empty file, as the fuzzer found.)
    public static func read(_ path: String, maxBytes: Int = Int.max, streams: Bool = false) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let kind = st.st_mode & S_IFMT
        if kind != S_IFREG {
            guard streams, kind == S_IFIFO || kind == S_IFCHR || kind == S_IFSOCK else { return nil }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { return nil }
                if n == 0 { return Data(bytes) }
                bytes += chunk[0..<n]
                if bytes.count > maxBytes { return nil }
            }
        }
        guard Int(st.st_size) <= maxBytes else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return Data(bytes)
    }

    /// A `TesseraError` for the current `errno`, saying "no space" plainly when that is the cause.
    public static func ioError(path: String, _ what: String) -> TesseraError {
        let code = errno
        let reason = String(cString: strerror(code))
        if code == ENOSPC || code == EFBIG || code == EDQUOT {
            return TesseraError(.noSpace, path: path, "\(what): no space left (\(reason))", hint: "free disk space or choose another output directory, then rerun the same command to resume")
        }
        return TesseraError(.io, path: path, "\(what): \(reason)")
    }
}

/// An exclusive lock on a directory, held through a lock file with flock(2): released by the
/// kernel when the process dies, so a crashed run never leaves a stale lock.
public final class DirectoryLock {
    private let fd: Int32
    public init(directory: String, purpose: String) throws {
        let path = directory + "/.tessera.lock"
        fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw AtomicFile.ioError(path: path, "cannot create lock file") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw TesseraError(.busy, path: directory, "another tessera process is \(purpose) into this directory",
                               hint: "wait for it to finish or choose another output directory")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { Glibc.write(fd, $0, strlen($0)) }
    }
    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
