package dev.mobileexport.core

/** Element type of a model tensor, named as manifest.json names it. */
enum class TensorType(val jsonName: String, val byteSize: Int, val minValue: Long, val maxValue: Long) {
    UINT8("uint8", 1, 0, 255),
    INT8("int8", 1, -128, 127),
    INT16("int16", 2, -32768, 32767),
    FLOAT32("float32", 4, Long.MIN_VALUE, Long.MAX_VALUE);

    val isInteger: Boolean get() = this != FLOAT32

    companion object {
        fun fromJsonName(name: String): TensorType? = values().firstOrNull { it.jsonName == name }
    }
}

/** What the model's output values are: logits go through a softmax, probabilities are used as they are. */
enum class OutputKind(val jsonName: String) {
    LOGITS("logits"),
    PROBABILITIES("probabilities");

    companion object {
        fun fromJsonName(name: String): OutputKind? = values().firstOrNull { it.jsonName == name }
    }
}

/** An invalid or incomplete manifest.json, or a model that does not match it. */
class ManifestException(message: String, cause: Throwable? = null) : RuntimeException(message, cause)

/** A model tensor as the interpreter reports it, to check against the manifest. */
data class TensorInfo(val shape: List<Int>, val typeName: String, val scale: Double, val zeroPoint: Int)

/**
 * The input contract and output format of one export, read from its manifest.json.
 *
 * The model takes one `[1, inputHeight, inputWidth, 3]` RGB image. Integer tensors are quantized
 * as `real = (q - zeroPoint) * scale`; float32 tensors ignore scale and zero point.
 */
data class Manifest(
    val schemaVersion: Int,
    val modelFile: String,
    val labelsFile: String,
    val inputHeight: Int,
    val inputWidth: Int,
    val inputType: TensorType,
    val inputScale: Double,
    val inputZeroPoint: Int,
    val cropNumerator: Int,
    val cropDenominator: Int,
    val outputType: TensorType,
    val outputScale: Double,
    val outputZeroPoint: Int,
    val outputKind: OutputKind,
    val classes: Int
) {
    init {
        validate(inputHeight > 0 && inputWidth > 0) { "input.shape must have a positive height and width, got ${inputHeight}x$inputWidth" }
        validate(cropNumerator in 1..cropDenominator) {
            "input.resize crop fraction must be in (0, 1], got $cropNumerator/$cropDenominator"
        }
        validate(classes > 0) { "output.shape must have at least one class, got $classes" }
        checkQuantization("input", inputType, inputScale, inputZeroPoint)
        checkQuantization("output", outputType, outputScale, outputZeroPoint)
    }

    /** Bytes of the input tensor: height * width * 3 elements of [inputType]. */
    val inputByteCount: Int get() = inputHeight * inputWidth * 3 * inputType.byteSize

    /** Bytes of the output tensor: [classes] elements of [outputType]. */
    val outputByteCount: Int get() = classes * outputType.byteSize

    /**
     * Checks that the model's tensors, as the interpreter reports them, are the ones this manifest
     * describes, so a model copied without its manifest fails at load time instead of giving wrong
     * scores. Throws [ManifestException] listing every mismatch.
     */
    fun verifyModel(input: TensorInfo, output: TensorInfo) {
        val problems = ArrayList<String>()
        compareTensor("input", input, listOf(1, inputHeight, inputWidth, 3), inputType, inputScale, inputZeroPoint, problems)
        compareTensor("output", output, listOf(1, classes), outputType, outputScale, outputZeroPoint, problems)
        if (problems.isNotEmpty()) {
            throw ManifestException(
                "$modelFile does not match manifest.json: ${problems.joinToString("; ")}. " +
                    "Copy the export in again with `mobile-export bundle` so the model and manifest come from the same build."
            )
        }
    }

    private fun validate(condition: Boolean, message: () -> String) {
        if (!condition) throw ManifestException("Invalid manifest.json: ${message()}")
    }

    private fun checkQuantization(name: String, type: TensorType, scale: Double, zeroPoint: Int) {
        if (!type.isInteger) return
        validate(scale > 0.0 && !scale.isInfinite()) { "$name.scale must be a positive number for a ${type.jsonName} tensor, got $scale" }
        validate(zeroPoint >= type.minValue && zeroPoint <= type.maxValue) {
            "$name.zero_point $zeroPoint is outside the ${type.jsonName} range ${type.minValue}..${type.maxValue}"
        }
    }

    companion object {
        const val SUPPORTED_SCHEMA_VERSION = 1

        /** Parses manifest.json text. Keys the app does not use are ignored. */
        fun parse(text: String): Manifest {
            val root = try {
                Json.parse(text)
            } catch (error: JsonException) {
                throw ManifestException("manifest.json is not valid JSON: ${error.message}", error)
            }
            if (root !is JsonObject) throw ManifestException("manifest.json must contain a JSON object, got ${describe(root)}")
            val fields = Fields(root, "")

            val schemaVersion = fields.int("schema_version")
            if (schemaVersion != SUPPORTED_SCHEMA_VERSION) {
                throw ManifestException(
                    "manifest.json has schema_version $schemaVersion but this app reads version $SUPPORTED_SCHEMA_VERSION; " +
                        "export the model with a mobile-export release that writes version $SUPPORTED_SCHEMA_VERSION."
                )
            }

            val input = fields.child("input")
            val inputShape = input.intList("shape")
            if (inputShape.size != 4 || inputShape[0] != 1 || inputShape[3] != 3) {
                throw ManifestException("manifest.json input.shape must be [1, height, width, 3], got $inputShape")
            }
            val resize = input.child("resize")
            val output = fields.child("output")
            val outputShape = output.intList("shape")
            if (outputShape.size != 2 || outputShape[0] != 1) {
                throw ManifestException("manifest.json output.shape must be [1, classes], got $outputShape")
            }

            return Manifest(
                schemaVersion = schemaVersion,
                modelFile = fields.child("model").string("file"),
                labelsFile = fields.child("labels").string("file"),
                inputHeight = inputShape[1],
                inputWidth = inputShape[2],
                inputType = input.tensorType("dtype"),
                inputScale = input.double("scale"),
                inputZeroPoint = input.int("zero_point"),
                cropNumerator = resize.int("crop_fraction_numerator"),
                cropDenominator = resize.int("crop_fraction_denominator"),
                outputType = output.tensorType("dtype"),
                outputScale = output.double("scale"),
                outputZeroPoint = output.int("zero_point"),
                outputKind = output.outputKind("kind"),
                classes = outputShape[1]
            )
        }
    }
}

private fun compareTensor(
    name: String,
    actual: TensorInfo,
    shape: List<Int>,
    type: TensorType,
    scale: Double,
    zeroPoint: Int,
    problems: MutableList<String>
) {
    if (actual.shape != shape) problems.add("$name shape is ${actual.shape}, the manifest says $shape")
    if (!actual.typeName.equals(type.jsonName, ignoreCase = true)) {
        problems.add("$name type is ${actual.typeName}, the manifest says ${type.jsonName}")
    }
    if (!type.isInteger) return
    // The interpreter reports scales as float32 and the manifest stores them as float64, so only
    // float32 rounding may differ.
    val tolerance = 1e-6 * Math.max(Math.abs(scale), Math.abs(actual.scale))
    if (Math.abs(actual.scale - scale) > tolerance) problems.add("$name scale is ${actual.scale}, the manifest says $scale")
    if (actual.zeroPoint != zeroPoint) problems.add("$name zero point is ${actual.zeroPoint}, the manifest says $zeroPoint")
}

/** Typed access to the members of one manifest object. Errors name the full key path. */
private class Fields(private val obj: JsonObject, private val path: String) {
    private fun keyPath(key: String): String = if (path.isEmpty()) key else "$path.$key"

    private fun value(key: String): JsonValue = obj[key] ?: throw ManifestException(
        "manifest.json is missing the key \"${keyPath(key)}\"; export the model again with `mobile-export build` " +
            "and copy it in with `mobile-export bundle`."
    )

    private fun wrongType(key: String, expected: String, value: JsonValue): ManifestException =
        ManifestException("manifest.json key \"${keyPath(key)}\" must be $expected, got ${describe(value)}")

    fun child(key: String): Fields {
        val value = value(key)
        if (value !is JsonObject) throw wrongType(key, "an object", value)
        return Fields(value, keyPath(key))
    }

    fun string(key: String): String {
        val value = value(key)
        if (value !is JsonString || value.value.isEmpty()) throw wrongType(key, "a non-empty string", value)
        return value.value
    }

    fun double(key: String): Double {
        val value = value(key)
        if (value !is JsonNumber) throw wrongType(key, "a number", value)
        return value.doubleValue
    }

    fun int(key: String): Int = toInt(key, value(key))

    fun intList(key: String): List<Int> {
        val value = value(key)
        if (value !is JsonArray) throw wrongType(key, "an array of integers", value)
        return value.items.map { toInt(key, it) }
    }

    fun tensorType(key: String): TensorType {
        val name = string(key)
        return TensorType.fromJsonName(name) ?: throw ManifestException(
            "manifest.json key \"${keyPath(key)}\" is \"$name\"; supported types are " +
                TensorType.values().joinToString(", ") { it.jsonName }
        )
    }

    fun outputKind(key: String): OutputKind {
        val name = string(key)
        return OutputKind.fromJsonName(name) ?: throw ManifestException(
            "manifest.json key \"${keyPath(key)}\" is \"$name\"; supported kinds are " +
                OutputKind.values().joinToString(", ") { it.jsonName }
        )
    }

    private fun toInt(key: String, value: JsonValue): Int {
        val long = (value as? JsonNumber)?.longValue
        if (long == null || long < Int.MIN_VALUE || long > Int.MAX_VALUE) throw wrongType(key, "an integer", value)
        return long.toInt()
    }
}

private fun describe(value: JsonValue): String = when (value) {
    is JsonObject -> "an object"
    is JsonArray -> "an array"
    is JsonString -> "the string \"${value.value}\""
    is JsonNumber -> "the number ${value.longValue ?: value.doubleValue}"
    is JsonBoolean -> value.value.toString()
    JsonNull -> "null"
}
