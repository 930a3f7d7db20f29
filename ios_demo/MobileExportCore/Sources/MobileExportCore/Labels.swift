import Foundation

/// Reads `labels.txt`: one class name per line, line `i` (from 0) naming output `i`.
public enum Labels {
    /// Returns the class names in `text`.
    ///
    /// Lines end in `"\n"` or `"\r\n"`, and a byte order mark at the start is ignored, as the Python
    /// reader does. Only `"\n"` ends a line: U+2028 and other separators stay inside a label.
    ///
    /// - Throws: ``LabelsError`` for an empty text or a blank line.
    public static func parse(_ text: String) throws -> [String] {
        var scalars = Substring(text).unicodeScalars
        if scalars.first == "\u{FEFF}" {
            scalars.removeFirst()
        }

        // Split on scalars, not Characters: Swift treats "\r\n" as one Character that is not "\n".
        var lines = scalars.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true {
            lines.removeLast()
        }
        let labels = lines.map { line -> String in
            var label = String(line)
            if label.unicodeScalars.last == "\r" {
                label.unicodeScalars.removeLast()
            }
            return label
        }

        guard !labels.isEmpty else { throw LabelsError.empty }
        if let blank = labels.firstIndex(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) {
            throw LabelsError.blankLine(number: blank + 1)
        }
        return labels
    }
}
