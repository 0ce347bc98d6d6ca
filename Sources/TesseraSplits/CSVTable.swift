import Foundation
import TesseraCore

/// A CSV table (RFC 4180 quoting) with a header row, optionally preceded by `#` comment lines.
/// Reading and writing round-trip: what `render()` writes, `parse` reads back unchanged.
public struct CSVTable: Sendable, Equatable {
    public var comments: [String]
    public var header: [String]
    public var rows: [[String]]

    public init(comments: [String] = [], header: [String], rows: [[String]] = []) {
        self.comments = comments
        self.header = header
        self.rows = rows
    }

    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

    public static func read(path: String) throws -> CSVTable {
        guard let data = AtomicFile.read(path) else {
            throw TesseraError(.unreadable, path: path, "cannot read the file", hint: "check the path")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TesseraError(.corrupt, path: path, "not UTF-8 text", hint: "save the table as UTF-8 CSV")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String? = nil) throws -> CSVTable {
        var comments: [String] = []
        var records: [[String]] = []
        var field = "", record: [String] = []
        var inQuotes = false, atLineStart = true, inComment = false, fieldWasQuoted = false
        var line = 1
        var chars = Substring(text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text).unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRecord() {
            record.append(field)
            if !(record.count == 1 && record[0].isEmpty && !fieldWasQuoted) { records.append(record) }
            record = []; field = ""; fieldWasQuoted = false
        }
        while let c = pending ?? chars.next() {
            pending = nil
            if inComment {
                if c == "\n" { inComment = false; atLineStart = true; line += 1 } else if c != "\r" { field.unicodeScalars.append(c) }
                if !inComment { comments.append(field.trimmingCharacters(in: .whitespaces)); field = "" }
                continue
            }
            if atLineStart && records.isEmpty && record.isEmpty && field.isEmpty && c == "#" {
                inComment = true
                continue
            }
            atLineStart = false
            if inQuotes {
                if c == "\"" {
                    let n = chars.next()
                    if n == "\"" { field.append("\"") } else { inQuotes = false; pending = n }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                guard field.isEmpty else {
                    throw TesseraError(.corrupt, path: path, "line \(line): a quote inside an unquoted field", hint: "quote the whole field and double inner quotes")
                }
                inQuotes = true
                fieldWasQuoted = true
            case ",":
                record.append(field); field = ""; fieldWasQuoted = false
            case "\r":
                continue
            case "\n":
                endRecord()
                line += 1
                atLineStart = true
            default:
                field.unicodeScalars.append(c)
            }
        }
        if inComment { comments.append(field.trimmingCharacters(in: .whitespaces)); field = "" }
        if inQuotes { throw TesseraError(.corrupt, path: path, "the file ends inside a quoted field", hint: "close the quote") }
        if !field.isEmpty || !record.isEmpty { endRecord() }
        guard let header = records.first else {
            throw TesseraError(.invalidConfig, path: path, "the table is empty", hint: "the first line must be a header row")
        }
        let names = header.map { $0.trimmingCharacters(in: .whitespaces) }
        var rows: [[String]] = []
        for (i, r) in records.dropFirst().enumerated() {
            guard r.count == names.count else {
                throw TesseraError(.corrupt, path: path, "row \(i + 2) has \(r.count) fields, the header has \(names.count)")
            }
            rows.append(r)
        }
        return CSVTable(comments: comments, header: names, rows: rows)
    }

    public func render() -> String {
        var out = ""
        for c in comments { out += "# " + c + "\n" }
        out += header.map(Self.quote).joined(separator: ",") + "\n"
        for r in rows { out += r.map(Self.quote).joined(separator: ",") + "\n" }
        return out
    }

    static func quote(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || s.hasPrefix("#") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
