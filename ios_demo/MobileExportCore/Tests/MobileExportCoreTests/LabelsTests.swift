import Foundation
import XCTest

@testable import MobileExportCore

final class LabelsTests: XCTestCase {
    func testOneLabelPerLine() throws {
        XCTAssertEqual(try Labels.parse("tench\ngoldfish\ngreat white shark\n"), ["tench", "goldfish", "great white shark"])
    }

    func testWithoutFinalNewline() throws {
        XCTAssertEqual(try Labels.parse("tench\ngoldfish"), ["tench", "goldfish"])
    }

    func testWindowsLineEnds() throws {
        XCTAssertEqual(try Labels.parse("tench\r\ngoldfish\r\n"), ["tench", "goldfish"])
    }

    func testByteOrderMarkIsIgnored() throws {
        XCTAssertEqual(try Labels.parse("\u{FEFF}tench\ngoldfish\n"), ["tench", "goldfish"])
    }

    func testOnlyNewlineSplits() throws {
        // U+2028 and U+0085 stay inside a label, as in the Python reader.
        XCTAssertEqual(try Labels.parse("a\u{2028}b\nc\u{85}d\n"), ["a\u{2028}b", "c\u{85}d"])
    }

    func testEmptyTextThrows() {
        XCTAssertThrowsError(try Labels.parse("")) { error in
            XCTAssertEqual(error as? LabelsError, .empty)
        }
    }

    func testBlankLineThrowsWithLineNumber() {
        XCTAssertThrowsError(try Labels.parse("tench\n  \ngoldfish\n")) { error in
            XCTAssertEqual(error as? LabelsError, .blankLine(number: 2))
        }
    }
}
