import Foundation
import XCTest

@testable import MobileExportCore

final class PostprocessorTests: XCTestCase {
    private let labels = ["tench", "goldfish", "great white shark", "tiger shark"]

    private func manifest(dtype: String = "int8", scale: Double = 0.5, zeroPoint: Int = 2, kind: String = "logits") throws -> Manifest {
        try decodeManifest(manifestObject(outputDtype: dtype, outputScale: scale, outputZeroPoint: zeroPoint, kind: kind))
    }

    func testProbabilitiesAreDequantizedOnly() throws {
        // (raw - 2) * 0.5 for raw 2, 4, 3, 12.
        let raw = Data([2, 4, 3, 12])

        let scores = try Postprocessor.scores(raw: raw, manifest: manifest(kind: "probabilities"))

        XCTAssertEqual(scores, [0, 1, 0.5, 5])
    }

    func testSoftmaxOfLogits() throws {
        // Logits 0, 1, 0.5, 5 after dequantization.
        let raw = Data([2, 4, 3, 12])

        let scores = try Postprocessor.scores(raw: raw, manifest: manifest())

        let exponentials = [0, 1, 0.5, 5].map { exp($0 - 5) }
        let total = exponentials.reduce(0, +)
        for (score, expected) in zip(scores, exponentials.map { $0 / total }) {
            XCTAssertEqual(score, expected, accuracy: 1e-15)
        }
        XCTAssertEqual(scores.reduce(0, +), 1, accuracy: 1e-12)
    }

    func testTopKOrdersByScoreThenLowerIndex() throws {
        // Dequantized 1, 3, 3, 1: the ties keep class order.
        let raw = Data([4, 8, 8, 4])

        let top = try Postprocessor.topK(raw: raw, manifest: manifest(kind: "probabilities"), labels: labels, k: 4)

        XCTAssertEqual(top.map(\.index), [1, 2, 0, 3])
        XCTAssertEqual(top.map(\.label), ["goldfish", "great white shark", "tench", "tiger shark"])
        XCTAssertEqual(top.map(\.score), [3, 3, 1, 1])
    }

    func testTopKLargerThanClassesReturnsAll() throws {
        let top = try Postprocessor.topK(raw: Data([2, 3, 4, 5]), manifest: manifest(), labels: labels, k: 10)

        XCTAssertEqual(top.map(\.index), [3, 2, 1, 0])
    }

    func testInt8IsSigned() throws {
        // 0xFE is -2 as int8: (-2 - 2) * 0.5 = -2.
        let scores = try Postprocessor.scores(raw: Data([0xFE, 2, 2, 2]), manifest: manifest(kind: "probabilities"))

        XCTAssertEqual(scores, [-2, 0, 0, 0])
    }

    func testInt16IsLittleEndian() throws {
        // 0x0102 = 258 and 0xFFFF = -1, with scale 0.25 and zero point 0.
        let raw = Data([0x02, 0x01, 0xFF, 0xFF, 0x00, 0x00, 0x04, 0x00])

        let scores = try Postprocessor.scores(
            raw: raw, manifest: manifest(dtype: "int16", scale: 0.25, zeroPoint: 0, kind: "probabilities")
        )

        XCTAssertEqual(scores, [64.5, -0.25, 0, 1])
    }

    func testFloat32IsReadAsIs() throws {
        // 0.25 = 0x3E800000 and -1.5 = 0xBFC00000; scale and zero point do not apply.
        let raw = Data([0, 0, 0x80, 0x3E, 0, 0, 0xC0, 0xBF, 0, 0, 0, 0, 0, 0, 0x80, 0x3F])

        let scores = try Postprocessor.scores(
            raw: raw, manifest: manifest(dtype: "float32", scale: 0, zeroPoint: 0, kind: "probabilities")
        )

        XCTAssertEqual(scores, [0.25, -1.5, 0, 1])
    }

    func testNaNRanksLast() throws {
        let raw = Data([0, 0, 0xC0, 0x7F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0, 0, 0, 0x80, 0xBF])

        let top = try Postprocessor.topK(
            raw: raw, manifest: manifest(dtype: "float32", scale: 0, zeroPoint: 0, kind: "probabilities"),
            labels: labels, k: 4
        )

        XCTAssertEqual(top.map(\.index), [1, 2, 3, 0])
    }

    func testWrongRawSizeThrows() throws {
        XCTAssertThrowsError(try Postprocessor.topK(raw: Data([1, 2, 3]), manifest: manifest(), labels: labels, k: 1)) { error in
            XCTAssertEqual(error as? OutputError, .byteCountMismatch(expected: 4, actual: 3, classes: 4, dtype: .int8))
        }
    }

    func testWrongLabelCountThrows() throws {
        XCTAssertThrowsError(try Postprocessor.topK(raw: Data([1, 2, 3, 4]), manifest: manifest(), labels: ["a"], k: 1)) { error in
            XCTAssertEqual(error as? OutputError, .labelCountMismatch(labels: 1, classes: 4))
        }
    }

    func testZeroKThrows() throws {
        XCTAssertThrowsError(try Postprocessor.topK(raw: Data([1, 2, 3, 4]), manifest: manifest(), labels: labels, k: 0)) { error in
            XCTAssertEqual(error as? OutputError, .invalidK(0))
        }
    }
}
