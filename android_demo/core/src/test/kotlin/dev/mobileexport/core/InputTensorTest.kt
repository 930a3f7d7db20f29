package dev.mobileexport.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

class InputTensorTest {
    // One row of two pixels: six values that hit every rounding case below.
    private val pixels = byteArrayOf(0, 1, 3, 5, 200.toByte(), 255.toByte())
    private val row = TestManifests.base.copy(inputHeight = 1, inputWidth = 2)

    private fun shortsLittleEndian(vararg values: Int): ByteArray {
        val buffer = ByteBuffer.allocate(values.size * 2).order(ByteOrder.LITTLE_ENDIAN)
        for ((i, value) in values.withIndex()) buffer.putShort(2 * i, value.toShort())
        return buffer.array()
    }

    @Test
    fun uint8IsPixelValue() {
        assertArrayEquals(pixels, InputTensor.fromPixels(pixels, row))
    }

    @Test
    fun int8ShiftsByZeroPoint() {
        val manifest = row.copy(inputType = TensorType.INT8, inputScale = 1.0, inputZeroPoint = -128)
        assertArrayEquals(byteArrayOf(-128, -127, -125, -123, 72, 127), InputTensor.fromPixels(pixels, manifest))
    }

    @Test
    fun int8ClampsToRange() {
        // 200 / 0.5 + 10 = 410 and 255 / 0.5 + 10 = 520 clamp to 127.
        val manifest = row.copy(inputType = TensorType.INT8, inputScale = 0.5, inputZeroPoint = 10)
        assertArrayEquals(byteArrayOf(10, 12, 16, 20, 127, 127), InputTensor.fromPixels(pixels, manifest))
    }

    @Test
    fun int16RoundsHalfToEven() {
        // v / 2 = 0, 0.5, 1.5, 2.5, 100, 127.5 round to 0, 0, 2, 2, 100, 128.
        val manifest = row.copy(inputType = TensorType.INT16, inputScale = 2.0, inputZeroPoint = 0)
        assertArrayEquals(shortsLittleEndian(0, 0, 2, 2, 100, 128), InputTensor.fromPixels(pixels, manifest))
    }

    @Test
    fun int16ClampsAndUsesZeroPoint() {
        val manifest = row.copy(inputType = TensorType.INT16, inputScale = 0.001, inputZeroPoint = -100)
        assertArrayEquals(
            shortsLittleEndian(-100, 900, 2900, 4900, 32767, 32767),
            InputTensor.fromPixels(pixels, manifest)
        )
    }

    @Test
    fun float32IsLittleEndianValue() {
        val manifest = row.copy(inputType = TensorType.FLOAT32, inputScale = 0.0, inputZeroPoint = 0)
        val bytes = InputTensor.fromPixels(pixels, manifest)
        assertEquals(24, bytes.size)
        // 1.0f is 0x3F800000, little-endian 00 00 80 3F.
        assertArrayEquals(byteArrayOf(0, 0, 0x80.toByte(), 0x3F), bytes.copyOfRange(4, 8))
        val values = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
        for (i in pixels.indices) assertEquals(pixels[i].toInt() and 0xFF, values.getFloat(4 * i).toInt())
    }

    @Test
    fun writeStartsAtPositionAndKeepsIt() {
        val manifest = row.copy(inputType = TensorType.INT16, inputScale = 2.0, inputZeroPoint = 0)
        val buffer = ByteBuffer.allocate(20).order(ByteOrder.BIG_ENDIAN)
        buffer.position(3)
        InputTensor.write(pixels, manifest, buffer)
        assertEquals(3, buffer.position())
        assertEquals(ByteOrder.BIG_ENDIAN, buffer.order())
        assertArrayEquals(shortsLittleEndian(0, 0, 2, 2, 100, 128), buffer.array().copyOfRange(3, 15))
    }

    @Test(expected = IllegalArgumentException::class)
    fun writeRejectsShortBuffer() {
        InputTensor.write(pixels, row, ByteBuffer.allocate(5))
    }

    @Test(expected = IllegalArgumentException::class)
    fun fromPixelsRejectsWrongCount() {
        InputTensor.fromPixels(ByteArray(5), row)
    }
}
