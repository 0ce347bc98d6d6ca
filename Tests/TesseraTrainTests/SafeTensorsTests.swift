import XCTest
import TesseraCore
import TesseraTestSupport
@testable import TesseraTrain

final class SafeTensorsTests: XCTestCase {
    private func sample() -> [String: SafeTensor] {
        [
            "backbone.conv.weight": SafeTensor(floats: [1.5, -2, 0, 3.25, 1e-8, -0.0], shape: [2, 3]),
            "step": SafeTensor(int64s: [42], shape: []),
            "labels": SafeTensor(int64s: [-1, 0, Int64.max], shape: [3]),
            "mask": SafeTensor(dtype: .bool, shape: [3], bytes: [1, 0, 1]),
            "half": SafeTensor(dtype: .f16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0]),   // 1.0, -2.0
            "empty": SafeTensor(floats: [], shape: [0, 4]),
        ]
    }

    func testRoundTrip() throws {
        let path = Fixtures.tempDir(self) + "/model.safetensors"
        let meta = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t é"]
        try SafeTensors.write(sample(), metadata: meta, to: path)
        let (tensors, metadata) = try SafeTensors.read(path)
        XCTAssertEqual(tensors, sample())
        XCTAssertEqual(metadata, meta)
        XCTAssertEqual(try tensors["backbone.conv.weight"]!.floats, [1.5, -2, 0, 3.25, 1e-8, -0.0])
        XCTAssertEqual(try tensors["labels"]!.int64s, [-1, 0, Int64.max])
        XCTAssertThrowsError(try tensors["labels"]!.floats)
        // Header length is a multiple of 8 and every tensor starts aligned to its element size.
        let bytes = [UInt8](AtomicFile.read(path)!)
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    func testWriterRefusesBytesThatDoNotFitTheShape() {
        let path = Fixtures.tempDir(self) + "/bad.safetensors"
        XCTAssertThrowsError(try SafeTensors.write(["x": SafeTensor(dtype: .f32, shape: [3], bytes: [0, 0, 0, 0])], to: path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    /// A file with a hand-written header (padded as the reference writer pads) and data buffer.
    private func file(_ header: String, data: [UInt8], claimedLength: UInt64? = nil) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        let n = claimedLength ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) } + h + data
    }

    func testEachCorruptionIsAnErrorNamingTheFileAndTheFault() throws {
        let dir = Fixtures.tempDir(self)
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let cases: [(String, [UInt8], String)] = [
            ("short", [1, 2, 3, 4, 5], "shorter than the 8-byte"),
            ("header-past-end", file(ok, data: [UInt8](repeating: 0, count: 8), claimedLength: 1000), "past the end"),
            ("header-too-large", file(ok, data: [UInt8](repeating: 0, count: 8), claimedLength: 200_000_000), "limit"),
            ("not-object", file("[1,2]", data: []), "JSON object"),
            ("bad-json", file(#"{"a":"#, data: []), "not valid JSON"),
            ("scalar-entry", file(#"{"a":3}"#, data: []), "is not an object"),
            ("unknown-dtype", file(#"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 16)), "unknown dtype \"F128\""),
            ("size-mismatch", file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)), "needs 12 bytes"),
            ("negative-shape", file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)), "shape entry"),
            ("outside-buffer", file(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8)), "outside the 8-byte data buffer"),
            ("reversed-offsets", file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: [UInt8](repeating: 0, count: 8)), "begin after end"),
            ("overlap", file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                             data: [UInt8](repeating: 0, count: 12)), "overlaps"),
            ("gap", file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                         data: [UInt8](repeating: 0, count: 12)), "gap of 4 bytes"),
            ("trailing", file(ok, data: [UInt8](repeating: 0, count: 12)), "4 trailing bytes"),
            ("metadata-not-string", file(#"{"__metadata__":{"epoch":3}}"#, data: []), "not a string"),
        ]
        for (name, bytes, fault) in cases {
            let path = dir + "/\(name).safetensors"
            try AtomicFile.write(Data(bytes), to: path)
            XCTAssertThrowsError(try SafeTensors.read(path), name) { error in
                guard let e = error as? TesseraError else { return XCTFail("\(name): \(error) is not a TesseraError") }
                XCTAssertEqual(e.kind, .corrupt, name)
                XCTAssertTrue(e.description.contains(path), "\(name): \(e.description)")
                XCTAssertTrue(e.description.contains(fault), "\(name): expected “\(fault)” in \(e.description)")
            }
        }
        // The well-formed variant of the same header reads.
        let good = dir + "/good.safetensors"
        try AtomicFile.write(Data(file(ok, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])), to: good)
        XCTAssertEqual(try SafeTensors.read(good).tensors["a"]?.floats, [1, 2])
        XCTAssertThrowsError(try SafeTensors.read(dir + "/missing.safetensors")) { XCTAssertTrue("\($0)".contains("missing.safetensors")) }
    }

    // MARK: Python interop (safetensors' own reader and writer)

    /// The venv with torch the training scripts use, else python3. scripts/test installs safetensors
    /// and numpy; once a python is found, a missing package fails the test instead of skipping it.
    private func python() throws -> String {
        let venv = FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/tessera-torch-venv/bin/python"
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        let which = try Fixtures.run("/bin/sh", ["-c", "command -v python3"])
        let path = which.out.trimmingCharacters(in: .whitespacesAndNewlines)
        if which.status != 0 || path.isEmpty { throw XCTSkip("python3 not available") }
        return path
    }

    func testPythonSafetensorsReadsWhatSwiftWrites() throws {
        let path = Fixtures.tempDir(self) + "/swift.safetensors"
        try SafeTensors.write(sample(), metadata: ["format": "pt", "epoch": "3"], to: path)
        let script = """
        import sys, numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        p = sys.argv[1]
        t = load_file(p)
        assert sorted(t) == sorted(["backbone.conv.weight", "step", "labels", "mask", "half", "empty"]), sorted(t)
        w = t["backbone.conv.weight"]
        assert w.dtype == np.float32 and w.shape == (2, 3), (w.dtype, w.shape)
        assert np.array_equal(w, np.array([[1.5, -2, 0], [3.25, 1e-8, -0.0]], dtype=np.float32))
        assert t["step"].dtype == np.int64 and t["step"].shape == () and int(t["step"]) == 42
        assert t["labels"].tolist() == [-1, 0, 2**63 - 1]
        assert t["mask"].dtype == np.bool_ and t["mask"].tolist() == [True, False, True]
        assert t["half"].dtype == np.float16 and t["half"].tolist() == [1.0, -2.0]
        assert t["empty"].shape == (0, 4)
        with safe_open(p, "np") as f:
            assert f.metadata() == {"format": "pt", "epoch": "3"}, f.metadata()
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            from safetensors.torch import load_file as load_torch
            tt = load_torch(p)
            for k, v in t.items():
                assert np.array_equal(tt[k].numpy(), v), k
            print("torch checked")
        print("ok")
        """
        let r = try Fixtures.run(try python(), ["-c", script, path])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("ok"), r.out + r.err)
    }

    func testSwiftReadsWhatPythonSafetensorsWrites() throws {
        let path = Fixtures.tempDir(self) + "/python.safetensors"
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({
            "fc.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 4 - 1,
            "fc.bias": np.array([0.5, -0.25, 1e-3], dtype=np.float32),
            "bn.num_batches_tracked": np.array(7, dtype=np.int64),
            "ids": np.array([[1, -2], [3, 2**40]], dtype=np.int64),
            "d": np.array([np.pi], dtype=np.float64),
            "u": np.array([0, 255, 7], dtype=np.uint8),
        }, sys.argv[1], metadata={"format": "np", "run": "eval"})
        """
        let r = try Fixtures.run(try python(), ["-c", script, path])
        XCTAssertEqual(r.status, 0, r.err)
        let (t, meta) = try SafeTensors.read(path)
        XCTAssertEqual(meta, ["format": "np", "run": "eval"])
        XCTAssertEqual(t["fc.weight"]?.shape, [3, 4])
        XCTAssertEqual(try t["fc.weight"]!.floats, (0..<12).map { Float($0) / 4 - 1 })
        XCTAssertEqual(try t["fc.bias"]!.floats, [0.5, -0.25, 1e-3])
        XCTAssertEqual(t["bn.num_batches_tracked"]?.shape, [])
        XCTAssertEqual(try t["bn.num_batches_tracked"]!.int64s, [7])
        XCTAssertEqual(try t["ids"]!.int64s, [1, -2, 3, 1 << 40])
        XCTAssertEqual(t["d"]?.dtype, .f64)
        XCTAssertEqual(t["d"]?.bytes, withUnsafeBytes(of: Double.pi.bitPattern.littleEndian) { [UInt8]($0) })
        XCTAssertEqual(t["u"]?.dtype, .u8)
        XCTAssertEqual(t["u"]?.bytes, [0, 255, 7])
    }
}
