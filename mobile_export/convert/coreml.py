"""Keras to Core ML (ML Program): one row per mode, and a classifier that Vision understands.

Every package takes an ``ImageType`` of raw RGB pixels 0..255 (scale 1, bias 0), because the
normalization is a layer inside the model, as the input contract requires. It has three outputs: the
classifier's ``classLabel`` and ``classLabel_probs`` (so Vision yields
``VNClassificationObservation``), and the raw scores as a float32 multi-array named after the
output kind (``logits`` or ``probabilities``). Core ML's ``classify`` op maps the tensor it is given
to labels as it is and applies no softmax, so a softmax is added in front of it for logits models.

coremltools is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from pathlib import Path

from mobile_export._tf import captured_output

LABEL_OUTPUT = "classLabel"
PROBABILITIES_OUTPUT = "classLabel_probs"
# coremltools' default: weights with fewer elements stay float (depthwise kernels, biases, BN).
WEIGHT_THRESHOLD = 2048
PACKAGE_SUFFIX = ".mlpackage"
BASE_DEPLOYMENT_TARGET = "iOS15"


class CoreMLConversionError(RuntimeError):
    """coremltools failed, or produced a package that breaks the export's contract."""


@dataclasses.dataclass(frozen=True)
class CoreMLMode:
    """One Core ML export mode: compute precision, weight compression and deployment target."""

    name: str
    description: str
    compute_precision: str  # "float32" or "float16"
    compression: str | None  # None, "linear", "palettize", or "w8a8"
    deployment_target: str  # a name of coremltools.target, e.g. "iOS16"
    nbits: int | None = None
    needs_macos: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# iOS 15 is the first target with ML Programs and what the iOS demo app supports. The constexpr ops
# that decompress weights at load time (constexpr_affine_dequantize, constexpr_lut_to_dense) need
# iOS 16, and the quantize/dequantize pairs of activation quantization need iOS 17. The compressed
# modes compute in float16, as the Neural Engine does anyway, so they can run there.
COREML_MODES = {
    mode.name: mode
    for mode in (
        CoreMLMode(
            name="fp32",
            description="float32 weights and compute; the converter's graph, no compression",
            compute_precision="float32",
            compression=None,
            deployment_target="iOS15",
        ),
        CoreMLMode(
            name="fp16",
            description="float16 weights and compute (Core ML's default precision for ML Programs)",
            compute_precision="float16",
            compression=None,
            deployment_target="iOS15",
        ),
        CoreMLMode(
            name="int8-weights",
            description="int8 weights (linear symmetric, per output channel), decompressed at load; "
            "float16 activations and compute",
            compute_precision="float16",
            compression="linear",
            deployment_target="iOS16",
            nbits=8,
        ),
        *(
            CoreMLMode(
                name=f"palette{bits}",
                description=f"weights palettized to {2 ** bits} values per tensor (k-means, {bits}-bit "
                "indices), decompressed at load; float16 activations and compute",
                compute_precision="float16",
                compression="palettize",
                deployment_target="iOS16",
                nbits=bits,
            )
            for bits in (8, 6, 4, 2)
        ),
        CoreMLMode(
            name="int8",
            description="int8 weights and int8 activations (W8A8) calibrated on real photos",
            compute_precision="float16",
            compression="w8a8",
            deployment_target="iOS17",
            nbits=8,
            needs_macos=True,
        ),
    )
}


def unavailable_reason(mode: CoreMLMode) -> str | None:
    """Return why ``mode`` cannot be built on this machine, or None when it can."""
    if mode.needs_macos and platform.system() != "Darwin":
        return (
            f"Core ML {mode.name} (W8A8) calibrates activations with Core ML's predict, which runs only on "
            "macOS; on this machine use --quant int8-weights (int8 weights, float16 activations)."
        )
    return None


def convert(
    model,
    mode: CoreMLMode,
    *,
    labels: list[str],
    output_kind: str,
    metadata: dict,
    log_path: Path,
    calibration=None,
    cache: dict | None = None,
):
    """Convert a batch-1 Keras model taking 0..255 pixels to a Core ML ML Program in ``mode``.

    ``output_kind`` is ``"logits"`` or ``"probabilities"``. ``metadata`` gives ``description``,
    ``licence``, ``version``, ``author`` and ``user_defined`` (str to str) for the package.
    ``calibration`` contains (N, H, W, 3) uint8 photos, needed by the W8A8 mode only. coremltools'
    output goes to ``log_path``. ``cache``, a dict kept across calls for the same model, holds the
    uncompressed conversion per compute precision, so that the compressed modes, which start from
    it, skip the TensorFlow frontend (about 10 s for V2 at 224). Weight compression raises the
    package's deployment target to what its ops need (iOS 16 for the constexpr ops). Returns a
    ``coremltools.models.MLModel``.
    """
    reason = unavailable_reason(mode)
    if reason is not None:
        raise CoreMLConversionError(reason)
    if model.inputs[0].shape[0] != 1:
        raise CoreMLConversionError(
            f"Export needs a batch-1 model; got input shape {tuple(model.inputs[0].shape)}."
        )
    with captured_output(log_path):
        try:
            cache = {} if cache is None else cache
            # Weight compression raises the target itself; activation quantization needs iOS 17 from the start.
            target = mode.deployment_target if mode.compression == "w8a8" else BASE_DEPLOYMENT_TARGET
            key = (mode.compute_precision, target)
            if key not in cache:
                cache[key] = _convert_classifier(
                    model, mode.compute_precision, target=target, labels=labels, output_kind=output_kind
                )
            mlmodel = _compress(cache[key], mode, calibration)
        except Exception as error:  # coremltools raises many unrelated types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CoreMLConversionError(
                f"coremltools failed in Core ML mode {mode.name}: {first_line} (full log: {log_path})"
            ) from None
    _set_metadata(mlmodel, metadata, output_kind=output_kind)
    return mlmodel


def import_coremltools():
    """Import coremltools with its start-up warnings (untested TensorFlow, no native runtime) kept quiet."""
    import sys

    if "coremltools" not in sys.modules:
        from mobile_export._tf import import_tensorflow

        import_tensorflow()
        with captured_output(None):
            import coremltools  # noqa: F401
    import coremltools

    return coremltools


def _convert_classifier(model, compute_precision: str, *, target: str, labels: list[str], output_kind: str):
    ct = import_coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    _, height, width, _ = (int(side) for side in model.inputs[0].shape)
    target = getattr(ct.target, target)
    precision = ct.precision.FLOAT16 if compute_precision == "float16" else ct.precision.FLOAT32
    # The TensorFlow frontend names its placeholder after the Keras input layer ("pixels" here).
    image = ct.ImageType(
        name=model.inputs[0].name,
        shape=(1, height, width, 3),
        scale=1.0,
        bias=[0.0, 0.0, 0.0],
        color_layout=ct.colorlayout.RGB,
    )
    program = ct.convert(
        model,
        source="tensorflow",
        convert_to="milinternal",
        inputs=[image],
        minimum_deployment_target=target,
        compute_precision=precision,
    )

    main = program.functions["main"]
    (scores,) = main.outputs
    with main:
        # From iOS 16 on, a float16 program keeps its float16 output; the app and parity read float32.
        if scores.dtype != types.fp32:
            scores = mb.cast(x=scores, dtype="fp32", name="scores_fp32")
        if output_kind == "logits":
            probabilities = mb.softmax(x=scores, axis=-1, name="probabilities")
            scores.name = "logits"
        else:
            probabilities = scores
            scores = mb.identity(x=probabilities, name="probabilities_copy")
            probabilities.name, scores.name = "probabilities_classified", "probabilities"
    main.set_outputs([probabilities, scores])
    # NOTE: coremltools 9.0 indexes the frontend's output types by the outputs after the classify op
    # is added, which are one more, and fails with IndexError for a classifier with a second output.
    # Without recorded output types every output keeps its program dtype (float32 here).
    main.set_output_types(None)
    classifier = ct.ClassifierConfig(
        list(labels), predicted_feature_name=LABEL_OUTPUT, predicted_probabilities_output=probabilities.name
    )
    return ct.convert(
        program,
        convert_to="mlprogram",
        classifier_config=classifier,
        minimum_deployment_target=target,
        # The first conversion already optimized the program and inserted the float16 casts.
        compute_precision=ct.precision.FLOAT32,
        pass_pipeline=ct.PassPipeline.EMPTY,
    )


def _compress(mlmodel, mode: CoreMLMode, calibration):
    if mode.compression is None:
        return mlmodel
    import coremltools.optimize.coreml as cto

    if mode.compression == "linear":
        config = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD
        )
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
    if mode.compression == "palettize":
        config = cto.OpPalettizerConfig(
            mode="kmeans", nbits=mode.nbits, granularity="per_tensor", weight_threshold=WEIGHT_THRESHOLD
        )
        return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
    if mode.compression == "w8a8":
        # NOTE: reached only on macOS, where Core ML's predict runs the calibration photos, so this
        # branch has not run in this repository's Linux checks.
        if calibration is None or len(calibration) == 0:
            raise CoreMLConversionError(f"Core ML mode {mode.name} needs calibration photos; none were given.")
        from coremltools.optimize.coreml.experimental import linear_quantize_activations
        from PIL import Image

        (image_input,) = [feature.name for feature in mlmodel.get_spec().description.input]
        samples = [{image_input: Image.fromarray(photo)} for photo in calibration]
        activations = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
        quantized = linear_quantize_activations(mlmodel, activations, samples)
        weights = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD
        )
        return cto.linear_quantize_weights(quantized, cto.OptimizationConfig(global_config=weights))
    raise CoreMLConversionError(f"Core ML compression {mode.compression!r} is not one of linear, palettize, w8a8.")


def _set_metadata(mlmodel, metadata: dict, *, output_kind: str) -> None:
    mlmodel.short_description = metadata["description"]
    mlmodel.license = metadata["licence"]
    mlmodel.version = metadata["version"]
    mlmodel.author = metadata["author"]
    for key, value in metadata.get("user_defined", {}).items():
        mlmodel.user_defined_metadata[key] = value
    (input_name,) = [feature.name for feature in mlmodel.get_spec().description.input]
    mlmodel.input_description[input_name] = metadata.get(
        "input_description", "RGB pixels 0..255; normalization happens inside the model."
    )
    mlmodel.output_description[LABEL_OUTPUT] = "the most probable class label"
    mlmodel.output_description[PROBABILITIES_OUTPUT] = "the probability of each class label"
    mlmodel.output_description[output_kind] = f"raw {output_kind} of every class, float32 [1, classes]"


def describe_io(mlmodel) -> dict:
    """Read the package's input and output features back from its spec, as a JSON-ready dict."""
    from coremltools.proto import FeatureTypes_pb2

    color_space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name
    array_type = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name
    spec = mlmodel.get_spec()
    features = {"inputs": [], "outputs": []}
    for key, items in (("inputs", spec.description.input), ("outputs", spec.description.output)):
        for feature in items:
            kind = feature.type.WhichOneof("Type")
            entry = {"name": feature.name, "type": kind}
            if kind == "imageType":
                entry |= {
                    "height": feature.type.imageType.height,
                    "width": feature.type.imageType.width,
                    "color_space": color_space(feature.type.imageType.colorSpace),
                }
            elif kind == "multiArrayType":
                array = feature.type.multiArrayType
                entry |= {"shape": list(array.shape), "dtype": array_type(array.dataType).lower()}
            features[key].append(entry)
    features["specification_version"] = spec.specificationVersion
    return features


def check_io(mlmodel, mode: CoreMLMode, *, height: int, width: int, classes: int, output_kind: str) -> dict:
    """Raise CoreMLConversionError unless the package has the promised input, outputs and target; return them."""
    ct = import_coremltools()

    io = describe_io(mlmodel)
    problems = []
    expected_version = getattr(ct.target, mode.deployment_target).value
    if io["specification_version"] != expected_version:
        problems.append(
            f"specification version is {io['specification_version']}, expected {expected_version} "
            f"({mode.deployment_target})"
        )
    inputs = io["inputs"]
    if [entry.get("type") for entry in inputs] != ["imageType"]:
        problems.append(f"inputs are {inputs}, expected one RGB image")
    elif (inputs[0]["height"], inputs[0]["width"], inputs[0]["color_space"]) != (height, width, "RGB"):
        problems.append(f"input image is {inputs[0]}, expected RGB {height}x{width}")
    outputs = {entry["name"]: entry for entry in io["outputs"]}
    if sorted(outputs) != sorted([LABEL_OUTPUT, PROBABILITIES_OUTPUT, output_kind]):
        problems.append(f"outputs are {sorted(outputs)}, expected {LABEL_OUTPUT}, {PROBABILITIES_OUTPUT}, {output_kind}")
    elif outputs[output_kind].get("shape") != [1, classes] or outputs[output_kind].get("dtype") != "float32":
        problems.append(f"output {output_kind} is {outputs[output_kind]}, expected float32 [1, {classes}]")
    if problems:
        raise CoreMLConversionError(f"The Core ML package breaks its contract: {'; '.join(problems)}.")
    return io


def save(mlmodel, path: Path) -> None:
    """Write the package folder to ``path`` (which ends in .mlpackage)."""
    mlmodel.save(str(path))


def package_sha256(path: Path) -> str:
    """Return one sha256 for a file or a folder such as an .mlpackage.

    For a folder it hashes, in sorted order of the files' relative POSIX paths, one line per file:
    ``<sha256 of the file's bytes>  <relative path>\\n``. Folders themselves, permissions and
    times do not count, so a copy of the package hashes the same.
    """
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    lines = []
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()):
        lines.append(f"{_file_sha256(file)}  {file.relative_to(path).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def package_size(path: Path) -> int:
    """Return the bytes of a file, or of all files in a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def contract_metadata(contract: dict) -> dict:
    """Return the ``user_defined_metadata`` entries that carry the input contract."""
    return {"mobile_export.input_contract": json.dumps(contract, sort_keys=True)}
