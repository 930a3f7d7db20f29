package dev.mobileexport.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * Turns prepared pixels (0..255) into the bytes of the model's input tensor.
 *
 * Integer types get `q = clamp(rint(v / scale) + zeroPoint)`, where `Math.rint` rounds half to
 * even on the float64 quotient like numpy's `np.round`. float32 gets the pixel value itself.
 * Multi-byte values are little-endian, the byte order of every Android ABI.
 */
object InputTensor {
    /** Returns the input tensor bytes for `inputHeight * inputWidth * 3` prepared pixels. */
    fun fromPixels(pixels: ByteArray, manifest: Manifest): ByteArray {
        val bytes = ByteArray(manifest.inputByteCount)
        write(pixels, manifest, ByteBuffer.wrap(bytes))
        return bytes
    }

    /** Allocates a direct buffer in native byte order, the kind the interpreter reads without a copy. */
    fun allocateBuffer(manifest: Manifest): ByteBuffer =
        ByteBuffer.allocateDirect(manifest.inputByteCount).order(ByteOrder.nativeOrder())

    /**
     * Writes the input tensor bytes for `pixels` into `buffer`, starting at its position. The
     * buffer's position, limit and byte order are left as they were, so it can go straight to the
     * interpreter again.
     */
    fun write(pixels: ByteArray, manifest: Manifest, buffer: ByteBuffer) {
        val count = manifest.inputHeight * manifest.inputWidth * 3
        require(pixels.size == count) {
            "A ${manifest.inputHeight}x${manifest.inputWidth} model takes $count prepared pixel bytes, got ${pixels.size}"
        }
        require(buffer.remaining() >= manifest.inputByteCount) {
            "The input buffer has ${buffer.remaining()} bytes left, the ${manifest.inputType.jsonName} tensor needs ${manifest.inputByteCount}"
        }

        // Absolute puts on a little-endian view leave the caller's buffer state untouched.
        val out = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN)
        val base = buffer.position()
        val type = manifest.inputType
        if (type == TensorType.FLOAT32) {
            for (i in 0 until count) out.putFloat(base + 4 * i, (pixels[i].toInt() and 0xFF).toFloat())
            return
        }

        val table = quantizationTable(manifest)
        for (i in 0 until count) {
            val q = table[pixels[i].toInt() and 0xFF]
            when (type) {
                TensorType.INT16 -> out.putShort(base + 2 * i, q.toShort())
                else -> out.put(base + i, q.toByte())
            }
        }
    }

    /** Returns the quantized value of each pixel value 0..255, clamped to the input type's range. */
    internal fun quantizationTable(manifest: Manifest): LongArray {
        val type = manifest.inputType
        return LongArray(256) { value ->
            val q = Math.rint(value.toDouble() / manifest.inputScale).toLong() + manifest.inputZeroPoint
            Math.min(type.maxValue, Math.max(type.minValue, q))
        }
    }
}
