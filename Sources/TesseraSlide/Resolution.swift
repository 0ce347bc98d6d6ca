import Foundation

/// Where a slide's µm/px came from, in the order Tessera looks for it.
public enum MppSource: String, Codable, Sendable {
    case openslide = "openslide.mpp-x"
    case aperio = "aperio.MPP"
    case philips = "philips.DICOM_PIXEL_SPACING"
    case leica = "leica"
    case hamamatsu = "hamamatsu"
    case tiffResolution = "tiff-resolution"
    case ome = "ome.PhysicalSizeX"
    case objectivePower = "objective-power-estimate"
    case assumed = "assumed"
    case none = "none"

    /// True when the value is a guess rather than a calibration.
    public var isEstimate: Bool { self == .objectivePower || self == .assumed }
}

/// µm/px of level 0 and its provenance.
public struct Resolution: Codable, Sendable, Equatable {
    public var mpp: Double?
    public var source: MppSource
    public var objectivePower: Double?

    public init(mpp: Double?, source: MppSource, objectivePower: Double? = nil) {
        self.mpp = mpp
        self.source = source
        self.objectivePower = objectivePower
    }

    /// Micrometres per pixel at 1× are not defined; 10 µm/px × (1 / power) is the nominal rule of thumb
    /// (a 20× scan ≈ 0.5 µm/px, a 40× scan ≈ 0.25 µm/px; e.g. Aperio AT2 0.50/0.25, Hamamatsu S360 0.46/0.23).
    public static let nominalMicronsAtOneX = 10.0

    /// Plausible calibrated microscopy range; anything outside is a default such as 72 dpi.
    static let plausible: ClosedRange<Double> = 0.01...100

    /// Looks for µm/px in metadata fields, most trustworthy first.
    /// `fields` are libvips metadata (openslide properties appear with their own names).
    /// `xresPerMM` is libvips' xres (pixels per millimetre) when a TIFF resolution tag was present.
    static func find(fields: [String: String], xresPerMM: Double?) -> Resolution {
        let power = number(fields["openslide.objective-power"]) ?? number(fields["aperio.AppMag"])
        func ok(_ v: Double?) -> Double? { v.flatMap { plausible.contains($0) ? $0 : nil } }

        if let v = ok(number(fields["openslide.mpp-x"])) { return Resolution(mpp: v, source: .openslide, objectivePower: power) }
        if let v = ok(number(fields["aperio.MPP"])) { return Resolution(mpp: v, source: .aperio, objectivePower: power) }
        if let s = fields["philips.DICOM_PIXEL_SPACING"] {
            // Philips stores "row column" spacing in millimetres, sometimes quoted.
            let parts = s.replacingOccurrences(of: "\"", with: " ").split(whereSeparator: { $0 == " " || $0 == "\\" })
            if let first = parts.first, let v = ok(Double(first).map { $0 * 1000 }) {
                return Resolution(mpp: v, source: .philips, objectivePower: power)
            }
        }
        for key in fields.keys.sorted() where key.hasPrefix("leica.") && key.lowercased().contains("mpp") {
            if let v = ok(number(fields[key])) { return Resolution(mpp: v, source: .leica, objectivePower: power) }
        }
        if let v = ok(number(fields["hamamatsu.XResolution"]).map({ 10_000 / $0 })) {
            // NDPI XResolution is pixels per centimetre.
            return Resolution(mpp: v, source: .hamamatsu, objectivePower: power)
        }
        if let xres = xresPerMM, xres > 0, let v = ok(1000 / xres), v <= 50 {
            return Resolution(mpp: v, source: .tiffResolution, objectivePower: power)
        }
        if let desc = fields["image-description"], desc.contains("<OME"), let v = ok(omePhysicalSizeX(desc)) {
            return Resolution(mpp: v, source: .ome, objectivePower: power)
        }
        if let power, power > 0 {
            return Resolution(mpp: nominalMicronsAtOneX / power, source: .objectivePower, objectivePower: power)
        }
        return Resolution(mpp: nil, source: .none, objectivePower: nil)
    }

    static func number(_ s: String?) -> Double? {
        guard let s else { return nil }
        return Double(s.trimmingCharacters(in: .whitespaces))
    }

    /// PhysicalSizeX of the first OME Pixels element, converted to µm.
    static func omePhysicalSizeX(_ xml: String) -> Double? {
        func attribute(_ name: String) -> String? {
            guard let r = xml.range(of: "\(name)=\"") else { return nil }
            let rest = xml[r.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return String(rest[..<end])
        }
        guard let value = attribute("PhysicalSizeX").flatMap(Double.init) else { return nil }
        switch attribute("PhysicalSizeXUnit") ?? "µm" {
        case "µm", "um", "\u{03BC}m": return value
        case "nm": return value / 1000
        case "mm": return value * 1000
        case "cm": return value * 10_000
        case "m": return value * 1_000_000
        default: return nil
        }
    }
}
