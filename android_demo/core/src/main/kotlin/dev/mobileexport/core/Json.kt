package dev.mobileexport.core

/** A parsed JSON value. Object members keep their order in the text, and a repeated key keeps its last value. */
sealed class JsonValue

data class JsonObject(val members: Map<String, JsonValue>) : JsonValue() {
    operator fun get(key: String): JsonValue? = members[key]
}

data class JsonArray(val items: List<JsonValue>) : JsonValue()

data class JsonString(val value: String) : JsonValue()

/**
 * A JSON number. [longValue] is set when the literal is an integer (no fraction, no exponent)
 * that fits in a Long, so integers such as zero points are read exactly.
 */
data class JsonNumber(val doubleValue: Double, val longValue: Long?) : JsonValue()

data class JsonBoolean(val value: Boolean) : JsonValue()

object JsonNull : JsonValue() {
    override fun toString(): String = "JsonNull"
}

/** Invalid JSON text. [offset] is the character index where parsing stopped. */
class JsonException(message: String, val offset: Int) : RuntimeException("$message at character $offset")

/**
 * Parses JSON text (RFC 8259) into [JsonValue]s.
 *
 * The JDK and the Kotlin standard library have no JSON parser, and the core module takes no
 * outside dependencies, so this small recursive-descent parser reads manifest.json and golden.json.
 */
object Json {
    /** Nesting deeper than this is rejected, so hostile input cannot overflow the thread's stack. */
    const val MAX_DEPTH = 256

    fun parse(text: String): JsonValue {
        val parser = Parser(text)
        parser.skipWhitespace()
        val value = parser.readValue(depth = 0)
        parser.skipWhitespace()
        if (!parser.atEnd()) {
            throw JsonException("Unexpected '${text[parser.position]}' after the JSON value", parser.position)
        }
        return value
    }

    private class Parser(private val text: String) {
        var position = 0

        fun atEnd(): Boolean = position >= text.length

        fun skipWhitespace() {
            while (!atEnd()) {
                val c = text[position]
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return
                position++
            }
        }

        fun readValue(depth: Int): JsonValue {
            if (depth > MAX_DEPTH) throw JsonException("JSON nested deeper than $MAX_DEPTH levels", position)
            if (atEnd()) throw JsonException("Unexpected end of JSON text, expected a value", position)
            val c = text[position]
            return when {
                c == '{' -> readObject(depth)
                c == '[' -> readArray(depth)
                c == '"' -> JsonString(readString())
                c == '-' || c in '0'..'9' -> readNumber()
                text.startsWith("true", position) -> readLiteral("true", JsonBoolean(true))
                text.startsWith("false", position) -> readLiteral("false", JsonBoolean(false))
                text.startsWith("null", position) -> readLiteral("null", JsonNull)
                else -> throw JsonException("Unexpected '$c', expected a value", position)
            }
        }

        private fun readLiteral(word: String, value: JsonValue): JsonValue {
            position += word.length
            return value
        }

        private fun readObject(depth: Int): JsonObject {
            position++
            val members = LinkedHashMap<String, JsonValue>()
            skipWhitespace()
            if (!atEnd() && text[position] == '}') {
                position++
                return JsonObject(members)
            }
            while (true) {
                skipWhitespace()
                if (atEnd() || text[position] != '"') throw JsonException("Expected a string key in an object", position)
                val key = readString()
                skipWhitespace()
                expect(':')
                skipWhitespace()
                members[key] = readValue(depth + 1)
                skipWhitespace()
                if (atEnd()) throw JsonException("Unterminated object, expected ',' or '}'", position)
                when (text[position]) {
                    ',' -> position++
                    '}' -> {
                        position++
                        return JsonObject(members)
                    }
                    else -> throw JsonException("Unexpected '${text[position]}' in an object, expected ',' or '}'", position)
                }
            }
        }

        private fun readArray(depth: Int): JsonArray {
            position++
            val items = ArrayList<JsonValue>()
            skipWhitespace()
            if (!atEnd() && text[position] == ']') {
                position++
                return JsonArray(items)
            }
            while (true) {
                skipWhitespace()
                items.add(readValue(depth + 1))
                skipWhitespace()
                if (atEnd()) throw JsonException("Unterminated array, expected ',' or ']'", position)
                when (text[position]) {
                    ',' -> position++
                    ']' -> {
                        position++
                        return JsonArray(items)
                    }
                    else -> throw JsonException("Unexpected '${text[position]}' in an array, expected ',' or ']'", position)
                }
            }
        }

        private fun expect(c: Char) {
            if (atEnd() || text[position] != c) throw JsonException("Expected '$c'", position)
            position++
        }

        private fun readString(): String {
            val start = position
            position++
            val out = StringBuilder()
            while (true) {
                if (atEnd()) throw JsonException("Unterminated string", start)
                val c = text[position]
                when {
                    c == '"' -> {
                        position++
                        return out.toString()
                    }
                    c == '\\' -> out.append(readEscape())
                    c < ' ' -> throw JsonException("Unescaped control character U+%04X in a string".format(text.codePointAt(position)), position)
                    else -> {
                        out.append(c)
                        position++
                    }
                }
            }
        }

        private fun readEscape(): Char {
            val start = position
            position++
            if (atEnd()) throw JsonException("Unterminated escape sequence", start)
            val c = text[position]
            position++
            return when (c) {
                '"' -> '"'
                '\\' -> '\\'
                '/' -> '/'
                'b' -> '\b'
                'f' -> '\u000C'
                'n' -> '\n'
                'r' -> '\r'
                't' -> '\t'
                // A character outside the BMP arrives as two \u escapes (a surrogate pair), and
                // appending both UTF-16 units in order rebuilds it.
                'u' -> readHexCodeUnit(start)
                else -> throw JsonException("Invalid escape '\\$c'", start)
            }
        }

        private fun readHexCodeUnit(start: Int): Char {
            if (position + 4 > text.length) throw JsonException("Incomplete \\u escape", start)
            var code = 0
            for (i in 0 until 4) {
                val digit = Character.digit(text[position + i], 16)
                if (digit < 0) throw JsonException("Invalid hex digit '${text[position + i]}' in a \\u escape", position + i)
                code = code * 16 + digit
            }
            position += 4
            return code.toChar()
        }

        private fun readNumber(): JsonNumber {
            val start = position
            if (text[position] == '-') position++
            if (atEnd() || text[position] !in '0'..'9') throw JsonException("Expected a digit", position)
            if (text[position] == '0') {
                position++
                if (!atEnd() && text[position] in '0'..'9') throw JsonException("Leading zero in a number", start)
            } else {
                skipDigits()
            }
            var integer = true
            if (!atEnd() && text[position] == '.') {
                integer = false
                position++
                requireDigit()
                skipDigits()
            }
            if (!atEnd() && (text[position] == 'e' || text[position] == 'E')) {
                integer = false
                position++
                if (!atEnd() && (text[position] == '+' || text[position] == '-')) position++
                requireDigit()
                skipDigits()
            }
            val literal = text.substring(start, position)
            val longValue = if (integer) literal.toLongOrNull() else null
            return JsonNumber(literal.toDouble(), longValue)
        }

        private fun requireDigit() {
            if (atEnd() || text[position] !in '0'..'9') throw JsonException("Expected a digit", position)
        }

        private fun skipDigits() {
            while (!atEnd() && text[position] in '0'..'9') position++
        }
    }
}
