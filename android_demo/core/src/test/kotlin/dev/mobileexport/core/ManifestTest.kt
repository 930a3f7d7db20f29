package dev.mobileexport.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class ManifestTest {
    // The keys the app reads, in the layout `mobile-export build` writes, plus a few it must ignore.
    private val text = """
        {
          "schema_version": 1,
          "status": "passed",
          "model": {"file": "model_int8.tflite", "target": "tflite"},
          "input": {
            "shape": [1, 64, 80, 3],
            "resize": {"crop_fraction": 0.875, "crop_fraction_numerator": 7, "crop_fraction_denominator": 8},
            "scale": 1.0,
            "zero_point": -128,
            "dtype": "int8"
          },
          "output": {
            "kind": "logits",
            "dtype": "int16",
            "shape": [1, 1000],
            "scale": 1.556866627652198e-04,
            "zero_point": 0,
            "classes": 1000
          },
          "labels": {"file": "labels.txt", "count": 1000},
          "conventions": {"bn_epsilon": 1e-05, "normalization": {"mean": [123.675, 116.28, 103.53]}}
        }
    """.trimIndent()

    private fun assertRejected(manifestText: String, messagePart: String) {
        try {
            Manifest.parse(manifestText)
            fail("Accepted a manifest that should fail with \"$messagePart\"")
        } catch (error: ManifestException) {
            assertTrue("message \"${error.message}\" should contain \"$messagePart\"", error.message.orEmpty().contains(messagePart))
        }
    }

    @Test
    fun parsesEveryField() {
        val manifest = Manifest.parse(text)
        assertEquals(
            Manifest(
                schemaVersion = 1,
                modelFile = "model_int8.tflite",
                labelsFile = "labels.txt",
                inputHeight = 64,
                inputWidth = 80,
                inputType = TensorType.INT8,
                inputScale = 1.0,
                inputZeroPoint = -128,
                cropNumerator = 7,
                cropDenominator = 8,
                outputType = TensorType.INT16,
                outputScale = 1.556866627652198e-04,
                outputZeroPoint = 0,
                outputKind = OutputKind.LOGITS,
                classes = 1000
            ),
            manifest
        )
        assertEquals(64 * 80 * 3, manifest.inputByteCount)
        assertEquals(2000, manifest.outputByteCount)
    }

    @Test
    fun parsesGoldenManifests() {
        for (fixture in GoldenFixtures.all) {
            assertTrue("model file of ${fixture.name}", fixture.manifest.modelFile.endsWith(".tflite"))
            assertEquals("labels file of ${fixture.name}", "labels.txt", fixture.manifest.labelsFile)
        }
    }

    @Test
    fun missingKeyNamed() {
        assertRejected(text.replace("\"zero_point\": -128,", ""), "missing the key \"input.zero_point\"")
        assertRejected(text.replace("\"crop_fraction_numerator\": 7, ", ""), "\"input.resize.crop_fraction_numerator\"")
        assertRejected(text.replace("\"labels\": {\"file\": \"labels.txt\", \"count\": 1000},", ""), "missing the key \"labels\"")
    }

    @Test
    fun wrongTypesNamed() {
        assertRejected(text.replace("\"scale\": 1.0", "\"scale\": \"1.0\""), "\"input.scale\" must be a number, got the string \"1.0\"")
        assertRejected(text.replace("\"zero_point\": -128,", "\"zero_point\": -128.5,"), "\"input.zero_point\" must be an integer")
        assertRejected(text.replace("\"dtype\": \"int8\"", "\"dtype\": \"int4\""), "is \"int4\"; supported types are uint8, int8, int16, float32")
        assertRejected(text.replace("\"kind\": \"logits\"", "\"kind\": \"scores\""), "supported kinds are logits, probabilities")
    }

    @Test
    fun invalidValuesRejected() {
        assertRejected(text.replace("\"schema_version\": 1", "\"schema_version\": 2"), "schema_version 2")
        assertRejected(text.replace("[1, 64, 80, 3]", "[1, 64, 80, 1]"), "input.shape must be [1, height, width, 3]")
        assertRejected(text.replace("[1, 1000]", "[1000]"), "output.shape must be [1, classes]")
        assertRejected(text.replace("\"scale\": 1.0", "\"scale\": 0.0"), "input.scale must be a positive number")
        assertRejected(text.replace("\"zero_point\": -128,", "\"zero_point\": 128,"), "outside the int8 range")
        assertRejected(text.replace("\"crop_fraction_numerator\": 7", "\"crop_fraction_numerator\": 9"), "crop fraction must be in (0, 1]")
        assertRejected("{\"schema_version\": 1,", "not valid JSON")
        assertRejected("[]", "must contain a JSON object")
    }

    @Test
    fun verifyModelAcceptsMatchingTensors() {
        val manifest = Manifest.parse(text)
        manifest.verifyModel(
            TensorInfo(listOf(1, 64, 80, 3), "INT8", 1.0, -128),
            // float32 rounding of the output scale, as the interpreter reports it.
            TensorInfo(listOf(1, 1000), "INT16", 1.556866627652198e-04.toFloat().toDouble(), 0)
        )
    }

    @Test
    fun verifyModelListsMismatches() {
        val manifest = Manifest.parse(text)
        try {
            manifest.verifyModel(
                TensorInfo(listOf(1, 224, 224, 3), "UINT8", 1.0, 0),
                TensorInfo(listOf(1, 1000), "INT16", 0.5, 3)
            )
            fail("Accepted a model that does not match its manifest")
        } catch (error: ManifestException) {
            val message = error.message.orEmpty()
            assertTrue(message, message.contains("input shape is [1, 224, 224, 3], the manifest says [1, 64, 80, 3]"))
            assertTrue(message, message.contains("input type is UINT8, the manifest says int8"))
            assertTrue(message, message.contains("input zero point is 0, the manifest says -128"))
            assertTrue(message, message.contains("output scale is 0.5"))
            assertTrue(message, message.contains("output zero point is 3, the manifest says 0"))
        }
    }
}
