package dev.mobileexport.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class JsonTest {
    private fun parseObject(text: String): JsonObject = Json.parse(text) as JsonObject

    private fun assertInvalid(text: String, messagePart: String) {
        try {
            Json.parse(text)
            fail("Parsed invalid JSON: $text")
        } catch (error: JsonException) {
            assertTrue("message \"${error.message}\" should contain \"$messagePart\"", error.message.orEmpty().contains(messagePart))
        }
    }

    @Test
    fun stringEscapes() {
        val value = Json.parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"")
        assertEquals(JsonString("q\" b\\ s/ \b\u000C\n\r\t"), value)
    }

    @Test
    fun unicodeEscapes() {
        assertEquals(JsonString("caf\u00e9"), Json.parse("\"caf\\u00E9\""))
        // U+1F600 arrives as a surrogate pair and must come back as one code point.
        val emoji = (Json.parse("\"\\ud83d\\ude00\"") as JsonString).value
        assertEquals(1, emoji.codePointCount(0, emoji.length))
        assertEquals(0x1F600, emoji.codePointAt(0))
    }

    @Test
    fun rawUtf8Text() {
        assertEquals(JsonString("Blenheim spaniel \u00e9\u4e2d"), Json.parse("\"Blenheim spaniel \u00e9\u4e2d\""))
    }

    @Test
    fun nestedValues() {
        val root = parseObject("""{"a": {"b": [1, [2, {"c": null}], true, false]}, "d": []}""")
        val items = ((root["a"] as JsonObject)["b"] as JsonArray).items
        assertEquals(4, items.size)
        assertEquals(1L, (items[0] as JsonNumber).longValue)
        val inner = (items[1] as JsonArray).items
        assertEquals(JsonNull, (inner[1] as JsonObject)["c"])
        assertEquals(JsonBoolean(true), items[2])
        assertEquals(JsonBoolean(false), items[3])
        assertEquals(JsonArray(emptyList()), root["d"])
    }

    @Test
    fun memberOrderAndRepeatedKey() {
        val root = parseObject("""{"z": 1, "a": 2, "z": 3}""")
        assertEquals(listOf("z", "a"), root.members.keys.toList())
        assertEquals(3L, (root["z"] as JsonNumber).longValue)
    }

    @Test
    fun numbers() {
        val items = (Json.parse("[1e-05, -128, 0.875, 1E+2, -0.0, 0, 9007199254740993, 12345678901234567890]") as JsonArray).items
            .map { it as JsonNumber }
        assertEquals(1e-05, items[0].doubleValue, 0.0)
        assertNull(items[0].longValue)
        assertEquals(-128L, items[1].longValue)
        assertEquals(0.875, items[2].doubleValue, 0.0)
        assertEquals(100.0, items[3].doubleValue, 0.0)
        assertNull(items[3].longValue)
        assertEquals(-0.0, items[4].doubleValue, 0.0)
        assertEquals(0L, items[5].longValue)
        // Integers are exact even where a double is not.
        assertEquals(9007199254740993L, items[6].longValue)
        // Beyond Long the value is still readable as a double.
        assertNull(items[7].longValue)
        assertEquals(1.2345678901234567e19, items[7].doubleValue, 1e4)
    }

    @Test
    fun whitespaceAroundValue() {
        assertEquals(JsonBoolean(true), Json.parse(" \n\t true \r\n"))
    }

    @Test
    fun invalidTexts() {
        assertInvalid("", "Unexpected end")
        assertInvalid("[1, 2,]", "Unexpected ']'")
        assertInvalid("{\"a\": 1,}", "Expected a string key")
        assertInvalid("{\"a\" 1}", "Expected ':'")
        assertInvalid("[1 2]", "expected ',' or ']'")
        assertInvalid("\"open", "Unterminated string")
        assertInvalid("\"bad \\x escape\"", "Invalid escape")
        assertInvalid("\"\\u12G4\"", "Invalid hex digit")
        assertInvalid("\"tab\there\"", "control character U+0009")
        assertInvalid("01", "Leading zero")
        assertInvalid("1.", "Expected a digit")
        assertInvalid("-", "Expected a digit")
        assertInvalid("1e", "Expected a digit")
        assertInvalid("tru", "Unexpected 't'")
        assertInvalid("{} {}", "after the JSON value")
        assertInvalid("[".repeat(Json.MAX_DEPTH + 2), "nested deeper")
    }

    @Test
    fun errorOffset() {
        try {
            Json.parse("[1, x]")
            fail("Parsed invalid JSON")
        } catch (error: JsonException) {
            assertEquals(4, error.offset)
        }
    }
}
