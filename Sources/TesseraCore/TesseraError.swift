import Foundation

/// Every failure Tessera reports to a user: what went wrong, which file, and what to do next.
public struct TesseraError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case unsupportedFormat = "unsupported-format"
        case unreadable = "unreadable"
        case corrupt = "corrupt"
        case missingResolution = "missing-resolution"
        case noTissue = "no-tissue"
        case tooSmall = "too-small"
        /// More pixels than the configured limit (a decompression bomb or a mislabelled header).
        case tooLarge = "too-large"
        case invalidConfig = "invalid-config"
        case io = "io"
        case noSpace = "no-space"
        case timeout = "timeout"
        case mismatch = "mismatch"
        case busy = "busy"
    }
    public var kind: Kind
    public var path: String?
    public var message: String
    public var hint: String?

    public init(_ kind: Kind, path: String? = nil, _ message: String, hint: String? = nil) {
        self.kind = kind
        self.path = path
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var s = path.map { "\($0): " } ?? ""
        s += message
        if let hint { s += " (\(hint))" }
        return s
    }
}
