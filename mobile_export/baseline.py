"""The naive baseline: what a user gets from the same weights without this tool.

That is Keras Applications' MobileNet of the same family and width, holding the weights of our
float model, converted by the plain TFLite converter with its documented minimal recipes:

- fp32: ``TFLiteConverter.from_keras_model(model).convert()`` with no options;
- int8: ``optimizations=[tf.lite.Optimize.DEFAULT]`` and a representative dataset, so the input
  and output stay float32 and the batch dimension stays dynamic.

The Keras Applications model is a slightly different function from ours, for two reasons. It
pads stride-2 layers on the bottom and right only, where torchvision pads every side. And it
takes pixels mapped to [-1, 1] outside the model (V1, V2) or rescales them inside (V3), where
ours normalizes 0..255 pixels inside. The weight map below absorbs the normalization and the
BatchNorm epsilon exactly, so only the padding differs. Each naive export's parity is therefore
measured against its own Keras float model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

NAIVE_MODES = ("fp32", "int8")


class BaselineError(ValueError):
    """The export has no naive counterpart; the message names what is supported."""


@dataclasses.dataclass(frozen=True)
class NaiveExport:
    """One naive export written by :func:`build_naive_exports`."""

    mode: str
    model_file: Path
    parity: dict
    float_vs_ours: dict


def keras_application_with_our_weights(ours, *, arch: str, alpha: float, minimalistic: bool = False):
    """Build Keras Applications' counterpart of ``ours`` (logits, batch dimension ``None``) with its weights.

    Each weighted Keras layer gets the arrays of the layer of ours that
    :func:`~mobile_export.models.keras_import.keras_applications_to_layers` maps it to, and
    every shape is checked. Two adjustments make the layers compute what ours compute:

    - BatchNorm: Keras Applications uses epsilon 1e-3. Adding ``eps_ours - eps_keras`` to each
      moving variance keeps ``variance + epsilon``, and so the layer's output, unchanged.
    - Stem: ours normalizes pixels as ``n = (x - mean) / std`` and Keras feeds its stem
      ``u = x / 127.5 - 1``, so ``n = a * u + b`` per channel with ``a = 127.5 / std`` and
      ``b = (127.5 - mean) / std``. The stem kernel is scaled by ``a`` and ``conv(W, b)`` is
      subtracted from the stem BatchNorm's moving mean. This is exact except where the stem
      reads padding, which the two models pad differently anyway.

    Raises:
        BaselineError: ``ours`` is not a registry MobileNet with a Keras Applications family.
    """
    from mobile_export.models.keras_import import FAMILIES, build_keras_application, keras_applications_to_layers
    from mobile_export.models.weights import WeightsError

    if arch not in FAMILIES:
        raise BaselineError(f"{arch} has no Keras Applications counterpart; a naive baseline exists for {', '.join(FAMILIES)}.")
    try:
        normalize = ours.get_layer("normalize")
    except ValueError:
        raise BaselineError(f"{ours.name} has no 'normalize' layer; a naive baseline needs a registry MobileNet.") from None
    mean = np.asarray(normalize.mean, dtype=np.float64).reshape(-1)
    std = np.sqrt(np.asarray(normalize.variance, dtype=np.float64).reshape(-1))

    height, width = ours.inputs[0].shape[1:3]
    keras_model = build_keras_application(
        arch,
        alpha=alpha,
        minimalistic=minimalistic,
        input_shape=(height, width),
        weights=None,
        classifier_activation=None,
    )
    # keras_applications_to_layers builds its dict by walking Keras' weighted layers in order,
    # so its keys pair with them one to one. The arrays of this random model are not used.
    try:
        names = list(keras_applications_to_layers(keras_model, arch, alpha, minimalistic))
    except WeightsError as error:
        raise BaselineError(str(error)) from None
    weighted = [layer for layer in keras_model.layers if layer.weights]

    for keras_layer, name in zip(weighted, names, strict=True):
        ours_layer = ours.get_layer(name)
        arrays = [np.asarray(array, dtype=np.float64) for array in ours_layer.get_weights()]
        if type(ours_layer).__name__ == "BatchNormalization":
            variance = _weight_index(ours_layer, "moving_variance")
            arrays[variance] = arrays[variance] + ours_layer.epsilon - keras_layer.epsilon
        if name == "stem_conv":
            arrays[0] = arrays[0] * (127.5 / std)[None, None, :, None]
        if name == "stem_bn":
            kernel = ours.get_layer("stem_conv").get_weights()[0].astype(np.float64)
            offset = np.einsum("hwco,c->o", kernel, (127.5 - mean) / std)
            arrays[_weight_index(ours_layer, "moving_mean")] -= offset
        _assign(keras_layer, arrays, origin=name)
    return keras_model


def _weight_index(layer, suffix: str) -> int:
    return next(index for index, weight in enumerate(layer.weights) if weight.path.endswith(suffix))


def _assign(keras_layer, arrays: list[np.ndarray], *, origin: str) -> None:
    """Set ``arrays`` on ``keras_layer``, adding the 1x1 spatial axes where Keras classifies with a convolution."""
    expected = [tuple(weight.shape) for weight in keras_layer.weights]
    if len(arrays) != len(expected):
        raise BaselineError(f"Our layer {origin} has {len(arrays)} arrays, Keras' {keras_layer.name} has {len(expected)}.")
    shaped = []
    for array, shape in zip(arrays, expected, strict=True):
        if array.ndim == 2 and len(shape) == 4:
            array = array[None, None]
        if array.shape != shape:
            raise BaselineError(
                f"Our layer {origin} has an array of shape {array.shape}, Keras' {keras_layer.name} expects {shape}."
            )
        shaped.append(array.astype(np.float32))
    keras_layer.set_weights(shaped)


def naive_inputs(pixels: np.ndarray, arch: str) -> np.ndarray:
    """Map 0..255 pixels to what Keras Applications' model of ``arch`` takes, as its ``preprocess_input`` does.

    V1 and V2 take [-1, 1]; V3 rescales inside the model and takes 0..255.
    """
    values = np.asarray(pixels, dtype=np.float32)
    if arch.startswith("mobilenet_v3"):
        return values
    return values / np.float32(127.5) - np.float32(1.0)


def convert_naive(keras_model, mode: str, *, representative: np.ndarray | None = None, log_path: Path | None = None) -> bytes:
    """Convert with the converter's documented minimal recipe for ``mode`` (``fp32`` or ``int8``).

    ``representative`` contains int8's calibration inputs, already preprocessed by :func:`naive_inputs`.
    """
    from mobile_export._tf import captured_output, import_tensorflow

    if mode not in NAIVE_MODES:
        raise BaselineError(f"The naive baseline has recipes for {', '.join(NAIVE_MODES)}, not {mode}.")
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if mode == "int8":
        if representative is None or len(representative) == 0:
            raise BaselineError("The naive int8 recipe needs a representative dataset; none was given.")

        def samples():
            for sample in representative:
                yield [sample[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
    with captured_output(log_path):
        try:
            return converter.convert()
        except Exception as error:  # the converter raises many unrelated types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise BaselineError(f"The plain TFLite converter failed on the naive {mode} model: {first_line}.") from None


def _photos(record: dict, split: str, contract):
    from mobile_export.data import bundled_photos, load_folder

    source = record.get("source", "bundled real photos")
    folder = bundled_photos(split) if source == "bundled real photos" else Path(source)
    if not folder.is_dir():
        raise BaselineError(f"The {split} photos {folder} recorded in the manifest are missing; rebuild the export.")
    return load_folder(folder, contract)


def _outputs(model, inputs: np.ndarray) -> np.ndarray:
    rows = [np.asarray(model(inputs[index : index + 1], training=False))[0] for index in range(len(inputs))]
    return np.stack(rows).astype(np.float32)


def build_naive_exports(out: Path, manifest: dict, dest: Path, modes: list[str]) -> list[NaiveExport]:
    """Write the naive exports of the build in ``out`` (described by one export's ``manifest``) to ``dest``.

    Each mode gets ``dest/naive-MODE/`` with the ``.tflite`` file and ``parity.json``, which contains
    the naive export's parity against its own Keras float model on the build's validation photos,
    and how far that float model is from ours (``float_vs_ours``).
    """
    from mobile_export._tf import import_tensorflow

    import_tensorflow()
    import keras

    from mobile_export.calibrate import representative_dataset
    from mobile_export.contract import InputContract
    from mobile_export.data import load_imagenet_labels
    from mobile_export.runtime.litert import LiteRTModel
    from mobile_export.validate.parity import compare

    info = manifest["model"]
    float_path = out / "float_model.keras"
    if not float_path.is_file():
        raise BaselineError(f"{float_path} is missing; the naive baseline needs the float model that build writes to OUT.")
    ours = keras.models.load_model(float_path, safe_mode=True, compile=False)
    naive = keras_application_with_our_weights(
        ours, arch=info["arch"], alpha=float(info["alpha"]), minimalistic=bool(info.get("minimalistic", False))
    )

    contract = InputContract.from_dict(manifest["input"])
    validation = _photos(manifest["validation"], "validation", contract)
    naive_reference = _outputs(naive, naive_inputs(validation.pixels, info["arch"]))
    ours_reference = _outputs(ours, validation.pixels.astype(np.float32))
    names = [path.name for path in validation.paths]
    labels = load_imagenet_labels() if naive_reference.shape[1] == 1000 else [str(i) for i in range(naive_reference.shape[1])]
    float_vs_ours = {
        key: value
        for key, value in compare(ours_reference, naive_reference, names=names, labels=labels).items()
        if key != "per_image"
    }

    representative = None
    if "int8" in modes:
        calibration_record = manifest.get("calibration") or {}
        calibration = _photos(calibration_record, "calibration", contract)
        samples = representative_dataset(
            calibration.pixels, count=int(calibration_record.get("samples", 100)), seed=int(manifest.get("seed", 0))
        )
        representative = naive_inputs(samples, info["arch"])

    exports = []
    for mode in modes:
        folder = dest / f"naive-{mode}"
        folder.mkdir(parents=True, exist_ok=True)
        content = convert_naive(naive, mode, representative=representative, log_path=folder / "converter.log")
        model_file = folder / f"keras_applications_{info['arch']}_{float(info['alpha']):g}_{contract.height}_{mode}.tflite"
        model_file.write_bytes(content)

        runner = LiteRTModel(model_file)
        exported = np.stack([runner.run(image) for image in naive_inputs(validation.pixels, info["arch"])])
        parity = compare(naive_reference, exported, names=names, labels=labels)
        record = {
            "baseline": "naive",
            "mode": mode,
            "recipe": "TFLiteConverter.from_keras_model" + (", Optimize.DEFAULT + representative dataset" if mode == "int8" else ""),
            "reference": "Keras Applications float model with our weights",
            "float_vs_ours": float_vs_ours,
            **parity,
        }
        (folder / "parity.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        exports.append(NaiveExport(mode=mode, model_file=model_file, parity=parity, float_vs_ours=float_vs_ours))
    return exports
