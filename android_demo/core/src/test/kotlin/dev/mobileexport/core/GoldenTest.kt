package dev.mobileexport.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Reproduces every golden case of every export under tests/golden, byte for byte. */
@RunWith(Parameterized::class)
class GoldenTest(private val fixture: GoldenFixture) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun fixtures(): List<Array<Any>> = GoldenFixtures.all.map { arrayOf<Any>(it) }
    }

    @Test
    fun fixtureHasCases() {
        assertTrue("${fixture.name}/golden.json has no cases", fixture.cases.isNotEmpty())
        assertEquals("labels in ${fixture.name}", fixture.manifest.classes, fixture.labels.size)
    }

    @Test
    fun preparedPixelsMatch() {
        for (case in fixture.cases) {
            val prepared = Preprocessor.prepare(case.photoRgb, case.photoHeight, case.photoWidth, fixture.manifest)
            assertArrayEquals("prepared pixels of ${fixture.name}/${case.name}", unsigned(case.inputRgb), unsigned(prepared))
        }
    }

    @Test
    fun inputTensorMatches() {
        for (case in fixture.cases) {
            val tensor = InputTensor.fromPixels(case.inputRgb, fixture.manifest)
            assertArrayEquals("input tensor of ${fixture.name}/${case.name}", case.inputTensor, tensor)
        }
    }

    @Test
    fun directBufferMatchesTensorBytes() {
        for (case in fixture.cases) {
            val buffer = InputTensor.allocateBuffer(fixture.manifest)
            InputTensor.write(case.inputRgb, fixture.manifest, buffer)
            assertEquals("buffer position after write", 0, buffer.position())
            assertEquals("buffer order after write", ByteOrder.nativeOrder(), buffer.order())
            val bytes = ByteArray(buffer.capacity())
            buffer.duplicate().get(bytes)
            assertArrayEquals("direct buffer of ${fixture.name}/${case.name}", case.inputTensor, bytes)
        }
    }

    @Test
    fun photoToTensorMatches() {
        for (case in fixture.cases) {
            val prepared = Preprocessor.prepare(case.photoRgb, case.photoHeight, case.photoWidth, fixture.manifest)
            val tensor = InputTensor.fromPixels(prepared, fixture.manifest)
            assertArrayEquals("photo to tensor of ${fixture.name}/${case.name}", case.inputTensor, tensor)
        }
    }

    @Test
    fun topKMatches() {
        for (case in fixture.cases) {
            val predictions = Postprocessor.topK(case.outputRaw, fixture.manifest, fixture.labels, case.topK.size)
            val where = "${fixture.name}/${case.name}"
            assertEquals("top-k indices of $where", case.topK.map { it.index }, predictions.map { it.index })
            assertEquals("top-k labels of $where", case.topK.map { it.label }, predictions.map { it.label })
            for ((expected, actual) in case.topK.zip(predictions)) {
                // Python sums the softmax pairwise and Kotlin in order, so the last bits may differ.
                assertEquals("score of class ${expected.index} in $where", expected.score, actual.score, 1e-6)
            }
        }
    }

    @Test
    fun portraitPhotoMatchesTransposed() {
        // The golden photos are landscape, so a transposed photo and model take the other branch
        // of the resize. They must give the transposed golden pixels.
        val manifest = fixture.manifest.copy(inputHeight = fixture.manifest.inputWidth, inputWidth = fixture.manifest.inputHeight)
        for (case in fixture.cases) {
            val photo = transpose(case.photoRgb, case.photoHeight, case.photoWidth)
            val prepared = Preprocessor.prepare(photo, case.photoWidth, case.photoHeight, manifest)
            val expected = transpose(case.inputRgb, fixture.manifest.inputHeight, fixture.manifest.inputWidth)
            assertArrayEquals("transposed ${fixture.name}/${case.name}", unsigned(expected), unsigned(prepared))
        }
    }

    // Pixel values 0..255 read better in a failure message than signed bytes.
    private fun unsigned(bytes: ByteArray): IntArray = IntArray(bytes.size) { bytes[it].toInt() and 0xFF }

    private fun transpose(rgb: ByteArray, height: Int, width: Int): ByteArray {
        val out = ByteArray(rgb.size)
        for (y in 0 until height) {
            for (x in 0 until width) {
                for (c in 0 until 3) out[(x * height + y) * 3 + c] = rgb[(y * width + x) * 3 + c]
            }
        }
        return out
    }
}
