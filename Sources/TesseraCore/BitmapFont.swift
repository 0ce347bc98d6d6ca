/// A 5×7 pixel font for labels in figures (confusion matrices, loss curves): digits, A–Z (lowercase
/// drawn as uppercase), and `. - _ % : / ( ) , + = ?` and space. Characters it lacks are drawn as `?`,
/// so a label never silently loses a letter. Each glyph advances 6 pixels (times the scale).
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 7
    public static let advance = 6

    /// Pixel width of `text` drawn at `scale` (no spacing after the last character).
    public static func width(of text: String, scale: Int = 1) -> Int {
        text.isEmpty ? 0 : (text.count * advance - 1) * scale
    }

    public static func height(scale: Int = 1) -> Int { glyphHeight * scale }

    /// The glyph's rows, top first; bit 4 is the leftmost column.
    static func rows(_ ch: Character) -> [UInt8] {
        let key = Character(ch.uppercased().count == 1 ? ch.uppercased() : String(ch))
        return glyphs[key] ?? glyphs["?"]!
    }

    // '#' = ink, '.' = paper; seven rows of five separated by spaces. Drawn for this file.
    private static let source: [Character: String] = [
        "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
        "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
        "2": ".###. #...# ....# ...#. ..#.. .#... #####",
        "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
        "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
        "5": "##### #.... ####. ....# ....# #...# .###.",
        "6": "..##. .#... #.... ####. #...# #...# .###.",
        "7": "##### ....# ...#. ..#.. .#... .#... .#...",
        "8": ".###. #...# #...# .###. #...# #...# .###.",
        "9": ".###. #...# #...# .#### ....# ...#. .##..",
        "A": ".###. #...# #...# ##### #...# #...# #...#",
        "B": "####. #...# #...# ####. #...# #...# ####.",
        "C": ".###. #...# #.... #.... #.... #...# .###.",
        "D": "###.. #..#. #...# #...# #...# #..#. ###..",
        "E": "##### #.... #.... ####. #.... #.... #####",
        "F": "##### #.... #.... ####. #.... #.... #....",
        "G": ".###. #...# #.... #.### #...# #...# .####",
        "H": "#...# #...# #...# ##### #...# #...# #...#",
        "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
        "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
        "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
        "L": "#.... #.... #.... #.... #.... #.... #####",
        "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
        "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
        "O": ".###. #...# #...# #...# #...# #...# .###.",
        "P": "####. #...# #...# ####. #.... #.... #....",
        "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
        "R": "####. #...# #...# ####. #.#.. #..#. #...#",
        "S": ".#### #.... #.... .###. ....# ....# ####.",
        "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
        "U": "#...# #...# #...# #...# #...# #...# .###.",
        "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
        "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
        "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
        "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
        "Z": "##### ....# ...#. ..#.. .#... #.... #####",
        ".": "..... ..... ..... ..... ..... .##.. .##..",
        "-": "..... ..... ..... ##### ..... ..... .....",
        "_": "..... ..... ..... ..... ..... ..... #####",
        " ": "..... ..... ..... ..... ..... ..... .....",
        "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
        ":": "..... .##.. .##.. ..... .##.. .##.. .....",
        "/": "..... ....# ...#. ..#.. .#... #.... .....",
        "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
        ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
        ",": "..... ..... ..... ..... .##.. ..#.. .#...",
        "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
        "=": "..... ..... ##### ..... ##### ..... .....",
        "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    ]

    private static let glyphs: [Character: [UInt8]] = source.mapValues { s in
        s.split(separator: " ").map { row in row.reduce(UInt8(0)) { ($0 << 1) | ($1 == "#" ? 1 : 0) } }
    }
}

extension RGBImage {
    /// Draws `text` with its top-left corner at (x, y); with `vertical`, rotated a quarter turn
    /// anticlockwise (reading upwards) with its bottom-left corner at (x, y). Clipped to the image.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: RGBColor, scale: Int = 1, vertical: Bool = false) {
        let s = max(1, scale)
        for (i, ch) in text.enumerated() {
            let rows = BitmapFont.rows(ch)
            for (gy, bits) in rows.enumerated() {
                for gx in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - gx)) != 0 {
                    let along = (i * BitmapFont.advance + gx) * s, across = gy * s
                    if vertical {
                        fillRect(x: x + across, y: y - along - s, width: s, height: s, color)
                    } else {
                        fillRect(x: x + along, y: y + across, width: s, height: s, color)
                    }
                }
            }
        }
    }
}
