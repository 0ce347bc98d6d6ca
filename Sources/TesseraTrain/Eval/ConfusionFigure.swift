import TesseraCore

extension ClassificationReport {
    /// Where the confusion figure puts things: the `classes × classes` grid of `cell`-pixel squares
    /// starts at (gridX, gridY); true classes label the rows on the left, predicted classes the
    /// columns underneath (written upwards so long names never collide).
    struct FigureLayout {
        static let pad = 8
        let cell: Int, classes: Int, nameWidth: Int

        init(cell: Int, classNames: [String]) {
            self.cell = cell
            classes = classNames.count
            nameWidth = classNames.map { BitmapFont.width(of: $0) }.max() ?? 0
        }

        var gridX: Int { Self.pad + BitmapFont.glyphHeight + Self.pad + nameWidth + Self.pad }
        var gridY: Int { Self.pad + BitmapFont.glyphHeight + Self.pad }
        var gridSize: Int { classes * cell }
        var width: Int { max(gridX + gridSize + Self.pad, gridX + BitmapFont.width(of: "predicted") + Self.pad) }
        var height: Int { gridY + gridSize + Self.pad + nameWidth + Self.pad }
    }

    /// Darkest cell colour (a row whose samples all land in one column).
    static let figureInk = RGBColor(8, 48, 107)

    /// The confusion matrix as a heat map: each row normalized by its class's sample count, white (0)
    /// to dark blue (1), with the count written in every cell and the class names along both axes.
    /// `cell` is at least 16 pixels, room for the 5×7 digits.
    public func figure(cell: Int = 48) -> RGBImage {
        let cell = max(cell, 16)
        let layout = FigureLayout(cell: cell, classNames: classNames)
        var image = RGBImage(width: layout.width, height: layout.height, fill: 255)
        let (gx, gy, pad) = (layout.gridX, layout.gridY, FigureLayout.pad)

        let title = "predicted"
        image.drawText(title, x: gx + max(0, (layout.gridSize - BitmapFont.width(of: title)) / 2), y: pad, color: .black)
        let axis = "truth"
        image.drawText(axis, x: pad, y: gy + (layout.gridSize + BitmapFont.width(of: axis)) / 2, color: .black, vertical: true)

        for t in 0..<classes {
            let rowTotal = confusion[t].reduce(0, +)
            let name = classNames[t]
            image.drawText(name, x: gx - pad - BitmapFont.width(of: name), y: gy + t * cell + (cell - BitmapFont.glyphHeight) / 2, color: .black)
            for p in 0..<classes {
                let count = confusion[t][p]
                let share = rowTotal == 0 ? 0 : Double(count) / Double(rowTotal)
                let (x, y) = (gx + p * cell, gy + t * cell)
                image.fillRect(x: x, y: y, width: cell, height: cell, .mix(.white, Self.figureInk, share))
                let label = String(count)
                image.drawText(label, x: x + (cell - BitmapFont.width(of: label)) / 2, y: y + (cell - BitmapFont.glyphHeight) / 2,
                               color: share > 0.5 ? .white : .black)
            }
        }
        // Grid lines keep equal neighbouring cells apart.
        for i in 0...classes {
            image.drawLine(x0: gx + i * cell, y0: gy, x1: gx + i * cell, y1: gy + layout.gridSize, .lightGray)
            image.drawLine(x0: gx, y0: gy + i * cell, x1: gx + layout.gridSize, y1: gy + i * cell, .lightGray)
        }
        for p in 0..<classes {
            let name = classNames[p]
            image.drawText(name, x: gx + p * cell + (cell - BitmapFont.glyphHeight) / 2, y: gy + layout.gridSize + pad + BitmapFont.width(of: name),
                           color: .black, vertical: true)
        }
        return image
    }
}
