package dev.mobileexport.core

import java.io.File
import java.util.Base64

/** One case of a golden.json: a real photo and what the Python pipeline computed for it. */
class GoldenCase(
    val name: String,
    val photoHeight: Int,
    val photoWidth: Int,
    val photoRgb: ByteArray,
    val inputRgb: ByteArray,
    val inputTensor: ByteArray,
    val outputRaw: ByteArray,
    val topK: List<Prediction>
)

/** One export folder under tests/golden: its manifest, labels and golden cases. */
class GoldenFixture(val name: String, val manifest: Manifest, val labels: List<String>, val cases: List<GoldenCase>) {
    override fun toString(): String = name
}

/**
 * Loads the golden fixtures that the Python, Kotlin and Swift tests share. The folder comes from
 * the `golden.dir` system property (set by run-tests.sh and core/build.gradle.kts), or else from
 * the nearest `tests/golden` above the working directory.
 */
object GoldenFixtures {
    val directory: File by lazy { locate() }

    /** Every export folder, sorted by name, parsed once per test run. */
    val all: List<GoldenFixture> by lazy {
        val folders = directory.listFiles { file -> File(file, "golden.json").isFile }.orEmpty().sortedBy { it.name }
        check(folders.isNotEmpty()) { "No export folder with a golden.json in $directory" }
        folders.map { load(it) }
    }

    private fun locate(): File {
        val property = System.getProperty("golden.dir")
        if (property != null) {
            val folder = File(property)
            check(folder.isDirectory) { "golden.dir=$property is not a folder; point it at the repository's tests/golden" }
            return folder
        }
        var folder: File? = File(System.getProperty("user.dir")).absoluteFile
        while (folder != null) {
            val candidate = File(folder, "tests/golden")
            if (candidate.isDirectory) return candidate
            folder = folder.parentFile
        }
        throw IllegalStateException(
            "No tests/golden above ${System.getProperty("user.dir")}; pass -Dgolden.dir=<repository>/tests/golden"
        )
    }

    private fun load(folder: File): GoldenFixture {
        val manifest = Manifest.parse(File(folder, "manifest.json").readText())
        val labels = Labels.parse(File(folder, manifest.labelsFile).readText())
        val golden = Json.parse(File(folder, "golden.json").readText()) as JsonObject
        val cases = (golden["cases"] as JsonArray).items.map { item ->
            val case = item as JsonObject
            GoldenCase(
                name = text(case, "name"),
                photoHeight = integer(case, "photo_height"),
                photoWidth = integer(case, "photo_width"),
                photoRgb = base64(case, "photo_rgb_base64"),
                inputRgb = base64(case, "input_rgb_base64"),
                inputTensor = base64(case, "input_tensor_base64"),
                outputRaw = base64(case, "output_raw_base64"),
                topK = (case["top_k"] as JsonArray).items.map { entry ->
                    val prediction = entry as JsonObject
                    Prediction(
                        index = integer(prediction, "index"),
                        label = text(prediction, "label"),
                        score = (prediction["score"] as JsonNumber).doubleValue
                    )
                }
            )
        }
        return GoldenFixture(folder.name, manifest, labels, cases)
    }

    private fun text(obj: JsonObject, key: String): String = (obj[key] as JsonString).value

    private fun integer(obj: JsonObject, key: String): Int = ((obj[key] as JsonNumber).longValue ?: error("$key is not an integer")).toInt()

    private fun base64(obj: JsonObject, key: String): ByteArray = Base64.getDecoder().decode(text(obj, key))
}
