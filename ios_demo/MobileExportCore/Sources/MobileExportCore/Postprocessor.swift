import Foundation

/// One class of a top-k result.
public struct Prediction: Equatable, Sendable {
    /// The class index: the position in the model output and the line in `labels.txt`, from 0.
    public let index: Int
    public let label: String
    /// A probability in 0...1: the softmax of the logits, or the model's own output.
    public let score: Double

    public init(index: Int, label: String, score: Double) {
        self.index = index
        self.label = label
        self.score = score
    }
}

/// Turns the model's raw output tensor into class scores and the best `k` classes.
public enum Postprocessor {
    /// Returns the `k` best classes, by score descending; equal scores keep the lower index first.
    ///
    /// `raw` is the output tensor's bytes in the manifest's output dtype, little-endian. Asking for
    /// more classes than the model has returns all of them.
    ///
    /// - Throws: ``OutputError`` when `raw` or `labels` does not match the manifest, or `k < 1`.
    public static func topK(raw: Data, manifest: Manifest, labels: [String], k: Int) throws -> [Prediction] {
        guard k >= 1 else { throw OutputError.invalidK(k) }
        let classes = manifest.output.classes
        guard labels.count == classes else {
            throw OutputError.labelCountMismatch(labels: labels.count, classes: classes)
        }

        let values = try scores(raw: raw, manifest: manifest)
        let order = values.indices.sorted { left, right in
            ranksBefore(values[left], left, values[right], right)
        }
        return order.prefix(k).map { Prediction(index: $0, label: labels[$0], score: values[$0]) }
    }

    /// Returns one score per class: dequantized values `(raw - zeroPoint) * scale` (raw values for
    /// `float32`), through a softmax when the manifest's output kind is logits. All in `Double`.
    public static func scores(raw: Data, manifest: Manifest) throws -> [Double] {
        let output = manifest.output
        let expected = output.classes * output.dtype.byteCount
        guard raw.count == expected else {
            throw OutputError.byteCountMismatch(
                expected: expected, actual: raw.count, classes: output.classes, dtype: output.dtype
            )
        }

        let values = dequantize(raw: raw, output: output)
        switch output.kind {
        case .probabilities:
            return values
        case .logits:
            return softmax(values)
        }
    }

    private static func dequantize(raw: Data, output: Manifest.Output) -> [Double] {
        let scale = output.scale
        let zeroPoint = Double(output.zeroPoint)
        return raw.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> [Double] in
            (0..<output.classes).map { i in
                switch output.dtype {
                case .uint8:
                    return (Double(bytes[i]) - zeroPoint) * scale
                case .int8:
                    return (Double(Int8(bitPattern: bytes[i])) - zeroPoint) * scale
                case .int16:
                    let value = Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
                    return (Double(value) - zeroPoint) * scale
                case .float32:
                    let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                    return Double(Float(bitPattern: bits))
                }
            }
        }
    }

    private static func softmax(_ values: [Double]) -> [Double] {
        // Subtracting the maximum keeps exp() from overflowing; it cancels in the division.
        let maximum = values.max() ?? 0
        let exponentials = values.map { exp($0 - maximum) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { $0 / total }
    }

    /// Compares two classes: higher score first, then lower index, and NaN after every number.
    private static func ranksBefore(_ leftScore: Double, _ leftIndex: Int, _ rightScore: Double, _ rightIndex: Int) -> Bool {
        switch (leftScore.isNaN, rightScore.isNaN) {
        case (false, true):
            return true
        case (true, false):
            return false
        case (true, true):
            return leftIndex < rightIndex
        case (false, false):
            return leftScore > rightScore || (leftScore == rightScore && leftIndex < rightIndex)
        }
    }
}
