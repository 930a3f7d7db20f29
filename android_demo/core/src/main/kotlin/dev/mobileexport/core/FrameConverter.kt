package dev.mobileexport.core

import java.nio.Buffer
import java.nio.ByteBuffer

/** An RGB image: `height * width * 3` bytes, row-major. */
class RgbImage(val pixels: ByteArray, val height: Int, val width: Int) {
    init {
        require(pixels.size.toLong() == height.toLong() * width * 3) {
            "A ${height}x$width RGB image has ${height.toLong() * width * 3} bytes, got ${pixels.size}"
        }
    }
}

/** Converts camera frames into upright RGB images for [Preprocessor.prepare]. */
object FrameConverter {
    /**
     * Returns the upright RGB pixels of a region of an RGBA frame, dropping alpha.
     *
     * `rgba` contains rows of `rowStride` bytes from index 0 (its position is ignored and kept), with
     * `pixelStride` bytes per pixel in R, G, B, A order: CameraX's RGBA_8888 analysis output.
     * `left`, `top`, `width` and `height` select the region (the frame's crop rectangle).
     * `rotationDegrees` is the clockwise rotation that makes the frame upright (0, 90, 180 or 270);
     * for 90 and 270 the result is `width` rows high.
     */
    fun rgbaToRgb(
        rgba: ByteBuffer,
        rowStride: Int,
        pixelStride: Int,
        left: Int,
        top: Int,
        width: Int,
        height: Int,
        rotationDegrees: Int
    ): RgbImage {
        require(width > 0 && height > 0 && left >= 0 && top >= 0) {
            "Invalid frame region: left $left, top $top, ${width}x$height"
        }
        require(pixelStride >= 4) { "RGBA pixels need a pixel stride of at least 4 bytes, got $pixelStride" }
        require(rowStride >= (left + width) * pixelStride) {
            "Row stride $rowStride is shorter than the region's ${(left + width) * pixelStride} bytes per row"
        }
        val lastByte = (top + height - 1).toLong() * rowStride + (left + width).toLong() * pixelStride
        require(lastByte <= rgba.limit()) { "The frame buffer has ${rgba.limit()} bytes; the region needs $lastByte" }
        require(rotationDegrees == 0 || rotationDegrees == 90 || rotationDegrees == 180 || rotationDegrees == 270) {
            "Rotation must be 0, 90, 180 or 270 degrees, got $rotationDegrees"
        }

        val quarterTurn = rotationDegrees == 90 || rotationDegrees == 270
        val outHeight = if (quarterTurn) width else height
        val outWidth = if (quarterTurn) height else width
        val out = ByteArray(outHeight * outWidth * 3)
        val row = ByteArray(width * pixelStride)
        val source = rgba.duplicate()

        for (y in 0 until height) {
            seek(source, (top + y) * rowStride + left * pixelStride)
            source.get(row, 0, row.size)
            for (x in 0 until width) {
                // Destination of source pixel (x, y) once the frame is turned clockwise.
                val outX: Int
                val outY: Int
                when (rotationDegrees) {
                    90 -> { outX = height - 1 - y; outY = x }
                    180 -> { outX = width - 1 - x; outY = height - 1 - y }
                    270 -> { outX = y; outY = width - 1 - x }
                    else -> { outX = x; outY = y }
                }
                val from = x * pixelStride
                val to = (outY * outWidth + outX) * 3
                out[to] = row[from]
                out[to + 1] = row[from + 1]
                out[to + 2] = row[from + 2]
            }
        }
        return RgbImage(out, outHeight, outWidth)
    }

    // Called through Buffer: compiled against JDK 9 or later, ByteBuffer.position(int) returns
    // ByteBuffer, a method that older Android runtimes lack.
    private fun seek(buffer: Buffer, index: Int) {
        buffer.position(index)
    }
}
