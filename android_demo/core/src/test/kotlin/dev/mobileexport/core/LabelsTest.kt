package dev.mobileexport.core

import org.junit.Assert.assertEquals
import org.junit.Test

class LabelsTest {
    @Test
    fun finalNewline() {
        assertEquals(listOf("tench", "goldfish"), Labels.parse("tench\ngoldfish\n"))
    }

    @Test
    fun noFinalNewline() {
        assertEquals(listOf("tench", "goldfish"), Labels.parse("tench\ngoldfish"))
    }

    @Test
    fun windowsLineEndsAndByteOrderMark() {
        assertEquals(listOf("tench", "goldfish"), Labels.parse("\uFEFFtench\r\ngoldfish\r\n"))
    }

    @Test
    fun blankLineKeepsIndices() {
        assertEquals(listOf("background", "", "goldfish"), Labels.parse("background\n\ngoldfish\n"))
    }

    @Test
    fun labelsWithSpacesAndAccents() {
        assertEquals(listOf("great white shark", "cr\u00eape"), Labels.parse("great white shark\ncr\u00eape\n"))
    }

    @Test
    fun emptyText() {
        assertEquals(emptyList<String>(), Labels.parse(""))
    }
}
