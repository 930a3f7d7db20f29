import Foundation

/// An RGB image: row-major, 3 bytes per pixel, no row padding.
public struct RGBImage: Equatable, Sendable {
    public let pixels: [UInt8]
    public let height: Int
    public let width: Int

    public init(pixels: [UInt8], height: Int, width: Int) {
        self.pixels = pixels
        self.height = height
        self.width = width
    }
}

/// The clockwise turn that makes a camera frame upright.
public enum FrameRotation: Int, CaseIterable, Sendable {
    case none = 0
    case clockwise90 = 90
    case upsideDown180 = 180
    case counterclockwise90 = 270
}

/// Converts camera frames (32-bit BGRA, as `kCVPixelFormatType_32BGRA` lays them out) to upright RGB.
public enum FrameConverter {
    /// Returns the frame as upright RGB, dropping alpha and any row padding.
    ///
    /// - Parameters:
    ///   - bgra: the frame's bytes, `bytesPerRow` per row (Core Video may pad rows beyond `width * 4`).
    ///   - rotation: the clockwise turn that makes the frame upright; a quarter turn swaps height and width.
    /// - Throws: ``InputError`` when the sizes do not fit `bgra`.
    public static func rgb(
        bgra: UnsafeRawBufferPointer, height: Int, width: Int, bytesPerRow: Int, rotation: FrameRotation
    ) throws -> RGBImage {
        guard height > 0, width > 0 else {
            throw InputError.invalidPhotoSize(height: height, width: width)
        }
        guard bytesPerRow >= width * 4 else {
            throw InputError.invalidRowStride(bytesPerRow: bytesPerRow, width: width)
        }
        let needed = (height - 1) * bytesPerRow + width * 4
        guard bgra.count >= needed else {
            throw InputError.byteCountMismatch(
                what: "\(height)x\(width) BGRA frame with \(bytesPerRow) bytes per row", expected: needed, actual: bgra.count
            )
        }

        let quarterTurn = rotation == .clockwise90 || rotation == .counterclockwise90
        let outHeight = quarterTurn ? width : height
        let outWidth = quarterTurn ? height : width
        var pixels = [UInt8](repeating: 0, count: outHeight * outWidth * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            var position = 0
            for y in 0..<outHeight {
                for x in 0..<outWidth {
                    let (sourceY, sourceX) = sourcePixel(y: y, x: x, height: height, width: width, rotation: rotation)
                    let source = sourceY * bytesPerRow + sourceX * 4
                    out[position] = bgra[source + 2]
                    out[position + 1] = bgra[source + 1]
                    out[position + 2] = bgra[source]
                    position += 3
                }
            }
        }
        return RGBImage(pixels: pixels, height: outHeight, width: outWidth)
    }

    /// Returns the source pixel that lands at upright position (`y`, `x`) of a `height x width` frame.
    private static func sourcePixel(
        y: Int, x: Int, height: Int, width: Int, rotation: FrameRotation
    ) -> (y: Int, x: Int) {
        switch rotation {
        case .none:
            return (y, x)
        case .clockwise90:
            // The frame's left column becomes the top row, read bottom to top.
            return (height - 1 - x, y)
        case .upsideDown180:
            return (height - 1 - y, width - 1 - x)
        case .counterclockwise90:
            // The frame's right column becomes the top row, read top to bottom.
            return (x, width - 1 - y)
        }
    }
}
