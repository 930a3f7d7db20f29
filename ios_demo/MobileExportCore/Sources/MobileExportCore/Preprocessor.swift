import Foundation

/// Turns a photo into the exact model-size RGB input, bit for bit as the Python pipeline does.
///
/// The algorithm is the export's input contract (`mobile_export/contract.py`):
///
/// 1. Resize size: with `num / den` the crop fraction and `round(a / b) = (2a + b) / (2b)` in
///    integers, if `photoWidth * height >= photoHeight * width` then
///    `resizedHeight = round(height * den / num)` and
///    `resizedWidth = max(width, round(photoWidth * resizedHeight / photoHeight))`; otherwise the same
///    with the roles of height and width swapped.
/// 2. Centre crop: `top = (resizedHeight - height) / 2`, `left = (resizedWidth - width) / 2`.
/// 3. Triangle filter, separable: along an axis of `s` source and `t` resized pixels, output pixel `i`
///    at resized position `p = i + offset` takes source pixel `j` with weight
///    `w(j) = max(0, 2 * max(s, t) - |(2j + 1) * t - (2p + 1) * s|)`, and each output value is
///    `(sum of wy * wx * pixel + D / 2) / D` with `D = sum(wy) * sum(wx)`.
///
/// Everything is integer arithmetic in `Int`, which is 64 bits on every platform the package declares
/// (iOS and macOS on arm64 and x86_64). The largest intermediate sum is far below 2^63.
public enum Preprocessor {
    /// Returns the `height x width x 3` model input for a `photoHeight x photoWidth` RGB photo.
    ///
    /// - Parameter rgb: row-major RGB bytes, 3 per pixel, already rotated upright.
    /// - Throws: ``InputError`` when `rgb` does not hold `photoHeight * photoWidth * 3` bytes.
    public static func prepare(rgb: [UInt8], photoHeight: Int, photoWidth: Int, manifest: Manifest) throws -> [UInt8] {
        try prepare(
            rgb: rgb, photoHeight: photoHeight, photoWidth: photoWidth,
            height: manifest.input.height, width: manifest.input.width,
            cropNumerator: manifest.input.resize.cropFractionNumerator,
            cropDenominator: manifest.input.resize.cropFractionDenominator
        )
    }

    /// Returns the `height x width x 3` input for an explicit model size and crop fraction.
    public static func prepare(
        rgb: [UInt8], photoHeight: Int, photoWidth: Int,
        height: Int, width: Int, cropNumerator: Int, cropDenominator: Int
    ) throws -> [UInt8] {
        guard photoHeight > 0, photoWidth > 0 else {
            throw InputError.invalidPhotoSize(height: photoHeight, width: photoWidth)
        }
        guard rgb.count == photoHeight * photoWidth * 3 else {
            throw InputError.byteCountMismatch(
                what: "photo of \(photoHeight)x\(photoWidth) RGB pixels",
                expected: photoHeight * photoWidth * 3, actual: rgb.count
            )
        }
        guard height > 0, width > 0, cropNumerator > 0, cropNumerator <= cropDenominator else {
            throw InputError.invalidModelSize(
                height: height, width: width, cropNumerator: cropNumerator, cropDenominator: cropDenominator
            )
        }

        let resized = resizedSize(
            photoHeight: photoHeight, photoWidth: photoWidth, height: height, width: width,
            cropNumerator: cropNumerator, cropDenominator: cropDenominator
        )
        let rows = AxisTaps(source: photoHeight, resized: resized.height, count: height,
                            offset: (resized.height - height) / 2)
        let columns = AxisTaps(source: photoWidth, resized: resized.width, count: width,
                               offset: (resized.width - width) / 2)
        return resample(rgb, photoWidth: photoWidth, rows: rows, columns: columns)
    }

    /// Returns the photo's size after the shorter-side resize and before the centre crop.
    public static func resizedSize(
        photoHeight: Int, photoWidth: Int, height: Int, width: Int, cropNumerator: Int, cropDenominator: Int
    ) -> (height: Int, width: Int) {
        if photoWidth * height >= photoHeight * width {
            let resizedHeight = roundedDivision(height * cropDenominator, cropNumerator)
            let resizedWidth = max(width, roundedDivision(photoWidth * resizedHeight, photoHeight))
            return (resizedHeight, resizedWidth)
        }
        let resizedWidth = roundedDivision(width * cropDenominator, cropNumerator)
        let resizedHeight = max(height, roundedDivision(photoHeight * resizedWidth, photoWidth))
        return (resizedHeight, resizedWidth)
    }

    /// Applies the separable weights with one final rounding, half up.
    private static func resample(_ rgb: [UInt8], photoWidth: Int, rows: AxisTaps, columns: AxisTaps) -> [UInt8] {
        let height = rows.count
        let width = columns.count

        // Horizontal pass over every source row that some output row uses, kept exact (no rounding).
        let firstRow = rows.firstSource[0]
        let lastRow = rows.lastSource(height - 1)
        let rowStride = width * 3
        var horizontal = [Int](repeating: 0, count: (lastRow - firstRow + 1) * rowStride)
        rgb.withUnsafeBufferPointer { photo in
            horizontal.withUnsafeMutableBufferPointer { sums in
                for row in firstRow...lastRow {
                    let photoRow = row * photoWidth * 3
                    let sumsRow = (row - firstRow) * rowStride
                    for x in 0..<width {
                        var red = 0, green = 0, blue = 0
                        var pixel = photoRow + columns.firstSource[x] * 3
                        for tap in columns.weightStart[x]..<columns.weightStart[x + 1] {
                            let weight = columns.weights[tap]
                            red += weight * Int(photo[pixel])
                            green += weight * Int(photo[pixel + 1])
                            blue += weight * Int(photo[pixel + 2])
                            pixel += 3
                        }
                        sums[sumsRow + x * 3] = red
                        sums[sumsRow + x * 3 + 1] = green
                        sums[sumsRow + x * 3 + 2] = blue
                    }
                }
            }
        }

        // Vertical pass, then the single rounding division by the product of both weight sums.
        var output = [UInt8](repeating: 0, count: height * rowStride)
        horizontal.withUnsafeBufferPointer { sums in
            output.withUnsafeMutableBufferPointer { out in
                for y in 0..<height {
                    let taps = rows.weightStart[y]..<rows.weightStart[y + 1]
                    let firstSumsRow = (rows.firstSource[y] - firstRow) * rowStride
                    for x in 0..<width {
                        let denominator = rows.weightSum[y] * columns.weightSum[x]
                        for channel in 0..<3 {
                            var total = 0
                            var index = firstSumsRow + x * 3 + channel
                            for tap in taps {
                                total += rows.weights[tap] * sums[index]
                                index += rowStride
                            }
                            out[(y * width + x) * 3 + channel] = UInt8((total + denominator / 2) / denominator)
                        }
                    }
                }
            }
        }
        return output
    }
}

/// `round(a / b)` for non-negative `a` and positive `b`, halves rounded up.
func roundedDivision(_ numerator: Int, _ denominator: Int) -> Int {
    (2 * numerator + denominator) / (2 * denominator)
}

/// Rounds toward negative infinity, unlike `/`, for a positive divisor.
private func floorDivision(_ numerator: Int, _ divisor: Int) -> Int {
    let quotient = numerator / divisor
    return numerator % divisor < 0 ? quotient - 1 : quotient
}

/// The non-zero triangle-filter taps of one axis: for each output pixel, a run of consecutive
/// source pixels and their integer weights.
struct AxisTaps {
    let count: Int
    /// The first source pixel with a non-zero weight, per output pixel.
    private(set) var firstSource: [Int] = []
    /// The start of each output pixel's run in `weights`, with `count + 1` entries.
    private(set) var weightStart: [Int] = [0]
    private(set) var weights: [Int] = []
    private(set) var weightSum: [Int] = []

    /// Computes the taps for `count` output pixels starting at `offset` on an axis resized from
    /// `source` to `resized` pixels.
    init(source: Int, resized: Int, count: Int, offset: Int) {
        self.count = count
        let support = 2 * max(source, resized)
        firstSource.reserveCapacity(count)
        weightSum.reserveCapacity(count)

        for i in 0..<count {
            // Distances are in units of 1 / (2 * resized) source pixels. A weight w(j) is positive
            // exactly when centre - support < (2j + 1) * resized < centre + support.
            let centre = (2 * (i + offset) + 1) * source
            let first = max(0, floorDivision(centre - support - resized, 2 * resized) + 1)
            let last = min(source - 1, -floorDivision(-(centre + support - resized), 2 * resized) - 1)
            var sum = 0
            for j in first...last {
                let weight = support - abs((2 * j + 1) * resized - centre)
                weights.append(weight)
                sum += weight
            }
            firstSource.append(first)
            weightStart.append(weights.count)
            weightSum.append(sum)
        }
    }

    /// Returns the last source pixel with a non-zero weight for output pixel `i`.
    func lastSource(_ i: Int) -> Int {
        firstSource[i] + weightStart[i + 1] - weightStart[i] - 1
    }
}
