import Foundation
import TesseraCore
import TesseraShards

/// Finds the slides of a collection: explicit files as given, folders walked recursively for
/// known slide and image extensions, in a stable order, each with an id that is unique and safe
/// as a file name and WebDataset key.
public enum SlideDiscovery {
    public static let extensions: Set<String> = ["svs", "ndpi", "mrxs", "scn", "bif", "vms", "vmu", "svslide",
                                                  "tif", "tiff", "ptif", "png", "jpg", "jpeg", "jp2", "webp", "dcm"]

    public static func find(_ inputs: [String]) throws -> [InputFile] {
        var found: [(id: String, path: String, bytes: Int)] = []
        for input in inputs {
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: input, isDirectory: &isDir)
            if exists && isDir.boolValue && !input.lowercased().hasSuffix(".mrxs") {
                var visited = Set<FileIdentity>()
                var files: [String] = []
                walk(input, relative: "", visited: &visited, into: &files)
                for rel in files.sorted() {
                    let full = (input as NSString).appendingPathComponent(rel)
                    found.append((id(forRelativePath: rel), full, size(full)))
                }
            } else {
                // Explicit files are kept even when missing or odd: they fail visibly in the manifest.
                found.append((id(forRelativePath: (input as NSString).lastPathComponent), input, size(input)))
            }
        }
        // Same-named slides in different folders get _2, _3… in path order, never an id already taken.
        var taken = Set<String>()
        return found.map { f in
            var id = f.id
            var n = 1
            while taken.contains(id) { n += 1; id = "\(f.id)_\(n)" }
            taken.insert(id)
            return InputFile(id: id, path: f.path, bytes: f.bytes)
        }
    }

    private static func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// A directory by device and inode: unlike a path, the same however many links lead to it.
    struct FileIdentity: Hashable { var device: UInt64, inode: UInt64 }

    /// Recursive walk that follows symlinks but never enters a directory twice (symlink loops).
    /// Directories are known by device and inode: Foundation's `resolvingSymlinksInPath` did not
    /// resolve a relative link such as `sub/up -> ..`, and the walk went round it until paths grew
    /// too long, listing the collection once per lap.
    private static func walk(_ root: String, relative: String, visited: inout Set<FileIdentity>, into files: inout [String]) {
        let dir = relative.isEmpty ? root : (root as NSString).appendingPathComponent(relative)
        var st = stat()
        guard stat(dir, &st) == 0 else { return }
        guard visited.insert(FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))).inserted else { return }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let rel = relative.isEmpty ? name : relative + "/" + name
            let full = (dir as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir) else {
                // Dangling link or unreadable entry with a slide extension: keep it, it will fail visibly.
                if extensions.contains((name as NSString).pathExtension.lowercased()) { files.append(rel) }
                continue
            }
            if isDir.boolValue {
                let before = files.count
                walk(root, relative: rel, visited: &visited, into: &files)
                // A folder named like a slide ("x.svs/") holding no slides: a failed copy, most likely.
                // Listed, it fails visibly ("is a directory, not a slide") instead of vanishing.
                if files.count == before && extensions.contains((name as NSString).pathExtension.lowercased()) { files.append(rel) }
            } else if extensions.contains((name as NSString).pathExtension.lowercased()) {
                files.append(rel)
            }
        }
    }

    /// "a/b/CMU-1.svs" → "a__b__CMU-1": no dots (WebDataset splits keys at the first dot), no slashes,
    /// only [A-Za-z0-9_-]; other bytes become "_".
    public static func id(forRelativePath rel: String) -> String {
        let noExt = (rel as NSString).deletingPathExtension
        var out = ""
        for part in noExt.split(separator: "/", omittingEmptySubsequences: true) where part != ".." && part != "." {
            if !out.isEmpty { out += "__" }
            for u in part.unicodeScalars {
                let ok = (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9") || u == "-" || u == "_"
                out.unicodeScalars.append(ok ? u : "_")
            }
        }
        return out.isEmpty ? "slide" : out
    }
}
