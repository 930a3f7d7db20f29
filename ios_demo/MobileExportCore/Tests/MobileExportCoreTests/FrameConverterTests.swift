import Foundation
import XCTest

@testable import MobileExportCore

final class FrameConverterTests: XCTestCase {
    /// A 2 x 3 BGRA frame whose pixel (y, x) has blue 10y + x, green 100 + 10y + x, red 200 + 10y + x,
    /// with 4 padding bytes after each row.
    private let bytesPerRow = 3 * 4 + 4
    private lazy var frame: [UInt8] = (0..<2).flatMap { y -> [UInt8] in
        (0..<3).flatMap { x -> [UInt8] in
            let base = UInt8(10 * y + x)
            return [base, 100 + base, 200 + base, 255]
        } + [9, 9, 9, 9]
    }

    /// Converts `frame` and returns the image with its red values, row by row.
    private func convert(_ rotation: FrameRotation) throws -> (image: RGBImage, red: [[UInt8]]) {
        let image = try frame.withUnsafeBytes {
            try FrameConverter.rgb(bgra: $0, height: 2, width: 3, bytesPerRow: bytesPerRow, rotation: rotation)
        }
        let red = (0..<image.height).map { y in (0..<image.width).map { x in image.pixels[(y * image.width + x) * 3] } }
        return (image, red)
    }

    func testChannelsBecomeRGB() throws {
        let (image, _) = try convert(.none)

        XCTAssertEqual(Array(image.pixels.prefix(6)), [200, 100, 0, 201, 101, 1])
    }

    func testNoRotationDropsRowPadding() throws {
        let (image, red) = try convert(.none)

        XCTAssertEqual(image.height, 2)
        XCTAssertEqual(image.width, 3)
        XCTAssertEqual(image.pixels.count, 2 * 3 * 3)
        XCTAssertEqual(red, [[200, 201, 202], [210, 211, 212]])
    }

    func testClockwise90() throws {
        let (image, red) = try convert(.clockwise90)

        XCTAssertEqual(image.height, 3)
        XCTAssertEqual(image.width, 2)
        XCTAssertEqual(red, [[210, 200], [211, 201], [212, 202]])
    }

    func testUpsideDown180() throws {
        let (_, red) = try convert(.upsideDown180)

        XCTAssertEqual(red, [[212, 211, 210], [202, 201, 200]])
    }

    func testCounterclockwise90() throws {
        let (image, red) = try convert(.counterclockwise90)

        XCTAssertEqual(image.height, 3)
        XCTAssertEqual(image.width, 2)
        XCTAssertEqual(red, [[202, 212], [201, 211], [200, 210]])
    }

    func testEveryRotationKeepsPixelsWhole() throws {
        for rotation in FrameRotation.allCases {
            let (image, _) = try convert(rotation)
            for pixel in stride(from: 0, to: image.pixels.count, by: 3) {
                XCTAssertEqual(image.pixels[pixel + 1], image.pixels[pixel] - 100, "\(rotation)")
                XCTAssertEqual(image.pixels[pixel + 2], image.pixels[pixel] - 200, "\(rotation)")
            }
        }
    }

    func testShortBufferThrows() {
        let short = [UInt8](repeating: 0, count: 20)

        XCTAssertThrowsError(try short.withUnsafeBytes {
            try FrameConverter.rgb(bgra: $0, height: 2, width: 3, bytesPerRow: 16, rotation: .none)
        }) { error in
            XCTAssertEqual(
                error as? InputError,
                .byteCountMismatch(what: "2x3 BGRA frame with 16 bytes per row", expected: 28, actual: 20)
            )
        }
    }

    func testNarrowRowStrideThrows() {
        let bytes = [UInt8](repeating: 0, count: 64)

        XCTAssertThrowsError(try bytes.withUnsafeBytes {
            try FrameConverter.rgb(bgra: $0, height: 2, width: 3, bytesPerRow: 8, rotation: .none)
        }) { error in
            XCTAssertEqual(error as? InputError, .invalidRowStride(bytesPerRow: 8, width: 3))
        }
    }
}
