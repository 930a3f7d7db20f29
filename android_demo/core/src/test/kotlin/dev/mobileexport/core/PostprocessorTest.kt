package dev.mobileexport.core

import org.junit.Assert.assertEquals
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

class PostprocessorTest {
    private val labels = listOf("tench", "goldfish", "great white shark", "tiger shark")
    private val uint8Logits = TestManifests.base

    @Test
    fun softmaxOfUint8Logits() {
        // zero point 1, scale 0.5: raw 5, 9, 9, 1 are logits 2, 4, 4, 0.
        val manifest = uint8Logits.copy(outputScale = 0.5, outputZeroPoint = 1)
        val scores = Postprocessor.scores(byteArrayOf(5, 9, 9, 1), manifest)
        val sum = Math.exp(-2.0) + 1.0 + 1.0 + Math.exp(-4.0)
        assertEquals(Math.exp(-2.0) / sum, scores[0], 1e-15)
        assertEquals(1.0 / sum, scores[1], 1e-15)
        assertEquals(1.0 / sum, scores[2], 1e-15)
        assertEquals(Math.exp(-4.0) / sum, scores[3], 1e-15)
    }

    @Test
    fun tiesKeepLowerIndexFirst() {
        val top = Postprocessor.topK(byteArrayOf(5, 9, 9, 1), uint8Logits, labels, k = 3)
        assertEquals(listOf(1, 2, 0), top.map { it.index })
        assertEquals(listOf("goldfish", "great white shark", "tench"), top.map { it.label })
        assertEquals(top[0].score, top[1].score, 0.0)
    }

    @Test
    fun tiesAcrossWholeOutput() {
        val top = Postprocessor.topK(byteArrayOf(7, 7, 7, 7), uint8Logits, labels, k = 4)
        assertEquals(listOf(0, 1, 2, 3), top.map { it.index })
        for (prediction in top) assertEquals(0.25, prediction.score, 1e-15)
    }

    @Test
    fun int8ProbabilitiesDequantizedOnly() {
        // (raw + 10) * 0.5: -10 -> 0, 10 -> 10, -128 -> -59, 127 -> 68.5, with no softmax.
        val manifest = uint8Logits.copy(
            outputType = TensorType.INT8, outputScale = 0.5, outputZeroPoint = -10, outputKind = OutputKind.PROBABILITIES
        )
        val top = Postprocessor.topK(byteArrayOf(-10, 10, -128, 127), manifest, labels, k = 2)
        assertEquals(listOf(Prediction(3, "tiger shark", 68.5), Prediction(1, "goldfish", 10.0)), top)
    }

    @Test
    fun int16ReadLittleEndian() {
        val manifest = uint8Logits.copy(
            outputType = TensorType.INT16, outputScale = 0.25, outputZeroPoint = 2, outputKind = OutputKind.PROBABILITIES
        )
        // 0x0102 = 258 and -300, little-endian.
        val raw = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
            .putShort(0, 0x0102).putShort(2, (-300).toShort()).putShort(4, 2).putShort(6, 32767).array()
        val scores = Postprocessor.scores(raw, manifest)
        assertEquals(64.0, scores[0], 0.0)
        assertEquals(-75.5, scores[1], 0.0)
        assertEquals(0.0, scores[2], 0.0)
        assertEquals(8191.25, scores[3], 0.0)
    }

    @Test
    fun float32UsedAsIs() {
        val manifest = uint8Logits.copy(
            outputType = TensorType.FLOAT32, outputScale = 0.0, outputZeroPoint = 0, outputKind = OutputKind.PROBABILITIES
        )
        val raw = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
            .putFloat(0, 0.125f).putFloat(4, 0.5f).putFloat(8, 0.25f).putFloat(12, 0.125f).array()
        val top = Postprocessor.topK(raw, manifest, labels, k = 4)
        assertEquals(listOf(1, 2, 0, 3), top.map { it.index })
        assertEquals(listOf(0.5, 0.25, 0.125, 0.125), top.map { it.score })
    }

    @Test
    fun largeLogitsDoNotOverflow() {
        val manifest = uint8Logits.copy(outputType = TensorType.FLOAT32, outputScale = 0.0, outputZeroPoint = 0)
        val raw = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
            .putFloat(0, 1000f).putFloat(4, 1000f).putFloat(8, -1000f).putFloat(12, 0f).array()
        val scores = Postprocessor.scores(raw, manifest)
        assertEquals(0.5, scores[0], 1e-15)
        assertEquals(0.5, scores[1], 1e-15)
        assertEquals(0.0, scores[2], 1e-15)
    }

    @Test
    fun kAboveClassCountReturnsAll() {
        assertEquals(4, Postprocessor.topK(byteArrayOf(1, 2, 3, 4), uint8Logits, labels, k = 10).size)
    }

    @Test(expected = IllegalArgumentException::class)
    fun rejectsZeroK() {
        Postprocessor.topK(byteArrayOf(1, 2, 3, 4), uint8Logits, labels, k = 0)
    }

    @Test(expected = IllegalArgumentException::class)
    fun rejectsWrongRawSize() {
        Postprocessor.scores(byteArrayOf(1, 2, 3), uint8Logits)
    }

    @Test(expected = IllegalArgumentException::class)
    fun rejectsLabelCountMismatch() {
        Postprocessor.topK(byteArrayOf(1, 2, 3, 4), uint8Logits, labels.take(3), k = 1)
    }
}
