import Foundation
import TesseraCore

/// Pictures for checking stain work by eye: panels side by side on white, and colour swatches of
/// stain vectors (the colour of one unit of each stain: 255·exp(−v)).
public enum StainFigure {
    /// source | reference (if any) | normalized; below, swatches: the source's H and E (left pair)
    /// and the target's H and E (right pair).
    public static func render(source: RGBImage, reference: RGBImage?, normalized: RGBImage,
                              sourceTarget: StainTarget?, target: StainTarget) -> RGBImage {
        let panels = [source] + (reference.map { [$0] } ?? []) + [normalized]
        let top = Montage.row(panels, gap: 8)
        var swatches: [RGBImage] = []
        for t in [sourceTarget, target] {
            for v in t?.stainVectors ?? [] { swatches.append(swatch(v, side: 48)) }
        }
        guard !swatches.isEmpty else { return top }
        return Montage.column([top, Montage.row(swatches, gap: 8)], gap: 8)
    }

    /// Images in rows of `columns`.
    public static func grid(_ images: [RGBImage], columns: Int) -> RGBImage { Montage.grid(images, columns: columns) }

    static func swatch(_ v: [Double], side: Int) -> RGBImage {
        let c = v.map { UInt8(max(0, min(255, (255 * exp(-$0)).rounded()))) }
        var px = [UInt8](repeating: 0, count: side * side * 3)
        for i in 0..<(side * side) { px[3 * i] = c[0]; px[3 * i + 1] = c[1]; px[3 * i + 2] = c[2] }
        return RGBImage(width: side, height: side, pixels: px)
    }

}
