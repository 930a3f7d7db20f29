package dev.mobileexport.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test
import java.nio.ByteBuffer

class FrameConverterTest {
    // A 2-row, 3-column frame:  a b c / d e f. Pixel n has RGB (10n, 10n + 1, 10n + 2) and
    // alpha 255; rows are 16 bytes long, 4 of them padding.
    private val rowStride = 16
    private val frame: ByteBuffer = ByteBuffer.allocateDirect(rowStride + 3 * 4).also { buffer ->
        for (n in 0 until 6) {
            val offset = (n / 3) * rowStride + (n % 3) * 4
            buffer.put(offset, (10 * n).toByte())
            buffer.put(offset + 1, (10 * n + 1).toByte())
            buffer.put(offset + 2, (10 * n + 2).toByte())
            buffer.put(offset + 3, 255.toByte())
        }
    }

    /** RGB bytes of pixels a..f listed by index (a = 0, f = 5). */
    private fun rgb(vararg pixels: Int): ByteArray {
        val out = ByteArray(pixels.size * 3)
        for ((i, n) in pixels.withIndex()) {
            out[3 * i] = (10 * n).toByte()
            out[3 * i + 1] = (10 * n + 1).toByte()
            out[3 * i + 2] = (10 * n + 2).toByte()
        }
        return out
    }

    private fun convert(rotation: Int, left: Int = 0, top: Int = 0, width: Int = 3, height: Int = 2): RgbImage =
        FrameConverter.rgbaToRgb(frame, rowStride, 4, left, top, width, height, rotation)

    @Test
    fun noRotation() {
        val image = convert(0)
        assertEquals(2, image.height)
        assertEquals(3, image.width)
        assertArrayEquals(rgb(0, 1, 2, 3, 4, 5), image.pixels)
    }

    @Test
    fun quarterTurnClockwise() {
        // Upright:  d a / e b / f c.
        val image = convert(90)
        assertEquals(3, image.height)
        assertEquals(2, image.width)
        assertArrayEquals(rgb(3, 0, 4, 1, 5, 2), image.pixels)
    }

    @Test
    fun halfTurn() {
        assertArrayEquals(rgb(5, 4, 3, 2, 1, 0), convert(180).pixels)
    }

    @Test
    fun threeQuarterTurn() {
        // Upright:  c f / b e / a d.
        val image = convert(270)
        assertEquals(3, image.height)
        assertArrayEquals(rgb(2, 5, 1, 4, 0, 3), image.pixels)
    }

    @Test
    fun cropRegion() {
        assertArrayEquals(rgb(1, 2, 4, 5), convert(0, left = 1, width = 2).pixels)
        assertArrayEquals(rgb(4, 5), convert(0, left = 1, top = 1, width = 2, height = 1).pixels)
    }

    @Test
    fun keepsBufferPosition() {
        frame.position(5)
        convert(90)
        assertEquals(5, frame.position())
    }

    @Test(expected = IllegalArgumentException::class)
    fun rejectsOddRotation() {
        convert(45)
    }

    @Test(expected = IllegalArgumentException::class)
    fun rejectsRegionPastBuffer() {
        convert(0, top = 1, height = 2)
    }
}
