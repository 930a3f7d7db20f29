import Foundation
import XCTest

@testable import MobileExportCore

final class PreprocessorTests: XCTestCase {
    func testResizedSizeOfLandscapePhoto() {
        // 451 * 64 >= 300 * 80: the height gets round(64 * 8 / 7) = 73, the width round(451 * 73 / 300) = 110.
        let size = Preprocessor.resizedSize(
            photoHeight: 300, photoWidth: 451, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )

        XCTAssertEqual(size.height, 73)
        XCTAssertEqual(size.width, 110)
    }

    func testResizedSizeOfPortraitPhoto() {
        // 300 * 80 < 451 * 64: the width gets round(80 * 8 / 7) = 91, the height round(451 * 91 / 300) = 137.
        let size = Preprocessor.resizedSize(
            photoHeight: 451, photoWidth: 300, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )

        XCTAssertEqual(size.height, 137)
        XCTAssertEqual(size.width, 91)
    }

    func testResizedSizeRoundsHalfUp() {
        // 5 * 73 / 2 = 182.5 rounds up to 183, where rounding half to even would give 182.
        let size = Preprocessor.resizedSize(
            photoHeight: 2, photoWidth: 5, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )

        XCTAssertEqual(size.height, 73)
        XCTAssertEqual(size.width, 183)
    }

    func testPhotoAtResizedSizeIsCroppedUnchanged() throws {
        // 73 x 100 is already the resized size for a 64 x 80 input, so every weight but one is zero.
        let photo = randomPhoto(height: 73, width: 100, seed: 1)

        let prepared = try Preprocessor.prepare(
            rgb: photo, photoHeight: 73, photoWidth: 100, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )

        let top = (73 - 64) / 2, left = (100 - 80) / 2
        var expected: [UInt8] = []
        for y in top..<(top + 64) {
            expected += photo[((y * 100 + left) * 3)..<((y * 100 + left + 80) * 3)]
        }
        XCTAssertTrue(prepared == expected, firstDifference(prepared, expected))
    }

    func testConstantPhotoStaysConstant() throws {
        let photo = [UInt8](repeating: 0, count: 37 * 517 * 3).enumerated().map { offset, _ -> UInt8 in [200, 17, 255][offset % 3] }

        let prepared = try Preprocessor.prepare(
            rgb: photo, photoHeight: 37, photoWidth: 517, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )

        XCTAssertEqual(prepared.count, 64 * 80 * 3)
        XCTAssertEqual(Set(stride(from: 0, to: prepared.count, by: 3).map { prepared[$0] }), [200])
        XCTAssertEqual(Set(stride(from: 1, to: prepared.count, by: 3).map { prepared[$0] }), [17])
        XCTAssertEqual(Set(stride(from: 2, to: prepared.count, by: 3).map { prepared[$0] }), [255])
    }

    func testPortraitIsTransposeOfLandscape() throws {
        // The algorithm is symmetric in its axes, so a transposed photo into a transposed model size must
        // give the transposed result, through the other branch of the resize, whatever the fixtures hold.
        let height = 211, width = 343
        let photo = randomPhoto(height: height, width: width, seed: 7)

        let landscape = try Preprocessor.prepare(
            rgb: photo, photoHeight: height, photoWidth: width, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )
        let portrait = try Preprocessor.prepare(
            rgb: transpose(photo, height: height, width: width), photoHeight: width, photoWidth: height,
            height: 80, width: 64, cropNumerator: 7, cropDenominator: 8
        )

        let expected = transpose(landscape, height: 64, width: 80)
        XCTAssertTrue(portrait == expected, firstDifference(portrait, expected))
    }

    func testUpscalesSmallPhoto() throws {
        // A 2 x 2 photo blown up to 256 x 256 then cropped: the corners keep their colours exactly.
        let photo: [UInt8] = [0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0]

        let prepared = try Preprocessor.prepare(
            rgb: photo, photoHeight: 2, photoWidth: 2, height: 224, width: 224, cropNumerator: 7, cropDenominator: 8
        )

        XCTAssertEqual(prepared.count, 224 * 224 * 3)
        XCTAssertEqual(Array(prepared[0..<3]), [0, 0, 0])
        XCTAssertEqual(Array(prepared[(223 * 3)..<(224 * 3)]), [255, 255, 255])
        XCTAssertEqual(prepared.min(), 0)
        XCTAssertEqual(prepared.max(), 255)
    }

    func testWrongByteCountThrows() {
        XCTAssertThrowsError(try Preprocessor.prepare(
            rgb: [UInt8](repeating: 0, count: 10), photoHeight: 2, photoWidth: 2,
            height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )) { error in
            XCTAssertEqual(error as? InputError, .byteCountMismatch(what: "photo of 2x2 RGB pixels", expected: 12, actual: 10))
        }
    }

    func testEmptyPhotoThrows() {
        XCTAssertThrowsError(try Preprocessor.prepare(
            rgb: [], photoHeight: 0, photoWidth: 5, height: 64, width: 80, cropNumerator: 7, cropDenominator: 8
        )) { error in
            XCTAssertEqual(error as? InputError, .invalidPhotoSize(height: 0, width: 5))
        }
    }

    func testManifestOverloadUsesManifestSize() throws {
        let manifest = try decodeManifest(manifestObject(shape: [1, 48, 40, 3]))
        let photo = randomPhoto(height: 90, width: 120, seed: 3)

        let prepared = try Preprocessor.prepare(rgb: photo, photoHeight: 90, photoWidth: 120, manifest: manifest)

        XCTAssertEqual(prepared.count, 48 * 40 * 3)
    }
}

/// Returns deterministic pseudo-random RGB bytes from a 64-bit linear congruential generator.
func randomPhoto(height: Int, width: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<(height * width * 3)).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// Swaps the rows and columns of an RGB image.
func transpose(_ rgb: [UInt8], height: Int, width: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: rgb.count)
    for y in 0..<height {
        for x in 0..<width {
            for channel in 0..<3 {
                out[(x * height + y) * 3 + channel] = rgb[(y * width + x) * 3 + channel]
            }
        }
    }
    return out
}
