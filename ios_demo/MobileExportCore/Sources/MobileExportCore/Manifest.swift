import Foundation

/// The element type of a model's input or output tensor, as `manifest.json` names it.
public enum TensorType: String, Decodable, CaseIterable, Sendable {
    case uint8
    case int8
    case int16
    case float32

    /// Bytes per element in the tensor's raw (little-endian) form.
    public var byteCount: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .float32: return 4
        }
    }

    /// The representable integer range, or `nil` for `float32`.
    var integerRange: ClosedRange<Int>? {
        switch self {
        case .uint8: return Int(UInt8.min)...Int(UInt8.max)
        case .int8: return Int(Int8.min)...Int(Int8.max)
        case .int16: return Int(Int16.min)...Int(Int16.max)
        case .float32: return nil
        }
    }
}

/// Whether the model's output values still need a softmax.
public enum OutputKind: String, Decodable, CaseIterable, Sendable {
    case logits
    case probabilities
}

extension TensorType {
    public init(from decoder: Decoder) throws {
        self = try decodeName(from: decoder)
    }
}

extension OutputKind {
    public init(from decoder: Decoder) throws {
        self = try decodeName(from: decoder)
    }
}

/// Decodes a string enum, listing the accepted names when the value matches none of them.
private func decodeName<Value: RawRepresentable & CaseIterable>(from decoder: Decoder) throws -> Value
where Value.RawValue == String {
    let container = try decoder.singleValueContainer()
    let name = try container.decode(String.self)
    guard let value = Value(rawValue: name) else {
        let accepted = Value.allCases.map(\.rawValue).joined(separator: ", ")
        throw DecodingError.dataCorruptedError(
            in: container, debugDescription: "is \"\(name)\"; expected one of \(accepted)"
        )
    }
    return value
}

/// The keys of an export's `manifest.json` that an app needs to prepare the input and read the output.
///
/// Every other key in the file (versions, parity results, checksums) is ignored, so exports with
/// newer manifests still load. Decode with ``Manifest/decode(from:)`` to get errors that name the
/// missing or invalid key.
public struct Manifest: Decodable, Equatable, Sendable {
    public let schemaVersion: Int
    public let model: Model
    public let input: Input
    public let output: Output
    public let labels: LabelsFile

    /// The model file, in the same folder as `manifest.json`.
    public struct Model: Decodable, Equatable, Sendable {
        public let file: String
    }

    /// The input tensor `[1, height, width, 3]` and how a photo becomes it.
    public struct Input: Decodable, Equatable, Sendable {
        public let shape: [Int]
        public let dtype: TensorType
        /// The quantization scale; 0 for `float32`.
        public let scale: Double
        public let zeroPoint: Int
        public let resize: Resize

        public var height: Int { shape[1] }
        public var width: Int { shape[2] }
    }

    /// The centre-crop fraction `numerator / denominator` (7/8: resize the shorter side to 256, keep 224).
    public struct Resize: Decodable, Equatable, Sendable {
        public let cropFractionNumerator: Int
        public let cropFractionDenominator: Int
    }

    /// The output tensor `[1, classes]` and how to turn its raw values into scores.
    public struct Output: Decodable, Equatable, Sendable {
        public let shape: [Int]
        public let dtype: TensorType
        /// The dequantization scale; 0 for `float32`, whose raw values are used as they are.
        public let scale: Double
        public let zeroPoint: Int
        public let kind: OutputKind

        public var classes: Int { shape[1] }
    }

    /// The labels file, one class name per line, in the same folder as `manifest.json`.
    public struct LabelsFile: Decodable, Equatable, Sendable {
        public let file: String
    }

    public static let supportedSchemaVersion = 1

    /// Decodes `manifest.json`, translating decoding failures into a ``ManifestError`` that names the key.
    public static func decode(from data: Data) throws -> Manifest {
        do {
            return try JSONDecoder().decode(Manifest.self, from: data)
        } catch let error as DecodingError {
            throw ManifestError(error)
        }
    }
}

// MARK: - Decoding and validation

extension Manifest {
    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case model, input, output, labels
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try container.decode(Int.self, forKey: .schemaVersion)
        guard schemaVersion == Self.supportedSchemaVersion else {
            throw DecodingError.dataCorruptedError(
                forKey: .schemaVersion, in: container,
                debugDescription: "is \(schemaVersion), but this app reads version \(Self.supportedSchemaVersion); "
                    + "bundle an export made by a matching mobile-export"
            )
        }
        model = try container.decode(Model.self, forKey: .model)
        input = try container.decode(Input.self, forKey: .input)
        output = try container.decode(Output.self, forKey: .output)
        labels = try container.decode(LabelsFile.self, forKey: .labels)
    }
}

extension Manifest.Input {
    enum CodingKeys: String, CodingKey {
        case shape, dtype, scale, resize
        case zeroPoint = "zero_point"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        shape = try container.decode([Int].self, forKey: .shape)
        guard shape.count == 4, shape[0] == 1, shape[1] > 0, shape[2] > 0, shape[3] == 3 else {
            throw DecodingError.dataCorruptedError(
                forKey: .shape, in: container,
                debugDescription: "is \(shape); expected [1, height, width, 3] (NHWC RGB)"
            )
        }
        dtype = try container.decode(TensorType.self, forKey: .dtype)
        scale = try container.decode(Double.self, forKey: .scale)
        zeroPoint = try container.decode(Int.self, forKey: .zeroPoint)
        try validateQuantization(dtype: dtype, scale: scale, zeroPoint: zeroPoint,
                                 scaleKey: CodingKeys.scale, zeroPointKey: CodingKeys.zeroPoint, in: container)
        resize = try container.decode(Manifest.Resize.self, forKey: .resize)
    }
}

extension Manifest.Resize {
    enum CodingKeys: String, CodingKey {
        case cropFractionNumerator = "crop_fraction_numerator"
        case cropFractionDenominator = "crop_fraction_denominator"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cropFractionNumerator = try container.decode(Int.self, forKey: .cropFractionNumerator)
        cropFractionDenominator = try container.decode(Int.self, forKey: .cropFractionDenominator)
        guard cropFractionNumerator > 0, cropFractionNumerator <= cropFractionDenominator else {
            throw DecodingError.dataCorruptedError(
                forKey: .cropFractionNumerator, in: container,
                debugDescription: "is \(cropFractionNumerator) with denominator \(cropFractionDenominator); "
                    + "the crop fraction must be in (0, 1]"
            )
        }
    }
}

extension Manifest.Output {
    enum CodingKeys: String, CodingKey {
        case shape, dtype, scale, kind
        case zeroPoint = "zero_point"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        shape = try container.decode([Int].self, forKey: .shape)
        guard shape.count == 2, shape[0] == 1, shape[1] > 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .shape, in: container,
                debugDescription: "is \(shape); expected [1, classes]"
            )
        }
        dtype = try container.decode(TensorType.self, forKey: .dtype)
        scale = try container.decode(Double.self, forKey: .scale)
        zeroPoint = try container.decode(Int.self, forKey: .zeroPoint)
        try validateQuantization(dtype: dtype, scale: scale, zeroPoint: zeroPoint,
                                 scaleKey: CodingKeys.scale, zeroPointKey: CodingKeys.zeroPoint, in: container)
        kind = try container.decode(OutputKind.self, forKey: .kind)
    }
}

/// Rejects a scale that would divide by zero or a zero point the integer type cannot hold.
private func validateQuantization<Key: CodingKey>(
    dtype: TensorType, scale: Double, zeroPoint: Int,
    scaleKey: Key, zeroPointKey: Key, in container: KeyedDecodingContainer<Key>
) throws {
    guard let range = dtype.integerRange else { return }
    guard scale.isFinite, scale > 0 else {
        throw DecodingError.dataCorruptedError(
            forKey: scaleKey, in: container,
            debugDescription: "is \(scale); a \(dtype.rawValue) tensor needs a finite scale above 0"
        )
    }
    guard range.contains(zeroPoint) else {
        throw DecodingError.dataCorruptedError(
            forKey: zeroPointKey, in: container,
            debugDescription: "is \(zeroPoint), outside the \(dtype.rawValue) range \(range.lowerBound)...\(range.upperBound)"
        )
    }
}

// MARK: - Errors

/// A `manifest.json` that lacks a key the app needs or contains an invalid value. The message names the key.
public struct ManifestError: Error, LocalizedError, Equatable, Sendable {
    public enum Reason: Equatable, Sendable {
        case missingKey
        case wrongType
        case invalidValue
        case invalidJSON
    }

    public let reason: Reason
    /// The dotted key path, for example `input.resize.crop_fraction_numerator`; empty for the top level.
    public let keyPath: String
    public let detail: String

    public init(reason: Reason, keyPath: String, detail: String) {
        self.reason = reason
        self.keyPath = keyPath
        self.detail = detail
    }

    init(_ error: DecodingError) {
        switch error {
        case let .keyNotFound(key, context):
            self.init(reason: .missingKey, keyPath: Self.path(context.codingPath + [key]),
                      detail: "rebuild the export with mobile-export and bundle it again")
        case let .typeMismatch(type, context):
            self.init(reason: .wrongType, keyPath: Self.path(context.codingPath),
                      detail: "expected \(Self.jsonName(of: type))")
        case let .valueNotFound(type, context):
            self.init(reason: .wrongType, keyPath: Self.path(context.codingPath),
                      detail: "is null; expected \(Self.jsonName(of: type))")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                self.init(reason: .invalidJSON, keyPath: "", detail: context.debugDescription)
            } else {
                self.init(reason: .invalidValue, keyPath: Self.path(context.codingPath), detail: context.debugDescription)
            }
        @unknown default:
            self.init(reason: .invalidJSON, keyPath: "", detail: String(describing: error))
        }
    }

    public var errorDescription: String? {
        switch reason {
        case .missingKey:
            return "manifest.json is missing the key \(keyPath); \(detail)."
        case .wrongType:
            return "manifest.json key \(keyPath) has the wrong type: \(detail)."
        case .invalidValue:
            return "manifest.json key \(keyPath) \(detail)."
        case .invalidJSON:
            return "manifest.json is not valid JSON: \(detail)."
        }
    }

    private static func path(_ codingPath: [CodingKey]) -> String {
        codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            .joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }

    private static func jsonName(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is [Int].Type: return "an array of integers"
        default: return "an object"
        }
    }
}
