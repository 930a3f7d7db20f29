import Foundation
import XCTest

@testable import MobileExportCore

final class InputTensorTests: XCTestCase {
    private let pixelCount = 2 * 2 * 3

    private func tensor(_ pixels: [UInt8], dtype: String, scale: Double, zeroPoint: Int) throws -> [UInt8] {
        let manifest = try decodeManifest(manifestObject(
            shape: [1, 2, 2, 3], inputDtype: dtype, inputScale: scale, inputZeroPoint: zeroPoint
        ))
        return try [UInt8](InputTensor.bytes(pixels: pixels, manifest: manifest))
    }

    private func pixels(_ head: [UInt8]) -> [UInt8] {
        head + [UInt8](repeating: 0, count: pixelCount - head.count)
    }

    func testInt8ShiftsByZeroPoint() throws {
        let bytes = try tensor(pixels([0, 1, 127, 128, 255]), dtype: "int8", scale: 1, zeroPoint: -128)

        XCTAssertEqual(Array(bytes.prefix(5)).map { Int8(bitPattern: $0) }, [-128, -127, -1, 0, 127])
    }

    func testUInt8WithUnitScaleIsIdentity() throws {
        let input = pixels([0, 9, 128, 254, 255])

        XCTAssertEqual(try tensor(input, dtype: "uint8", scale: 1, zeroPoint: 0), input)
    }

    func testRoundsHalfToEven() throws {
        // 1/2 = 0.5 -> 0, 3/2 = 1.5 -> 2, 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4.
        let bytes = try tensor(pixels([1, 3, 5, 7]), dtype: "uint8", scale: 2, zeroPoint: 0)

        XCTAssertEqual(Array(bytes.prefix(4)), [0, 2, 2, 4])
    }

    func testClampsToDtypeRange() throws {
        // 200 / 0.5 = 400 and 100 / 0.5 - 128 = 72, both clamped or kept within int8.
        let bytes = try tensor(pixels([200, 100, 0]), dtype: "int8", scale: 0.5, zeroPoint: -128)

        XCTAssertEqual(Array(bytes.prefix(3)).map { Int8(bitPattern: $0) }, [127, 72, -128])
    }

    func testInt16IsLittleEndian() throws {
        // 255 * 128 - 5 = 32635 = 0x7F7B; 1 * 128 - 5 = 123 = 0x007B; 0 - 5 = -5 = 0xFFFB.
        let bytes = try tensor(pixels([255, 1, 0]), dtype: "int16", scale: 1.0 / 128, zeroPoint: -5)

        XCTAssertEqual(bytes.count, pixelCount * 2)
        XCTAssertEqual(Array(bytes.prefix(6)), [0x7B, 0x7F, 0x7B, 0x00, 0xFB, 0xFF])
    }

    func testInt16Clamps() throws {
        let bytes = try tensor(pixels([255]), dtype: "int16", scale: 0.001, zeroPoint: 0)

        XCTAssertEqual(Array(bytes.prefix(2)), [0xFF, 0x7F])
    }

    func testFloat32IsPixelValueLittleEndian() throws {
        // 1.0 = 0x3F800000, 255.0 = 0x437F0000.
        let bytes = try tensor(pixels([1, 255]), dtype: "float32", scale: 0, zeroPoint: 0)

        XCTAssertEqual(bytes.count, pixelCount * 4)
        XCTAssertEqual(Array(bytes.prefix(8)), [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x7F, 0x43])
    }

    func testWrongPixelCountThrows() throws {
        let manifest = try decodeManifest(manifestObject(shape: [1, 2, 2, 3]))

        XCTAssertThrowsError(try InputTensor.bytes(pixels: [1, 2, 3], manifest: manifest)) { error in
            XCTAssertEqual(
                error as? InputError,
                .byteCountMismatch(what: "model input of 2x2 RGB pixels", expected: 12, actual: 3)
            )
        }
    }
}
