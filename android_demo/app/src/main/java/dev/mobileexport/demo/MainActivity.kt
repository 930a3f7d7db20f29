package dev.mobileexport.demo

import android.content.pm.PackageManager
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import dev.mobileexport.core.FrameConverter
import dev.mobileexport.core.RgbImage
import dev.mobileexport.demo.databinding.ActivityMainBinding
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Shows the camera preview and, over its lower edge, the top-3 classes of the latest frame with
 * the inference time and the whole frame's time (RGBA conversion, preprocessing, inference and
 * top-k). Frames are converted and classified on one background thread.
 */
class MainActivity : ComponentActivity() {
    private lateinit var binding: ActivityMainBinding
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    // Used only on analysisExecutor. It stays null until the model has loaded, or if loading failed.
    private var classifier: Classifier? = null

    private var imageAnalysis: ImageAnalysis? = null

    private val permissionRequest = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) {
            startCamera()
        } else {
            Log.w(TAG, "Camera permission denied; nothing to classify")
            binding.resultText.text = getString(R.string.permission_denied)
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)
        binding.resultText.text = getString(R.string.status_loading)

        analysisExecutor.execute { loadClassifier() }

        val permission = android.Manifest.permission.CAMERA
        if (ContextCompat.checkSelfPermission(this, permission) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permissionRequest.launch(permission)
        }
    }

    override fun onDestroy() {
        imageAnalysis?.clearAnalyzer()
        analysisExecutor.execute {
            classifier?.close()
            classifier = null
        }
        analysisExecutor.shutdown()
        super.onDestroy()
    }

    private fun loadClassifier() {
        try {
            val loaded = Classifier.fromAssets(assets, MODEL_FOLDER)
            classifier = loaded
            Log.i(TAG, "Loaded ${loaded.manifest}")
            showText(getString(R.string.status_waiting, describeModel(loaded)))
        } catch (error: Exception) {
            // The boundary of the background thread: anything not caught here would crash the app
            // instead of telling the user what is wrong with the bundled model.
            Log.e(TAG, "Failed to load the model from assets/$MODEL_FOLDER", error)
            showText(getString(R.string.error_model, error.message ?: error.toString()))
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            try {
                val provider = providerFuture.get()
                val preview = Preview.Builder().build()
                preview.setSurfaceProvider(binding.preview.surfaceProvider)

                // CameraX's default analysis size, 640x480, is above the usual MobileNet inputs, and
                // the resize handles any size. KEEP_ONLY_LATEST drops frames while one is classified.
                val analysis = ImageAnalysis.Builder()
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .build()
                analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }

                provider.unbindAll()
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
                imageAnalysis = analysis
            } catch (error: Exception) {
                // ExecutionException or InterruptedException from the future, or IllegalArgumentException
                // and IllegalStateException from binding (no back camera, camera in use).
                Log.e(TAG, "Failed to start the camera", error)
                binding.resultText.text = getString(R.string.error_camera, error.message ?: error.toString())
            }
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val current = classifier ?: return
            try {
                val start = SystemClock.elapsedRealtimeNanos()
                val result = current.classify(toRgb(image), TOP_K)
                val frameMillis = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
                showText(describeResult(current, result, frameMillis))
            } catch (error: Exception) {
                // The same error would repeat on every frame, so stop analysing after logging it.
                Log.e(TAG, "Classification failed on a ${image.width}x${image.height} frame", error)
                runOnUiThread { imageAnalysis?.clearAnalyzer() }
                showText(getString(R.string.error_classify, error.message ?: error.toString()))
            }
        }
    }

    private fun toRgb(image: ImageProxy): RgbImage {
        val plane = image.planes[0]
        val crop = image.cropRect
        return FrameConverter.rgbaToRgb(
            rgba = plane.buffer,
            rowStride = plane.rowStride,
            pixelStride = plane.pixelStride,
            left = crop.left,
            top = crop.top,
            width = crop.width(),
            height = crop.height(),
            rotationDegrees = image.imageInfo.rotationDegrees
        )
    }

    private fun describeModel(classifier: Classifier): String {
        val manifest = classifier.manifest
        return getString(
            R.string.model_summary,
            manifest.modelFile,
            manifest.inputType.jsonName,
            manifest.inputHeight,
            manifest.inputWidth
        )
    }

    private fun describeResult(classifier: Classifier, result: Classification, frameMillis: Double): String {
        val lines = ArrayList<String>()
        for ((rank, prediction) in result.predictions.withIndex()) {
            lines.add(getString(R.string.prediction, rank + 1, prediction.label, prediction.score * 100))
        }
        lines.add(getString(R.string.timing, result.inferenceMillis, frameMillis))
        lines.add(describeModel(classifier))
        return lines.joinToString("\n")
    }

    private fun showText(text: String) {
        runOnUiThread { binding.resultText.text = text }
    }

    private companion object {
        const val TAG = "MobileExportDemo"
        const val MODEL_FOLDER = "model"
        const val TOP_K = 3
    }
}
