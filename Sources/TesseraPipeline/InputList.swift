import Foundation
import TesseraCore

/// A slide list file (`tessera tile --input-list FILE`): one path per line, for collections too
/// long for a command line. Blank lines and lines starting with `#` are ignored; surrounding
/// spaces are trimmed; order is kept (it is the collection's order).
public enum InputList {
    public static func read(path: String) throws -> [String] {
        guard let data = AtomicFile.read(path, streams: true) else {
            throw TesseraError(.unreadable, path: path, "cannot read the input list")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
}
