import Foundation
@preconcurrency import XCTest

/// Paths to the real data bundled in the repository (data/PROVENANCE.md).
public enum Fixtures {
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        fatalError("repository root not found")
    }()
    public static let svs = root + "/data/sample/CMU-1-Small-Region.svs"
    /// The `tessera` executable built with the tests: the one beside the running test bundle (so a
    /// sanitizer build in its own build path tests its own binary), else `.build/debug/tessera`.
    public static let binary: String = {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let beside = (exe as NSString).deletingLastPathComponent + "/tessera"
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        }
        return root + "/.build/debug/tessera"
    }()
    /// Set by scripts/sanitize: ThreadSanitizer's runtime dies with SIGBUS before `main` under a small
    /// file-size limit (RLIMIT_FSIZE), so the full-disk tests cannot run in that build.
    public static let skipFileSizeLimitTests = ProcessInfo.processInfo.environment["TESSERA_SANITIZER"] == "thread"
    public static func fixture(_ name: String) -> String { root + "/data/fixtures/" + name }

    /// A fresh temporary directory, removed when the test ends.
    public static func tempDir(_ test: XCTestCase) -> String {
        let dir = NSTemporaryDirectory() + "tessera-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Runs a command-line tool and returns its exit status and output.
    @discardableResult
    public static func run(_ tool: String, _ args: [String], cwd: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool.hasPrefix("/") ? tool : "/usr/bin/env")
        p.arguments = tool.hasPrefix("/") ? args : [tool] + args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// A derived pyramidal JPEG-tiled TIFF of the sample slide (libvips' `tiffsave`), made once per test.
    public static func pyramid(_ test: XCTestCase, tile: Int = 256) throws -> String {
        let path = tempDir(test) + "/cmu-pyramid.tif"
        let r = try run("vips", ["tiffsave", svs, path, "--tile", "--pyramid", "--compression", "jpeg",
                                 "--Q", "90", "--tile-width", "\(tile)", "--tile-height", "\(tile)"])
        XCTAssertEqual(r.status, 0, r.err)
        return path
    }
}
