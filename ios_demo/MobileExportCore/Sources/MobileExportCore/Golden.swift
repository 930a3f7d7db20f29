import Foundation

/// An export's `golden.json`: photos with the prepared pixels, input tensor and top-k that the
/// Python pipeline computed, which this package must reproduce exactly.
public struct GoldenFile: Decodable, Sendable {
    public let schemaVersion: Int
    public let cases: [GoldenCase]

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case cases
    }

    /// Decodes `golden.json`; the base64 fields become raw bytes.
    public static func decode(from data: Data) throws -> GoldenFile {
        try JSONDecoder().decode(GoldenFile.self, from: data)
    }
}

/// One photo of `golden.json` and what the pipeline made of it.
public struct GoldenCase: Decodable, Sendable {
    public let name: String
    public let photoHeight: Int
    public let photoWidth: Int
    /// `photoHeight * photoWidth * 3` RGB bytes, EXIF orientation already applied.
    public let photoRGB: Data
    /// The prepared model-size RGB pixels.
    public let inputRGB: Data
    /// The input tensor bytes in the manifest's input dtype.
    public let inputTensor: Data
    /// The output tensor bytes the model produced, in the manifest's output dtype.
    public let outputRaw: Data
    public let topK: [GoldenPrediction]

    // JSONDecoder decodes Data from base64 strings by default.
    enum CodingKeys: String, CodingKey {
        case name
        case photoHeight = "photo_height"
        case photoWidth = "photo_width"
        case photoRGB = "photo_rgb_base64"
        case inputRGB = "input_rgb_base64"
        case inputTensor = "input_tensor_base64"
        case outputRaw = "output_raw_base64"
        case topK = "top_k"
    }
}

/// An expected entry of a golden top-k list.
public struct GoldenPrediction: Decodable, Equatable, Sendable {
    public let index: Int
    public let label: String
    public let score: Double
}

/// The outcome of reproducing one golden case.
public struct GoldenCaseResult: Equatable, Sendable {
    public let name: String
    /// One sentence per step whose result differs from the golden value; empty when the case passed.
    public let failures: [String]

    public var passed: Bool { failures.isEmpty }
}

/// Reproduces golden cases with this package's own code, so an app can show on the device that its
/// preprocessing, input encoding and top-k match the Python pipeline bit for bit.
public enum GoldenCheck {
    /// The score tolerance: golden scores are Python floats, and `exp` and summation order may differ
    /// in the last bits between numpy and Foundation.
    public static let scoreTolerance = 1e-6

    /// Runs every case through ``Preprocessor``, ``InputTensor`` and ``Postprocessor``.
    public static func run(_ golden: GoldenFile, manifest: Manifest, labels: [String]) -> [GoldenCaseResult] {
        golden.cases.map { check($0, manifest: manifest, labels: labels) }
    }

    private static func check(_ golden: GoldenCase, manifest: Manifest, labels: [String]) -> GoldenCaseResult {
        var failures: [String] = []

        do {
            let prepared = try Preprocessor.prepare(
                rgb: [UInt8](golden.photoRGB), photoHeight: golden.photoHeight, photoWidth: golden.photoWidth,
                manifest: manifest
            )
            if let difference = describeDifference(Data(prepared), golden.inputRGB) {
                failures.append("Prepared pixels \(difference).")
            }
        } catch {
            failures.append("Preparing the photo failed: \(error.localizedDescription)")
        }

        // Encode the golden pixels, not ours, so one preprocessing bug does not fail every step.
        do {
            let tensor = try InputTensor.bytes(pixels: [UInt8](golden.inputRGB), manifest: manifest)
            if let difference = describeDifference(tensor, golden.inputTensor) {
                failures.append("Input tensor bytes \(difference).")
            }
        } catch {
            failures.append("Encoding the input tensor failed: \(error.localizedDescription)")
        }

        do {
            let top = try Postprocessor.topK(raw: golden.outputRaw, manifest: manifest, labels: labels, k: golden.topK.count)
            let indices = top.map(\.index)
            let expectedIndices = golden.topK.map(\.index)
            if indices != expectedIndices {
                failures.append("Top-\(golden.topK.count) classes are \(indices); expected \(expectedIndices).")
            } else if top.map(\.label) != golden.topK.map(\.label) {
                failures.append("Top-k labels are \(top.map(\.label)); expected \(golden.topK.map(\.label)).")
            } else if let worst = zip(top, golden.topK).map({ abs($0.score - $1.score) }).max(), worst > scoreTolerance {
                failures.append("Top-k scores differ by up to \(worst); the tolerance is \(scoreTolerance).")
            }
        } catch {
            failures.append("Reading the output failed: \(error.localizedDescription)")
        }

        return GoldenCaseResult(name: golden.name, failures: failures)
    }
}

/// Describes how `actual` differs from `expected`, or returns `nil` when the bytes are equal.
func describeDifference(_ actual: Data, _ expected: Data) -> String? {
    guard actual.count == expected.count else {
        return "have \(actual.count) bytes; expected \(expected.count)"
    }
    var differing = 0
    var first: Int?
    for (offset, (left, right)) in zip(actual, expected).enumerated() where left != right {
        differing += 1
        if first == nil { first = offset }
    }
    guard let first else { return nil }
    let actualByte = actual[actual.startIndex + first]
    let expectedByte = expected[expected.startIndex + first]
    return "differ in \(differing) of \(actual.count) bytes, first at byte \(first): \(actualByte), expected \(expectedByte)"
}
