package dev.mobileexport.demo

import android.content.res.AssetManager
import android.os.SystemClock
import dev.mobileexport.core.InputTensor
import dev.mobileexport.core.Labels
import dev.mobileexport.core.Manifest
import dev.mobileexport.core.ManifestException
import dev.mobileexport.core.Postprocessor
import dev.mobileexport.core.Prediction
import dev.mobileexport.core.Preprocessor
import dev.mobileexport.core.RgbImage
import dev.mobileexport.core.TensorInfo
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import java.io.Closeable
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.io.IOException
import java.nio.Buffer
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** Best classes of one image and how long the interpreter took on it, in milliseconds. */
data class Classification(val predictions: List<Prediction>, val inferenceMillis: Double)

/**
 * Runs an exported model on RGB images: the core's preprocessing, the LiteRT interpreter, then
 * the core's top-k. Everything about the model (size, types, quantization, labels) comes from
 * its manifest.json.
 *
 * Not thread-safe, because the interpreter is not: call [classify] and [close] from one thread.
 */
class Classifier private constructor(
    val manifest: Manifest,
    private val labels: List<String>,
    private val interpreter: Interpreter
) : Closeable {
    private val input: ByteBuffer = InputTensor.allocateBuffer(manifest)
    private val output: ByteBuffer = ByteBuffer.allocateDirect(manifest.outputByteCount).order(ByteOrder.nativeOrder())
    private val raw = ByteArray(manifest.outputByteCount)

    /** Classifies one upright RGB image of any size and returns the `k` best classes. */
    fun classify(image: RgbImage, k: Int): Classification {
        val pixels = Preprocessor.prepare(image.pixels, image.height, image.width, manifest)
        InputTensor.write(pixels, manifest, input)

        // The interpreter copies the output in with a relative put, so the buffer must start at 0.
        rewind(output)
        val inferenceStart = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val inferenceEnd = SystemClock.elapsedRealtimeNanos()

        // Native order is little-endian on every Android ABI, the order Postprocessor reads.
        for (i in raw.indices) raw[i] = output.get(i)
        val predictions = Postprocessor.topK(raw, manifest, labels, k)
        return Classification(predictions, (inferenceEnd - inferenceStart) / 1e6)
    }

    override fun close() {
        interpreter.close()
    }

    companion object {
        private const val MAX_THREADS = 4

        /**
         * Loads `folder/manifest.json`, the labels file and the model file it names from the APK's
         * assets, and checks the model's tensors against the manifest.
         */
        fun fromAssets(assets: AssetManager, folder: String): Classifier {
            val manifest = Manifest.parse(readText(assets, "$folder/manifest.json"))
            val labels = Labels.parse(readText(assets, "$folder/${manifest.labelsFile}"))
            if (labels.size != manifest.classes) {
                throw ManifestException(
                    "${manifest.labelsFile} has ${labels.size} labels but the model has ${manifest.classes} classes; " +
                        "bundle the labels file from the same export"
                )
            }

            val threads = Math.min(MAX_THREADS, Runtime.getRuntime().availableProcessors())
            val interpreter = Interpreter(mapModel(assets, "$folder/${manifest.modelFile}"), Interpreter.Options().setNumThreads(threads))
            try {
                if (interpreter.inputTensorCount != 1 || interpreter.outputTensorCount != 1) {
                    throw ManifestException(
                        "${manifest.modelFile} has ${interpreter.inputTensorCount} inputs and " +
                            "${interpreter.outputTensorCount} outputs; an image classifier has one of each"
                    )
                }
                manifest.verifyModel(describe(interpreter.getInputTensor(0)), describe(interpreter.getOutputTensor(0)))
            } catch (error: RuntimeException) {
                interpreter.close()
                throw error
            }
            return Classifier(manifest, labels, interpreter)
        }

        private fun describe(tensor: Tensor): TensorInfo {
            val quantization = tensor.quantizationParams()
            return TensorInfo(tensor.shape().toList(), tensor.dataType().name, quantization.scale.toDouble(), quantization.zeroPoint)
        }

        private fun readText(assets: AssetManager, path: String): String = try {
            assets.open(path).bufferedReader(Charsets.UTF_8).use { it.readText() }
        } catch (error: FileNotFoundException) {
            throw missingAsset(path, error)
        }

        // Maps the model straight from the APK, which works because app/build.gradle.kts keeps
        // .tflite files uncompressed.
        private fun mapModel(assets: AssetManager, path: String): MappedByteBuffer = try {
            assets.openFd(path).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
                }
            }
        } catch (error: FileNotFoundException) {
            throw missingAsset(path, error)
        }

        private fun missingAsset(path: String, cause: FileNotFoundException): IOException = IOException(
            "assets/$path not found (${cause.message}); copy an export in with " +
                "`mobile-export bundle OUT --android android_demo` and rebuild the app",
            cause
        )

        // Called through Buffer: compiled against a recent JDK or SDK, ByteBuffer.rewind() returns
        // ByteBuffer, a method that older Android runtimes lack.
        private fun rewind(buffer: Buffer) {
            buffer.rewind()
        }
    }
}
