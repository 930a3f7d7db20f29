import Foundation
import XCTest

@testable import MobileExportCore

/// One export folder of the repository's `tests/golden/`, decoded.
struct Fixture {
    let name: String
    let manifest: Manifest
    let labels: [String]
    let golden: GoldenFile
}

struct FixturesNotFound: Error, CustomStringConvertible {
    let start: String

    var description: String {
        "No folder above \(start) contains tests/golden/README.md; set GOLDEN_DIR to the fixtures folder."
    }
}

enum Fixtures {
    /// Returns the repository's `tests/golden/`, or `$GOLDEN_DIR` when it is set.
    static func directory(file: StaticString = #filePath) throws -> URL {
        if let override = ProcessInfo.processInfo.environment["GOLDEN_DIR"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        var folder = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("tests/golden", isDirectory: true)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("README.md").path) {
                return candidate
            }
            folder.deleteLastPathComponent()
        }
        throw FixturesNotFound(start: "\(file)")
    }

    /// Decodes every subfolder that contains a `golden.json`, sorted by name.
    static func all() throws -> [Fixture] {
        let root = try directory()
        let folders = try FileManager.default.contentsOfDirectory(
            at: root, includingPropertiesForKeys: nil
        ).filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("golden.json").path) }

        return try folders.sorted { $0.lastPathComponent < $1.lastPathComponent }.map { folder in
            let manifest = try Manifest.decode(from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
            let labelsText = try String(contentsOf: folder.appendingPathComponent(manifest.labels.file), encoding: .utf8)
            let golden = try GoldenFile.decode(from: Data(contentsOf: folder.appendingPathComponent("golden.json")))
            return Fixture(name: folder.lastPathComponent, manifest: manifest, labels: try Labels.parse(labelsText), golden: golden)
        }
    }
}

/// Returns a small valid manifest as a JSON object, with keys the app ignores mixed in.
func manifestObject(
    shape: [Int] = [1, 64, 80, 3],
    inputDtype: String = "int8", inputScale: Double = 1.0, inputZeroPoint: Int = -128,
    outputDtype: String = "int8", outputScale: Double = 0.5, outputZeroPoint: Int = 2,
    kind: String = "logits", classes: Int = 4
) -> [String: Any] {
    [
        "schema_version": 1,
        "status": "passed",
        "model": ["file": "model.mlpackage", "arch": "mobilenet_v2"],
        "input": [
            "layout": "NHWC",
            "shape": shape,
            "dtype": inputDtype,
            "scale": inputScale,
            "zero_point": inputZeroPoint,
            "resize": [
                "method": "ignored by the app",
                "crop_fraction": 0.875,
                "crop_fraction_numerator": 7,
                "crop_fraction_denominator": 8,
            ] as [String: Any],
        ] as [String: Any],
        "output": [
            "kind": kind,
            "dtype": outputDtype,
            "shape": [1, classes],
            "scale": outputScale,
            "zero_point": outputZeroPoint,
            "classes": classes,
        ] as [String: Any],
        "labels": ["file": "labels.txt", "count": classes] as [String: Any],
        "versions": ["python": "3.11.7"],
    ]
}

/// Serializes a manifest object and decodes it as the app does.
func decodeManifest(_ object: [String: Any]) throws -> Manifest {
    try Manifest.decode(from: JSONSerialization.data(withJSONObject: object))
}

/// Returns `object` without the key at the dotted `path`.
func removing(_ path: String, from object: [String: Any]) -> [String: Any] {
    var keys = path.split(separator: ".").map(String.init)
    var copy = object
    let last = keys.removeLast()
    guard let head = keys.first else {
        copy[last] = nil
        return copy
    }
    let rest = (keys.dropFirst() + [last]).joined(separator: ".")
    copy[head] = removing(rest, from: object[head] as? [String: Any] ?? [:])
    return copy
}

/// Describes the first difference between two byte sequences, for assertion messages.
func firstDifference(_ actual: [UInt8], _ expected: [UInt8]) -> String {
    guard actual.count == expected.count else {
        return "\(actual.count) bytes, expected \(expected.count)"
    }
    guard let offset = actual.indices.first(where: { actual[$0] != expected[$0] }) else { return "equal" }
    let differing = zip(actual, expected).filter { $0 != $1 }.count
    return "\(differing) of \(actual.count) bytes differ, first at \(offset): \(actual[offset]), expected \(expected[offset])"
}
