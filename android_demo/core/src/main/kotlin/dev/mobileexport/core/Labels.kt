package dev.mobileexport.core

/** Reads labels.txt: one label per line, line `i` naming output class `i`. */
object Labels {
    /**
     * Parses labels.txt text. Accepts "\n" or "\r\n" line ends, a final newline or none, and a
     * leading byte order mark. Blank lines inside the file stay, so later labels keep their index.
     */
    fun parse(text: String): List<String> {
        var body = text.removePrefix("\uFEFF")
        if (body.endsWith("\n")) body = body.substring(0, body.length - 1)
        if (body.isEmpty()) return emptyList()
        return body.split("\n").map { it.removeSuffix("\r") }
    }
}
