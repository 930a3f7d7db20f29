import Foundation

/// A photo, pixel buffer or model size that the input steps cannot use.
public enum InputError: Error, LocalizedError, Equatable, Sendable {
    case invalidPhotoSize(height: Int, width: Int)
    case invalidModelSize(height: Int, width: Int, cropNumerator: Int, cropDenominator: Int)
    case byteCountMismatch(what: String, expected: Int, actual: Int)
    case invalidRowStride(bytesPerRow: Int, width: Int)

    public var errorDescription: String? {
        switch self {
        case let .invalidPhotoSize(height, width):
            return "The photo is \(height)x\(width) pixels; both sides must be at least 1."
        case let .invalidModelSize(height, width, numerator, denominator):
            return "The model input is \(height)x\(width) with crop fraction \(numerator)/\(denominator); "
                + "the sides must be at least 1 and the fraction in (0, 1]."
        case let .byteCountMismatch(what, expected, actual):
            return "Got \(actual) bytes for a \(what); expected \(expected)."
        case let .invalidRowStride(bytesPerRow, width):
            return "A frame row of \(bytesPerRow) bytes cannot hold \(width) BGRA pixels (\(width * 4) bytes)."
        }
    }
}

/// A raw output tensor, label list or `k` that does not fit the manifest.
public enum OutputError: Error, LocalizedError, Equatable, Sendable {
    case byteCountMismatch(expected: Int, actual: Int, classes: Int, dtype: TensorType)
    case labelCountMismatch(labels: Int, classes: Int)
    case invalidK(Int)

    public var errorDescription: String? {
        switch self {
        case let .byteCountMismatch(expected, actual, classes, dtype):
            return "The model output has \(actual) bytes; the manifest describes \(classes) \(dtype.rawValue) "
                + "values (\(expected) bytes). Bundle the manifest that belongs to this model."
        case let .labelCountMismatch(labels, classes):
            return "labels.txt has \(labels) labels but the model has \(classes) classes; "
                + "bundle the labels.txt of the same export."
        case let .invalidK(k):
            return "Asked for the top \(k) classes; k must be at least 1."
        }
    }
}

/// A `labels.txt` that does not give every class a name.
public enum LabelsError: Error, LocalizedError, Equatable, Sendable {
    case empty
    case blankLine(number: Int)

    public var errorDescription: String? {
        switch self {
        case .empty:
            return "labels.txt is empty; it needs one class name per line."
        case let .blankLine(number):
            return "labels.txt line \(number) is blank; every line must name one class."
        }
    }
}
