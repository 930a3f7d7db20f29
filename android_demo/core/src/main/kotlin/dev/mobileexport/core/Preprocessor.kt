package dev.mobileexport.core

/** Height and width of a photo after the resize step, before the centre crop. */
data class ResizedSize(val height: Int, val width: Int)

/**
 * Integer weights of a triangle filter along one axis. Output pixel `i` takes source pixels
 * `first[i]` until `first[i] + weights[i].size`, and its weights add up to `sums[i]`.
 */
internal class AxisTaps(val first: IntArray, val weights: Array<LongArray>, val sums: LongArray)

/**
 * Turns an RGB photo into the model-size RGB pixels that manifest.json describes, with the same
 * integer arithmetic as `InputContract.prepare` in mobile_export/contract.py, so the bytes match
 * the Python pipeline's exactly.
 *
 * 1. Resize the shorter side (relative to the model's aspect) to `size * den / num`, where
 *    `num / den` is the crop fraction, keeping the photo's aspect. Every rounding is `round(a / b) = (2a + b) div 2b`, half up.
 * 2. Centre-crop the model's height x width from the resized image.
 * 3. Filter with a triangle kernel whose support widens to `max(source, resized)` when shrinking,
 *    so every source pixel counts, as in Pillow's BILINEAR. Along an axis of `s` source and `t`
 *    resized pixels, output position `p` weighs source pixel `j` by
 *    `max(0, 2 * max(s, t) - |(2j + 1) * t - (2p + 1) * s|)`. Each output value is one integer
 *    division of the weighted sum by the product of the two axes' weight sums, rounded half up.
 */
object Preprocessor {
    /** Returns the photo's size after the resize step, before the centre crop. */
    fun resizedSize(photoHeight: Int, photoWidth: Int, manifest: Manifest): ResizedSize {
        val height = manifest.inputHeight.toLong()
        val width = manifest.inputWidth.toLong()
        val num = manifest.cropNumerator.toLong()
        val den = manifest.cropDenominator.toLong()
        return if (photoWidth.toLong() * height >= photoHeight.toLong() * width) {
            val resizedHeight = roundDiv(height * den, num)
            val resizedWidth = Math.max(width, roundDiv(photoWidth * resizedHeight, photoHeight.toLong()))
            ResizedSize(resizedHeight.toInt(), resizedWidth.toInt())
        } else {
            val resizedWidth = roundDiv(width * den, num)
            val resizedHeight = Math.max(height, roundDiv(photoHeight * resizedWidth, photoWidth.toLong()))
            ResizedSize(resizedHeight.toInt(), resizedWidth.toInt())
        }
    }

    /**
     * Returns the model-size pixels (inputHeight * inputWidth * 3 bytes, row-major RGB) for a
     * photo of `photoHeight * photoWidth * 3` bytes, row-major RGB.
     */
    fun prepare(rgb: ByteArray, photoHeight: Int, photoWidth: Int, manifest: Manifest): ByteArray {
        require(photoHeight > 0 && photoWidth > 0) { "Photo size must be positive, got ${photoHeight}x$photoWidth" }
        val expectedBytes = photoHeight.toLong() * photoWidth * 3
        require(rgb.size.toLong() == expectedBytes) {
            "A ${photoHeight}x$photoWidth RGB photo has $expectedBytes bytes, got ${rgb.size}; pass 3 bytes per pixel, row-major"
        }

        val height = manifest.inputHeight
        val width = manifest.inputWidth
        val resized = resizedSize(photoHeight, photoWidth, manifest)
        val rows = taps(photoHeight, resized.height, height, (resized.height - height) / 2)
        val cols = taps(photoWidth, resized.width, width, (resized.width - width) / 2)

        // Filter down the columns first, one output row at a time, over only the columns that
        // some output pixel uses: the buffer stays one row long whatever the photo's size.
        val colStart = cols.first[0]
        val colEnd = cols.first[width - 1] + cols.weights[width - 1].size
        val column = LongArray((colEnd - colStart) * 3)
        val out = ByteArray(height * width * 3)

        for (y in 0 until height) {
            java.util.Arrays.fill(column, 0L)
            val rowWeights = rows.weights[y]
            for (tap in rowWeights.indices) {
                val weight = rowWeights[tap]
                val rowOffset = ((rows.first[y] + tap) * photoWidth + colStart) * 3
                for (i in column.indices) {
                    column[i] += weight * (rgb[rowOffset + i].toInt() and 0xFF)
                }
            }

            for (x in 0 until width) {
                val colWeights = cols.weights[x]
                var red = 0L
                var green = 0L
                var blue = 0L
                var index = (cols.first[x] - colStart) * 3
                for (weight in colWeights) {
                    red += weight * column[index]
                    green += weight * column[index + 1]
                    blue += weight * column[index + 2]
                    index += 3
                }
                val denominator = rows.sums[y] * cols.sums[x]
                val half = denominator / 2
                val outIndex = (y * width + x) * 3
                out[outIndex] = ((red + half) / denominator).toByte()
                out[outIndex + 1] = ((green + half) / denominator).toByte()
                out[outIndex + 2] = ((blue + half) / denominator).toByte()
            }
        }
        return out
    }

    /**
     * Returns the non-zero taps for `count` output pixels at resized positions `offset` and up,
     * along an axis resized from `source` to `resized` pixels.
     */
    internal fun taps(source: Int, resized: Int, count: Int, offset: Int): AxisTaps {
        val s = source.toLong()
        val t = resized.toLong()
        val support = 2 * Math.max(s, t)
        val first = IntArray(count)
        val weights = arrayOfNulls<LongArray>(count)
        val sums = LongArray(count)

        for (i in 0 until count) {
            val centre = (2L * (i + offset) + 1) * s
            // Weights are positive only where |(2j + 1) * t - centre| < support. One tap of margin
            // on each side absorbs the integer division, and zero weights are trimmed below.
            var low = Math.max(0L, Math.floorDiv(centre - support - t, 2 * t))
            var high = Math.min(s - 1, Math.floorDiv(centre + support - t, 2 * t) + 1)
            while (low <= high && weight(low, t, centre, support) == 0L) low++
            while (high >= low && weight(high, t, centre, support) == 0L) high--
            if (low > high) {
                throw IllegalStateException("No source pixel covers output $i of an axis resized from $source to $resized")
            }

            val row = LongArray((high - low + 1).toInt())
            var sum = 0L
            for (k in row.indices) {
                row[k] = weight(low + k, t, centre, support)
                sum += row[k]
            }
            first[i] = low.toInt()
            weights[i] = row
            sums[i] = sum
        }
        return AxisTaps(first, weights.requireNoNulls(), sums)
    }

    private fun weight(j: Long, t: Long, centre: Long, support: Long): Long =
        Math.max(0L, support - Math.abs((2 * j + 1) * t - centre))

    private fun roundDiv(a: Long, b: Long): Long = (2 * a + b) / (2 * b)
}
