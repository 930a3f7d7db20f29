import Foundation
import XCTest

@testable import MobileExportCore

final class ManifestTests: XCTestCase {
    func testDecodesSpecKeysAndIgnoresOthers() throws {
        let manifest = try decodeManifest(manifestObject(inputScale: 0.25, classes: 7))

        XCTAssertEqual(manifest.schemaVersion, 1)
        XCTAssertEqual(manifest.model.file, "model.mlpackage")
        XCTAssertEqual(manifest.input.height, 64)
        XCTAssertEqual(manifest.input.width, 80)
        XCTAssertEqual(manifest.input.dtype, .int8)
        XCTAssertEqual(manifest.input.scale, 0.25)
        XCTAssertEqual(manifest.input.zeroPoint, -128)
        XCTAssertEqual(manifest.input.resize.cropFractionNumerator, 7)
        XCTAssertEqual(manifest.input.resize.cropFractionDenominator, 8)
        XCTAssertEqual(manifest.output.dtype, .int8)
        XCTAssertEqual(manifest.output.scale, 0.5)
        XCTAssertEqual(manifest.output.zeroPoint, 2)
        XCTAssertEqual(manifest.output.kind, .logits)
        XCTAssertEqual(manifest.output.classes, 7)
        XCTAssertEqual(manifest.labels.file, "labels.txt")
    }

    func testDecodesEveryFixtureManifest() throws {
        let fixtures = try Fixtures.all()

        let sizes = fixtures.map { "\($0.name) \($0.manifest.input.height)x\($0.manifest.input.width)" }
        XCTAssertTrue(sizes.contains("v2_224_int8_uint8io 224x224"), "\(sizes)")
        for fixture in fixtures {
            XCTAssertEqual(fixture.manifest.output.classes, fixture.labels.count, fixture.name)
        }
    }

    func testMissingKeyIsNamed() throws {
        let cases = [
            "input.zero_point",
            "input.resize.crop_fraction_denominator",
            "model.file",
            "output.kind",
            "labels",
            "schema_version",
        ]
        for path in cases {
            XCTAssertThrowsError(try decodeManifest(removing(path, from: manifestObject())), path) { error in
                let manifestError = error as? ManifestError
                XCTAssertEqual(manifestError?.reason, .missingKey, path)
                XCTAssertEqual(manifestError?.keyPath, path)
                XCTAssertEqual(
                    manifestError?.errorDescription,
                    "manifest.json is missing the key \(path); rebuild the export with mobile-export and bundle it again."
                )
            }
        }
    }

    func testUnknownDtypeListsAcceptedNames() {
        XCTAssertThrowsError(try decodeManifest(manifestObject(inputDtype: "int4"))) { error in
            XCTAssertEqual(
                (error as? ManifestError)?.errorDescription,
                "manifest.json key input.dtype is \"int4\"; expected one of uint8, int8, int16, float32."
            )
        }
    }

    func testWrongShapeIsRejected() {
        XCTAssertThrowsError(try decodeManifest(manifestObject(shape: [1, 3, 224, 224]))) { error in
            XCTAssertEqual(
                (error as? ManifestError)?.errorDescription,
                "manifest.json key input.shape is [1, 3, 224, 224]; expected [1, height, width, 3] (NHWC RGB)."
            )
        }
    }

    func testZeroScaleForIntegerInputIsRejected() {
        XCTAssertThrowsError(try decodeManifest(manifestObject(inputScale: 0))) { error in
            XCTAssertEqual((error as? ManifestError)?.reason, .invalidValue)
            XCTAssertEqual((error as? ManifestError)?.keyPath, "input.scale")
        }
    }

    func testZeroScaleForFloatInputIsAccepted() throws {
        let manifest = try decodeManifest(manifestObject(inputDtype: "float32", inputScale: 0, inputZeroPoint: 0))

        XCTAssertEqual(manifest.input.dtype, .float32)
    }

    func testZeroPointOutsideDtypeIsRejected() {
        XCTAssertThrowsError(try decodeManifest(manifestObject(outputDtype: "uint8", outputZeroPoint: -1))) { error in
            XCTAssertEqual((error as? ManifestError)?.keyPath, "output.zero_point")
        }
    }

    func testWrongTypeIsNamed() {
        var object = manifestObject()
        object["model"] = ["file": 3]

        XCTAssertThrowsError(try decodeManifest(object)) { error in
            XCTAssertEqual(
                (error as? ManifestError)?.errorDescription,
                "manifest.json key model.file has the wrong type: expected a string."
            )
        }
    }

    func testNewerSchemaIsRejected() {
        var object = manifestObject()
        object["schema_version"] = 2

        XCTAssertThrowsError(try decodeManifest(object)) { error in
            XCTAssertEqual((error as? ManifestError)?.keyPath, "schema_version")
        }
    }

    func testInvalidJSONIsReported() {
        XCTAssertThrowsError(try Manifest.decode(from: Data("{\"schema_version\": ".utf8))) { error in
            XCTAssertEqual((error as? ManifestError)?.reason, .invalidJSON)
        }
    }
}
