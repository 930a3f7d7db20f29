import CoreML
import CoreVideo
import Foundation
import MobileExportCore

/// A model runtime: takes the prepared model-size pixels and returns the raw output tensor.
///
/// Preparing the pixels and reading the output stay in MobileExportCore, which the tests check
/// against the golden fixtures, so a runtime only moves bytes in and out of its model.
protocol Classifier {
    /// Runs the model on `pixels` (`height x width x 3` RGB from ``Preprocessor``) and returns the
    /// output tensor's bytes in the manifest's output dtype, little-endian.
    func outputTensor(for pixels: [UInt8]) throws -> Data
}

/// Runs a Core ML model with `MLModel.prediction` on an input built from the prepared pixels.
///
/// Vision's `VNCoreMLRequest` is not used, because it scales and crops the image itself
/// (`imageCropAndScaleOption`) and would bypass the input contract. Here the model receives exactly
/// the pixels that ``Preprocessor`` made: a `CVPixelBuffer` of the model's size for an image
/// input, or the ``InputTensor`` bytes for a multi-array input.
final class CoreMLClassifier: Classifier {
    private enum Input {
        case image(name: String, pixelFormat: OSType)
        case multiArray(name: String)
    }

    private let model: MLModel
    private let manifest: Manifest
    private let input: Input
    private let outputName: String

    /// Loads the model, compiling an `.mlpackage` or `.mlmodel` first, and checks that its input and
    /// output match the manifest.
    init(modelURL: URL, manifest: Manifest, configuration: MLModelConfiguration = MLModelConfiguration()) throws {
        let compiledURL: URL
        switch CoreMLFormat(url: modelURL) {
        case .compiled:
            compiledURL = modelURL
        case .source:
            // NOTE: compiled at every launch into a temporary folder; cache it if start-up time matters.
            compiledURL = try MLModel.compileModel(at: modelURL)
        case nil:
            throw ModelFilesError.notCoreML(modelURL.lastPathComponent)
        }
        let loaded = try MLModel(contentsOf: compiledURL, configuration: configuration)
        input = try Self.checkInput(loaded.modelDescription, manifest: manifest)
        outputName = try Self.checkOutput(loaded.modelDescription, manifest: manifest)
        model = loaded
        self.manifest = manifest
    }

    func outputTensor(for pixels: [UInt8]) throws -> Data {
        let value: MLFeatureValue
        let inputName: String
        switch input {
        case let .image(name, pixelFormat):
            value = MLFeatureValue(pixelBuffer: try makePixelBuffer(pixels, pixelFormat: pixelFormat))
            inputName = name
        case let .multiArray(name):
            value = MLFeatureValue(multiArray: try makeMultiArray(pixels))
            inputName = name
        }

        let features = try MLDictionaryFeatureProvider(dictionary: [inputName: value])
        let prediction = try model.prediction(from: features)
        guard let output = prediction.featureValue(for: outputName)?.multiArrayValue else {
            throw ClassifierError.missingOutput(outputName)
        }
        return try float32Bytes(of: output)
    }

    // MARK: - Checking the model against the manifest

    private static func checkInput(_ description: MLModelDescription, manifest: Manifest) throws -> Input {
        let inputs = description.inputDescriptionsByName
        guard inputs.count == 1, let only = inputs.first else {
            throw ClassifierError.inputCount(inputs.keys.sorted())
        }
        let name = only.key
        let feature = only.value
        let expected = manifest.input

        switch feature.type {
        case .image:
            guard let constraint = feature.imageConstraint else {
                throw ClassifierError.unsupportedInput(name, "an image input without a size")
            }
            guard constraint.pixelsHigh == expected.height, constraint.pixelsWide == expected.width else {
                throw ClassifierError.inputSize(
                    name, model: "\(constraint.pixelsHigh)x\(constraint.pixelsWide)",
                    manifest: "\(expected.height)x\(expected.width)"
                )
            }
            let format = constraint.pixelFormatType
            guard format == kCVPixelFormatType_32BGRA || format == kCVPixelFormatType_32ARGB else {
                throw ClassifierError.unsupportedInput(name, "a grayscale or other non-RGB image input")
            }
            // An image input takes the 0...255 pixel values themselves, so the manifest must describe raw pixels too.
            let rawPixels = expected.dtype == .float32
                || (expected.dtype == .uint8 && expected.scale == 1 && expected.zeroPoint == 0)
            guard rawPixels else {
                throw ClassifierError.unsupportedInput(
                    name, "an image input for a \(expected.dtype.rawValue) manifest with scale \(expected.scale)"
                )
            }
            return .image(name: name, pixelFormat: format)

        case .multiArray:
            guard let constraint = feature.multiArrayConstraint else {
                throw ClassifierError.unsupportedInput(name, "a multi-array input without a shape")
            }
            let shape = constraint.shape.map(\.intValue)
            guard shape == expected.shape else {
                throw ClassifierError.inputSize(name, model: "\(shape)", manifest: "\(expected.shape)")
            }
            guard constraint.dataType == .float32, expected.dtype == .float32 else {
                throw ClassifierError.unsupportedInput(
                    name, "a multi-array input of Core ML type \(describe(constraint.dataType)) "
                        + "for a \(expected.dtype.rawValue) manifest; the app fills float32 arrays"
                )
            }
            return .multiArray(name: name)

        default:
            throw ClassifierError.unsupportedInput(name, "an input that is neither an image nor a multi-array")
        }
    }

    private static func describe(_ dataType: MLMultiArrayDataType) -> String {
        switch dataType {
        case .float32: return "float32"
        case .double: return "double"
        case .int32: return "int32"
        default: return "number \(dataType.rawValue)"
        }
    }

    private static func checkOutput(_ description: MLModelDescription, manifest: Manifest) throws -> String {
        let arrays = description.outputDescriptionsByName.filter { $0.value.type == .multiArray }
        guard arrays.count == 1, let name = arrays.keys.first else {
            throw ClassifierError.outputCount(arrays.keys.sorted())
        }
        // Core ML hands out floating-point values, which the app passes on as float32 bytes.
        guard manifest.output.dtype == .float32 else {
            throw ClassifierError.outputType(manifest.output.dtype.rawValue)
        }
        return name
    }

    // MARK: - Moving bytes in and out

    private func makePixelBuffer(_ pixels: [UInt8], pixelFormat: OSType) throws -> CVPixelBuffer {
        let height = manifest.input.height
        let width = manifest.input.width
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [String: Any]()] as CFDictionary
        var created: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, pixelFormat, attributes, &created)
        guard status == kCVReturnSuccess, let buffer = created else {
            throw ClassifierError.pixelBuffer(status)
        }

        let locked = CVPixelBufferLockBaseAddress(buffer, [])
        guard locked == kCVReturnSuccess else {
            throw ClassifierError.pixelBuffer(locked)
        }
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw ClassifierError.pixelBufferAddress
        }
        let bytesPerRow = CVPixelBufferGetBytesPerRow(buffer)
        let destination = base.assumingMemoryBound(to: UInt8.self)
        // Byte positions of red, green and blue within a 4-byte pixel; alpha is opaque.
        let (red, green, blue, alpha) = pixelFormat == kCVPixelFormatType_32BGRA ? (2, 1, 0, 3) : (1, 2, 3, 0)
        for y in 0..<height {
            let row = destination + y * bytesPerRow
            for x in 0..<width {
                let source = (y * width + x) * 3
                row[x * 4 + red] = pixels[source]
                row[x * 4 + green] = pixels[source + 1]
                row[x * 4 + blue] = pixels[source + 2]
                row[x * 4 + alpha] = 255
            }
        }
        return buffer
    }

    private func makeMultiArray(_ pixels: [UInt8]) throws -> MLMultiArray {
        let tensor = try InputTensor.bytes(pixels: pixels, manifest: manifest)
        let shape = manifest.input.shape
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float32)

        // The bytes are in row-major order, so the array must be too.
        let contiguous = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1]
        guard array.strides.map(\.intValue) == contiguous else {
            throw ClassifierError.layout(array.strides.map(\.intValue))
        }
        // Core ML devices are little-endian, as the tensor bytes are.
        tensor.copyBytes(to: array.dataPointer.assumingMemoryBound(to: UInt8.self), count: tensor.count)
        return array
    }

    private func float32Bytes(of output: MLMultiArray) throws -> Data {
        let classes = manifest.output.classes
        let shape = output.shape.map(\.intValue)
        guard shape.last == classes, shape.dropLast().allSatisfy({ $0 == 1 }) else {
            throw ClassifierError.outputShape(shape, classes: classes)
        }

        // Subscripting by index honours the array's strides, whatever its element type.
        var key = [NSNumber](repeating: 0, count: shape.count)
        var bytes = [UInt8]()
        bytes.reserveCapacity(classes * 4)
        for index in 0..<classes {
            key[shape.count - 1] = NSNumber(value: index)
            withUnsafeBytes(of: output[key].floatValue.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes)
    }
}

/// A Core ML model that does not fit the manifest, or a prediction that failed.
enum ClassifierError: Error, LocalizedError {
    case inputCount([String])
    case inputSize(String, model: String, manifest: String)
    case unsupportedInput(String, String)
    case outputCount([String])
    case outputType(String)
    case outputShape([Int], classes: Int)
    case missingOutput(String)
    case pixelBuffer(CVReturn)
    case pixelBufferAddress
    case layout([Int])

    var errorDescription: String? {
        switch self {
        case let .inputCount(names):
            return "The model has the inputs \(names); the app feeds exactly one image or multi-array input."
        case let .inputSize(name, model, manifest):
            return "The model input \(name) is \(model) but manifest.json says \(manifest); "
                + "bundle the manifest of this model."
        case let .unsupportedInput(name, what):
            return "The model input \(name) is \(what), which the app cannot fill. Export with an RGB image "
                + "input or a float32 [1, height, width, 3] multi-array."
        case let .outputCount(names):
            return "The model has the multi-array outputs \(names); the app reads exactly one."
        case let .outputType(dtype):
            return "manifest.json says the output is \(dtype), but Core ML outputs are floating point; "
                + "bundle a Core ML export's manifest (output dtype float32)."
        case let .outputShape(shape, classes):
            return "The model output has the shape \(shape); expected \(classes) classes, as [1, \(classes)]."
        case let .missingOutput(name):
            return "The prediction has no multi-array output \(name)."
        case let .pixelBuffer(status):
            return "Creating or locking the model's input pixel buffer failed with Core Video status \(status)."
        case .pixelBufferAddress:
            return "The model's input pixel buffer has no memory address to write to."
        case let .layout(strides):
            return "The input multi-array has the strides \(strides), not a row-major layout."
        }
    }
}
