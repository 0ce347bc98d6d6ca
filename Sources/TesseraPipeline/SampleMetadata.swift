import Foundation
import TesseraCore

/// The `KEY.json` member of every tile sample: enough to find the tile again in the original slide.
public struct SampleMetadata: Codable, Sendable, Equatable {
    public var key: String
    public var slideId: String
    public var source: String
    /// Pyramid level read, and level-0 pixels per tile pixel.
    public var level: Int
    public var level0PerPixel: Double
    /// Top-left corner at level 0, and the tile's footprint at level 0.
    public var x: Int
    public var y: Int
    public var level0Size: Int
    public var tileSize: Int
    public var mpp: Double?
    public var mppSource: String
    public var mppEstimated: Bool
    public var tissueFraction: Double
    public var format: String
    public var stain: String
    public var label: String?
    public var patientId: String?

    enum CodingKeys: String, CodingKey {
        case key, slideId = "slide_id", source, level, level0PerPixel = "level0_per_pixel", x, y
        case level0Size = "level0_size", tileSize = "tile_size", mpp, mppSource = "mpp_source"
        case mppEstimated = "mpp_estimated", tissueFraction = "tissue_fraction", format, stain, label
        case patientId = "patient_id"
    }

    public static func key(slideId: String, x: Int, y: Int) -> String { "\(slideId)_\(x)_\(y)" }
}
