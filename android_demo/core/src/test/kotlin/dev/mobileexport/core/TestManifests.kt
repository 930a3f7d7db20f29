package dev.mobileexport.core

/** Small manifests for unit tests. The golden tests use the real ones under tests/golden. */
object TestManifests {
    val base = Manifest(
        schemaVersion = 1,
        modelFile = "model.tflite",
        labelsFile = "labels.txt",
        inputHeight = 2,
        inputWidth = 2,
        inputType = TensorType.UINT8,
        inputScale = 1.0,
        inputZeroPoint = 0,
        cropNumerator = 1,
        cropDenominator = 1,
        outputType = TensorType.UINT8,
        outputScale = 1.0,
        outputZeroPoint = 0,
        outputKind = OutputKind.LOGITS,
        classes = 4
    )

    /** Builds a gray RGB image whose three channels at (x, y) all equal `values[y][x]`. */
    fun gray(values: Array<IntArray>): ByteArray {
        val width = values[0].size
        val out = ByteArray(values.size * width * 3)
        for (y in values.indices) {
            for (x in 0 until width) {
                for (c in 0 until 3) out[(y * width + x) * 3 + c] = values[y][x].toByte()
            }
        }
        return out
    }
}
