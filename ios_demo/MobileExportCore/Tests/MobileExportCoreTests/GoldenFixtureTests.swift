import Foundation
import XCTest

@testable import MobileExportCore

/// The shared fixtures of `tests/golden/`, which the Python and Kotlin tests check too.
final class GoldenFixtureTests: XCTestCase {
    private var fixtures: [Fixture] = []

    override func setUpWithError() throws {
        fixtures = try Fixtures.all()
        XCTAssertGreaterThanOrEqual(fixtures.count, 4, "Expected the four committed exports in tests/golden.")
        XCTAssertEqual(Set(fixtures.map(\.manifest.input.dtype)), Set(TensorType.allCases),
                       "The fixtures should cover every input dtype.")
    }

    func testPreparedPixelsMatchExactly() throws {
        for fixture in fixtures {
            XCTAssertFalse(fixture.golden.cases.isEmpty, "\(fixture.name) has no cases.")
            for golden in fixture.golden.cases {
                let prepared = try Preprocessor.prepare(
                    rgb: [UInt8](golden.photoRGB), photoHeight: golden.photoHeight, photoWidth: golden.photoWidth,
                    manifest: fixture.manifest
                )
                let expected = [UInt8](golden.inputRGB)
                XCTAssertEqual(prepared.count, fixture.manifest.input.height * fixture.manifest.input.width * 3)
                XCTAssertTrue(prepared == expected,
                              "\(fixture.name) \(golden.name): \(firstDifference(prepared, expected))")
            }
        }
    }

    func testInputTensorBytesMatchExactly() throws {
        for fixture in fixtures {
            for golden in fixture.golden.cases {
                let tensor = try InputTensor.bytes(pixels: [UInt8](golden.inputRGB), manifest: fixture.manifest)
                let expected = [UInt8](golden.inputTensor)
                XCTAssertEqual(tensor.count, golden.inputRGB.count * fixture.manifest.input.dtype.byteCount)
                XCTAssertTrue([UInt8](tensor) == expected,
                              "\(fixture.name) \(golden.name): \(firstDifference([UInt8](tensor), expected))")
            }
        }
    }

    func testTopKMatches() throws {
        for fixture in fixtures {
            for golden in fixture.golden.cases {
                let top = try Postprocessor.topK(
                    raw: golden.outputRaw, manifest: fixture.manifest, labels: fixture.labels, k: golden.topK.count
                )
                let context = "\(fixture.name) \(golden.name)"
                XCTAssertEqual(golden.topK.count, 5, context)
                XCTAssertEqual(top.map(\.index), golden.topK.map(\.index), context)
                XCTAssertEqual(top.map(\.label), golden.topK.map(\.label), context)
                for (actual, expected) in zip(top, golden.topK) {
                    // Python floats: exp() and the summation order may differ in the last bits.
                    XCTAssertEqual(actual.score, expected.score, accuracy: 1e-6, "\(context) class \(expected.index)")
                }
            }
        }
    }

    func testGoldenCheckPassesEveryCase() throws {
        for fixture in fixtures {
            let results = GoldenCheck.run(fixture.golden, manifest: fixture.manifest, labels: fixture.labels)
            XCTAssertEqual(results.map(\.name), fixture.golden.cases.map(\.name))
            for result in results {
                XCTAssertEqual(result.failures, [], "\(fixture.name) \(result.name)")
            }
        }
    }

    func testGoldenCheckReportsChangedPixel() throws {
        let fixture = try XCTUnwrap(fixtures.first)
        let original = try XCTUnwrap(fixture.golden.cases.first)
        var inputRGB = original.inputRGB
        inputRGB[inputRGB.startIndex + 7] ^= 1
        let tampered = try tamperedGolden(original, inputRGB: inputRGB)

        let results = GoldenCheck.run(tampered, manifest: fixture.manifest, labels: fixture.labels)

        let failures = try XCTUnwrap(results.first).failures
        XCTAssertEqual(failures.count, 2, "\(failures)")
        XCTAssertTrue(failures[0].hasPrefix("Prepared pixels differ in 1 of"), failures[0])
        XCTAssertTrue(failures[0].contains("first at byte 7"), failures[0])
        XCTAssertTrue(failures[1].hasPrefix("Input tensor bytes differ in"), failures[1])
    }

    /// Re-encodes one case with different prepared pixels, through the same JSON decoding as the real files.
    private func tamperedGolden(_ original: GoldenCase, inputRGB: Data) throws -> GoldenFile {
        let object: [String: Any] = [
            "schema_version": 1,
            "cases": [[
                "name": original.name,
                "photo_height": original.photoHeight,
                "photo_width": original.photoWidth,
                "photo_rgb_base64": original.photoRGB.base64EncodedString(),
                "input_rgb_base64": inputRGB.base64EncodedString(),
                "input_tensor_base64": original.inputTensor.base64EncodedString(),
                "output_raw_base64": original.outputRaw.base64EncodedString(),
                "top_k": original.topK.map { ["index": $0.index, "label": $0.label, "score": $0.score] as [String: Any] },
            ] as [String: Any]],
        ]
        return try GoldenFile.decode(from: JSONSerialization.data(withJSONObject: object))
    }
}
