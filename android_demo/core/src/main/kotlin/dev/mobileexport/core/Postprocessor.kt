package dev.mobileexport.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/** One class of a classification: its index in the model output, its label and its score. */
data class Prediction(val index: Int, val label: String, val score: Double)

/**
 * Turns the raw output tensor bytes into class scores and the best classes.
 *
 * Integer outputs are dequantized as `(raw - zeroPoint) * scale` in float64. Logits then go through
 * a softmax (max subtracted first, so every exp is at most 1). Probabilities are used as they are.
 */
object Postprocessor {
    /** Returns one score per class for `raw`, the output tensor's bytes (little-endian). */
    fun scores(raw: ByteArray, manifest: Manifest): DoubleArray {
        require(raw.size == manifest.outputByteCount) {
            "A ${manifest.outputType.jsonName} output of ${manifest.classes} classes has ${manifest.outputByteCount} bytes, got ${raw.size}"
        }
        val buffer = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN)
        val values = DoubleArray(manifest.classes) { i ->
            when (manifest.outputType) {
                TensorType.FLOAT32 -> buffer.getFloat(4 * i).toDouble()
                TensorType.INT16 -> dequantize(buffer.getShort(2 * i).toLong(), manifest)
                TensorType.INT8 -> dequantize(raw[i].toLong(), manifest)
                TensorType.UINT8 -> dequantize((raw[i].toInt() and 0xFF).toLong(), manifest)
            }
        }
        if (manifest.outputKind == OutputKind.LOGITS) softmaxInPlace(values)
        return values
    }

    /**
     * Returns the `k` classes with the highest scores, best first. Equal scores keep the lower
     * index first. Returns fewer than `k` only when the model has fewer classes.
     */
    fun topK(raw: ByteArray, manifest: Manifest, labels: List<String>, k: Int): List<Prediction> {
        require(k > 0) { "k must be at least 1, got $k" }
        require(labels.size == manifest.classes) {
            "The model has ${manifest.classes} classes but ${manifest.labelsFile} has ${labels.size} labels; " +
                "bundle the labels file from the same export"
        }
        val scores = scores(raw, manifest)
        // sortedWith is stable, so sorting the indices in order by score alone keeps ties by index.
        val order = (0 until manifest.classes).sortedWith(Comparator { a, b -> java.lang.Double.compare(scores[b], scores[a]) })
        return order.take(k).map { Prediction(it, labels[it], scores[it]) }
    }

    private fun dequantize(raw: Long, manifest: Manifest): Double =
        (raw - manifest.outputZeroPoint).toDouble() * manifest.outputScale

    private fun softmaxInPlace(values: DoubleArray) {
        var max = Double.NEGATIVE_INFINITY
        for (value in values) max = Math.max(max, value)
        var sum = 0.0
        for (i in values.indices) {
            values[i] = Math.exp(values[i] - max)
            sum += values[i]
        }
        for (i in values.indices) values[i] /= sum
    }
}
