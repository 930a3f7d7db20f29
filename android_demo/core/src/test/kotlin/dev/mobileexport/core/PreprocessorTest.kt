package dev.mobileexport.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

class PreprocessorTest {
    private val square = TestManifests.base

    @Test
    fun resizedSizeLandscape() {
        val manifest = square.copy(inputHeight = 224, inputWidth = 224, cropNumerator = 7, cropDenominator = 8)
        // round(224 * 8 / 7) = 256; round(640 * 256 / 480) = round(341.33) = 341.
        assertEquals(ResizedSize(256, 341), Preprocessor.resizedSize(480, 640, manifest))
    }

    @Test
    fun resizedSizePortrait() {
        val manifest = square.copy(inputHeight = 64, inputWidth = 80, cropNumerator = 7, cropDenominator = 8)
        // 80 * 8 / 7 = 91.43 rounds to 91; 640 * 91 / 480 = 121.33 rounds to 121.
        assertEquals(ResizedSize(121, 91), Preprocessor.resizedSize(640, 480, manifest))
    }

    @Test
    fun resizedSizeKeepsModelWidth() {
        // A photo only slightly wider than the model: the long side is never below the model's.
        val manifest = square.copy(inputHeight = 64, inputWidth = 80, cropNumerator = 1, cropDenominator = 1)
        assertEquals(ResizedSize(64, 80), Preprocessor.resizedSize(100, 125, manifest))
    }

    @Test
    fun tapsShrinkingByTwo() {
        // s = 4, t = 2, support 8. Output 0 is centred at (2*0+1)*4 = 4, so source j weighs
        // 8 - |(2j+1)*2 - 4| = 6, 6, 2, 0; output 1 (centre 12) weighs 0, 2, 6, 6.
        val taps = Preprocessor.taps(source = 4, resized = 2, count = 2, offset = 0)
        assertArrayEquals(intArrayOf(0, 1), taps.first)
        assertArrayEquals(longArrayOf(6, 6, 2), taps.weights[0])
        assertArrayEquals(longArrayOf(2, 6, 6), taps.weights[1])
        assertArrayEquals(longArrayOf(14, 14), taps.sums)
    }

    @Test
    fun tapsEnlarging() {
        // s = 2, t = 4, support 8: output p sits at source position (p + 0.5) / 2 - 0.5, so the
        // outer outputs take one pixel and the inner ones blend two by 1:3 and 3:1.
        val taps = Preprocessor.taps(source = 2, resized = 4, count = 4, offset = 0)
        assertArrayEquals(intArrayOf(0, 0, 0, 1), taps.first)
        assertArrayEquals(longArrayOf(6), taps.weights[0])
        assertArrayEquals(longArrayOf(6, 2), taps.weights[1])
        assertArrayEquals(longArrayOf(2, 6), taps.weights[2])
        assertArrayEquals(longArrayOf(6), taps.weights[3])
    }

    @Test
    fun prepareGradientByHand() {
        // Pixel value 10x + 40y. With the taps above, x gives (6*0 + 6*10 + 2*20) / 14 = 7.14 and
        // (2*10 + 6*20 + 6*30) / 14 = 22.86; y gives 28.57 and 91.43. Sums round to 36, 51, 99, 114.
        val photo = TestManifests.gray(Array(4) { y -> IntArray(4) { x -> 10 * x + 40 * y } })
        val prepared = Preprocessor.prepare(photo, 4, 4, square)
        assertArrayEquals(TestManifests.gray(arrayOf(intArrayOf(36, 51), intArrayOf(99, 114))), prepared)
    }

    @Test
    fun prepareRoundsHalfUp() {
        // A 2x2 photo to 1x1 weighs every pixel by 3 * 3, so the result is the plain mean.
        val one = square.copy(inputHeight = 1, inputWidth = 1)
        val cases = listOf(
            arrayOf(intArrayOf(0, 1), intArrayOf(1, 0)) to 1,
            arrayOf(intArrayOf(0, 0), intArrayOf(0, 1)) to 0,
            arrayOf(intArrayOf(254, 255), intArrayOf(255, 254)) to 255
        )
        for ((pixels, expected) in cases) {
            val prepared = Preprocessor.prepare(TestManifests.gray(pixels), 2, 2, one)
            assertEquals("mean of ${pixels.map { it.toList() }}", expected, prepared[0].toInt() and 0xFF)
        }
    }

    @Test
    fun prepareKeepsChannelsApart() {
        val photo = ByteArray(5 * 7 * 3) { i -> listOf(200, 17, 90)[i % 3].toByte() }
        val manifest = square.copy(inputHeight = 3, inputWidth = 4, cropNumerator = 7, cropDenominator = 8)
        val prepared = Preprocessor.prepare(photo, 5, 7, manifest)
        assertArrayEquals(ByteArray(3 * 4 * 3) { i -> listOf(200, 17, 90)[i % 3].toByte() }, prepared)
    }

    @Test
    fun prepareEnlargesConstantPhoto() {
        // Normalized weights keep a flat colour exactly, enlarging or shrinking.
        val manifest = square.copy(inputHeight = 64, inputWidth = 80, cropNumerator = 7, cropDenominator = 8)
        for ((height, width) in listOf(3 to 5, 9 to 2, 700 to 300)) {
            val photo = ByteArray(height * width * 3) { 173.toByte() }
            val prepared = Preprocessor.prepare(photo, height, width, manifest)
            assertArrayEquals("flat ${height}x$width photo", ByteArray(64 * 80 * 3) { 173.toByte() }, prepared)
        }
    }

    @Test(expected = IllegalArgumentException::class)
    fun prepareRejectsWrongByteCount() {
        Preprocessor.prepare(ByteArray(4 * 4 * 4), 4, 4, square)
    }

    @Test(expected = IllegalArgumentException::class)
    fun prepareRejectsEmptyPhoto() {
        Preprocessor.prepare(ByteArray(0), 0, 4, square)
    }
}
