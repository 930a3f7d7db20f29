import Foundation

/// The exact bytes the model's input tensor receives for prepared pixels.
public enum InputTensor {
    /// Returns the input tensor for prepared `height x width x 3` pixels, in the manifest's input dtype.
    ///
    /// Integer types get `clamp(round(v / scale) + zeroPoint)`, rounding half to even on the `Double`
    /// quotient as numpy's `np.round` does; `float32` gets `v` itself. Multi-byte values are little-endian.
    ///
    /// - Throws: ``InputError`` when `pixels` does not hold `height * width * 3` bytes.
    public static func bytes(pixels: [UInt8], manifest: Manifest) throws -> Data {
        let input = manifest.input
        let expected = input.height * input.width * 3
        guard pixels.count == expected else {
            throw InputError.byteCountMismatch(
                what: "model input of \(input.height)x\(input.width) RGB pixels", expected: expected, actual: pixels.count
            )
        }

        // A pixel has only 256 values, so encode each once and copy.
        let elementSize = input.dtype.byteCount
        let table = encodingTable(dtype: input.dtype, scale: input.scale, zeroPoint: input.zeroPoint)
        var data = Data(count: pixels.count * elementSize)
        data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
            table.withUnsafeBufferPointer { encoded in
                var position = 0
                for value in pixels {
                    let start = Int(value) * elementSize
                    for byte in 0..<elementSize {
                        out[position + byte] = encoded[start + byte]
                    }
                    position += elementSize
                }
            }
        }
        return data
    }

    /// Returns the quantized value of pixel value `value` for an integer dtype.
    static func quantize(_ value: UInt8, range: ClosedRange<Int>, scale: Double, zeroPoint: Int) -> Int {
        let rounded = (Double(value) / scale).rounded(.toNearestOrEven) + Double(zeroPoint)
        // Clamp as a Double first: a tiny scale could put the value beyond Int's range.
        let clamped = min(max(rounded, Double(range.lowerBound)), Double(range.upperBound))
        return Int(clamped)
    }

    /// Encodes every pixel value 0...255 once, `byteCount` bytes each.
    private static func encodingTable(dtype: TensorType, scale: Double, zeroPoint: Int) -> [UInt8] {
        var table: [UInt8] = []
        table.reserveCapacity(256 * dtype.byteCount)
        for value in UInt8.min...UInt8.max {
            guard let range = dtype.integerRange else {
                appendLittleEndian(Float(value).bitPattern, to: &table)
                continue
            }
            let quantized = quantize(value, range: range, scale: scale, zeroPoint: zeroPoint)
            if dtype == .int16 {
                appendLittleEndian(UInt16(bitPattern: Int16(quantized)), to: &table)
            } else {
                // Two's complement for int8, the value itself for uint8.
                table.append(UInt8(truncatingIfNeeded: quantized))
            }
        }
        return table
    }
}

func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
}
