// Stain files (JSON): a file that loads must also normalize a real-looking tile without trapping,
// whatever numbers it holds.
import Foundation
import TesseraCore
import TesseraStain

/// A small H&E-like tile: pink background, purple nuclei, one white corner.
let stainProbe: RGBImage = {
    var img = RGBImage(width: 16, height: 16)
    for y in 0..<16 {
        for x in 0..<16 {
            let i = (y * 16 + x) * 3
            let rgb: (UInt8, UInt8, UInt8) = x < 4 && y < 4 ? (250, 250, 250) : ((x ^ y) & 4 == 0 ? (120, 60, 160) : (230, 150, 190))
            img.pixels[i] = rgb.0; img.pixels[i + 1] = rgb.1; img.pixels[i + 2] = rgb.2
        }
    }
    return img
}()

func fuzzStain(_ bytes: UnsafeRawBufferPointer) {
    let path = scratchFile("stain.json", bytes)
    guard let target = try? StainTarget.load(path: path), let normalizer = try? StainNormalizer(target: target) else { return }
    _ = normalizer.normalize(stainProbe)
}
