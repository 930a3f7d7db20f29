"""Keras to TFLite (LiteRT): one row per quantization mode, and a read-back of what came out.

The converter decides the input and output tensors' dtype, scale and zero point. Nothing
downstream trusts what was requested: :func:`read_io` reads them back from the flatbuffer through
the LiteRT interpreter, and :func:`check_io` compares them with the mode's promise before any
file is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobile_export._tf import captured_output, import_tensorflow


class ConversionError(RuntimeError):
    """The converter failed or produced a model that breaks the requested contract."""


@dataclasses.dataclass(frozen=True)
class QuantMode:
    """One TFLite export mode and the I/O types it can have (the first is the default)."""

    name: str
    description: str
    needs_calibration: bool
    io_types: tuple[str, ...]


QUANT_MODES = {
    mode.name: mode
    for mode in (
        QuantMode(
            name="fp32",
            description="float32 weights and activations; the converter's graph, no quantization",
            needs_calibration=False,
            io_types=("float32",),
        ),
        QuantMode(
            name="fp16",
            description="float16 weights, dequantized to float32 at load time; float32 activations",
            needs_calibration=False,
            io_types=("float32",),
        ),
        QuantMode(
            name="dynamic",
            description="dynamic range: int8 weights (per channel), float activations quantized on the fly",
            needs_calibration=False,
            io_types=("float32",),
        ),
        QuantMode(
            name="int8",
            description="full integer: int8 weights (per channel) and int8 activations calibrated on real photos",
            needs_calibration=True,
            io_types=("uint8", "int8", "float32"),
        ),
        QuantMode(
            name="int16x8",
            description="int16 activations calibrated on real photos, int8 weights (per channel)",
            needs_calibration=True,
            io_types=("int16", "float32"),
        ),
    )
}

# How a raw 0..255 pixel enters each integer input type. uint8 and int8 take pixels unchanged
# (int8 shifted by -128); int16 is symmetric, so the converter gives it scale 255 / 32767.
INPUT_QUANTIZATION = {"uint8": (1.0, 0), "int8": (1.0, -128), "int16": (255.0 / 32767.0, 0)}

# Ops that a mode has no integer kernel for in TFLite 2.21, found by converting every
# architecture. Each maps to the layer-name suffix our builders give that op.
KERNEL_GAPS = {"int16x8": {"HARD_SWISH": "_hswish"}}


def kernel_gaps(model, mode: QuantMode) -> dict[str, list[str]]:
    """Return ``{op: [layer names]}`` for the layers of ``model`` that ``mode`` cannot run in integer."""
    gaps = {}
    for op, suffix in KERNEL_GAPS.get(mode.name, {}).items():
        names = [layer.name for layer in all_layers(model) if layer.name.endswith(suffix)]
        if names:
            gaps[op] = names
    return gaps


def all_layers(model):
    """Yield every layer of ``model``, including the layers of nested models."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from all_layers(layer)
        yield layer


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A model input or output as the LiteRT interpreter reports it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"shape": list(self.shape)}


@dataclasses.dataclass
class Calibrated:
    """A calibrated float flatbuffer, ready to quantize with different choices.

    Calibration is the slow step (it runs every representative sample), so the rescue search
    quantizes this one model many times with different layers left in float.
    """

    content: bytes
    mode: QuantMode
    io_type: str
    per_tensor: bool
    log_path: Path
    range_changes: list = dataclasses.field(default_factory=list)
    # The calibrator's own min/max flatbuffer, kept when ``content`` contains refined ranges.
    calibrator_content: bytes | None = None

    def with_calibrator_ranges(self) -> Calibrated:
        """Return this calibration with the calibrator's min/max ranges in place of the refined ones."""
        if self.calibrator_content is None:
            return self
        return dataclasses.replace(self, content=self.calibrator_content, range_changes=[], calibrator_content=None)


ACTIVATION_RANGES = ("mse", "minmax")


def convert(
    model,
    mode: QuantMode,
    *,
    io_type: str | None = None,
    representative: np.ndarray | None,
    log_path: Path,
    output_range: tuple[float, float] | None = None,
    per_tensor: bool = False,
    allow_float_ops: bool = False,
    activation_ranges: str = "minmax",
    progress=None,
) -> bytes:
    """Convert a batch-1 Keras model to a TFLite flatbuffer in ``mode``.

    ``io_type`` is one of ``mode.io_types`` (default: the first). ``representative`` holds
    float32 calibration inputs (N, H, W, 3) in 0..255, as the model takes them; calibrated modes
    need it. ``output_range`` fixes the quantized output's ``(min, max)`` instead of taking it
    from calibration. ``per_tensor`` turns off per-channel weights; ``allow_float_ops`` lets ops
    without an integer kernel run in float. ``activation_ranges="mse"`` (int8 only) replaces
    the calibrator's min/max ranges with least-error ones; see :mod:`.ranges`. Converter output
    goes to ``log_path``; ``progress(done, total)`` is called as calibration consumes samples.
    """
    if activation_ranges not in ACTIVATION_RANGES:
        raise ConversionError(f"Activation ranges {activation_ranges!r}: expected one of {', '.join(ACTIVATION_RANGES)}.")
    if mode.name == "int8" and activation_ranges == "mse":
        calibrated = calibrate(
            model, mode, io_type=io_type, representative=representative, log_path=log_path,
            output_range=output_range, per_tensor=per_tensor, progress=progress,
        )
        return quantize(calibrated)
    converter = make_converter(
        model,
        mode,
        io_type=io_type,
        representative=representative,
        output_range=output_range,
        per_tensor=per_tensor,
        allow_float_ops=allow_float_ops,
        progress=progress,
    )
    with captured_output(log_path), _conversion_errors(mode, log_path):
        return converter.convert()


def calibrate(
    model,
    mode: QuantMode,
    *,
    io_type: str | None = None,
    representative: np.ndarray,
    log_path: Path,
    output_range: tuple[float, float] | None = None,
    per_tensor: bool = False,
    refine_ranges: bool = True,
    progress=None,
) -> Calibrated:
    """Run the converter's calibration for full int8 and, by default, refine its ranges.

    The converter's own ``convert()`` calibrates and quantizes in one call; this stops in
    between (``_experimental_calibrate_only``) so the ranges can be improved, and so that
    :func:`quantize` can be called again without calibrating again.
    """
    from mobile_export.convert import ranges

    if mode.name != "int8":
        raise ConversionError(f"Separate calibration supports int8 only, not {mode.name}.")
    converter = make_converter(
        model, mode, io_type=io_type, representative=representative, output_range=output_range,
        per_tensor=per_tensor, progress=progress,
    )
    converter._experimental_calibrate_only = True
    with captured_output(log_path), _conversion_errors(mode, log_path):
        content = converter.convert()
    calibrated = Calibrated(
        content=content, mode=mode, io_type=io_type or mode.io_types[0], per_tensor=per_tensor, log_path=log_path
    )
    if not refine_ranges:
        return calibrated
    refined, changes = ranges.refine(content, representative)
    return dataclasses.replace(calibrated, content=refined, range_changes=changes, calibrator_content=content)


def quantize(calibrated: Calibrated, *, float_nodes: Sequence[str] = ()) -> bytes:
    """Quantize a calibrated model to full int8, leaving the ops named in ``float_nodes`` in float.

    ``float_nodes`` are op output tensor names as in :func:`op_outputs`; those ops keep float32
    kernels, with QUANTIZE and DEQUANTIZE ops around them.
    """
    from tensorflow.lite.python import convert as tflite_convert

    tf = import_tensorflow()
    with captured_output(calibrated.log_path), _conversion_errors(calibrated.mode, calibrated.log_path):
        return tflite_convert.mlir_quantize(
            calibrated.content,
            disable_per_channel=calibrated.per_tensor,
            input_data_type=tf.as_dtype(calibrated.io_type),
            output_data_type=tf.as_dtype(calibrated.io_type),
            denylisted_nodes=list(float_nodes) or None,
        )


def op_outputs(content: bytes) -> list[str]:
    """Return the output tensor name of every op in a (calibrated) flatbuffer, in graph order."""
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(content)).subgraphs[0]
    return [graph.tensors[op.outputs[0]].name.decode("utf-8", "replace") for op in graph.operators]


@contextlib.contextmanager
def _conversion_errors(mode: QuantMode, log_path: Path):
    try:
        yield
    except ConversionError:
        raise
    except Exception as error:  # the converter raises many unrelated types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = " Pass --allow-float-ops to run such ops in float." if "not yet supported for op" in first_line else ""
        raise ConversionError(
            f"The TFLite converter failed in mode {mode.name}: {first_line}.{hint} (full log: {log_path})"
        ) from None


def make_converter(
    model,
    mode: QuantMode,
    *,
    io_type: str | None = None,
    representative: np.ndarray | None,
    output_range: tuple[float, float] | None = None,
    per_tensor: bool = False,
    allow_float_ops: bool = False,
    progress=None,
):
    """Return a ``tf.lite.TFLiteConverter`` set up for ``mode``; see :func:`convert` for the options."""
    io_type = io_type or mode.io_types[0]
    if io_type not in mode.io_types:
        raise ConversionError(f"Mode {mode.name} takes I/O types {', '.join(mode.io_types)}, not {io_type}.")
    if model.inputs[0].shape[0] != 1:
        raise ConversionError(
            f"Export needs a batch-1 model so that the graph has no dynamic shapes; got input "
            f"shape {tuple(model.inputs[0].shape)}."
        )
    tf = import_tensorflow()
    # NOTE: int16x8 keeps the calibrated output range, because a 16-bit FakeQuant op turns into
    # a DEQUANTIZE that the 16x8 quantizer rejects (TF 2.21). Confident photos can therefore
    # still saturate its output, and parity counts them.
    if output_range is not None and mode.name == "int8":
        model = _with_output_range(model, output_range, bits=8)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)

    if mode.name == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode.name == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode.needs_calibration:
        if representative is None or len(representative) == 0:
            raise ConversionError(f"Mode {mode.name} needs calibration images; none were given.")

        def samples():
            for index, sample in enumerate(representative):
                yield [sample[None].astype(np.float32)]
                if progress is not None:
                    progress(index + 1, len(representative))

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        if mode.name == "int16x8":
            ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        else:
            ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if allow_float_ops:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.target_spec.supported_ops = ops
        converter.inference_input_type = tf.as_dtype(io_type)
        converter.inference_output_type = tf.as_dtype(io_type)
    # Per-channel weights are the converter's default for conv layers. The flag is set either
    # way so that --per-tensor works and the default cannot change under us.
    converter._experimental_disable_per_channel = per_tensor
    return converter


def _with_output_range(model, output_range: tuple[float, float], *, bits: int = 8):
    """Append a FakeQuant op whose fixed range the converter adopts for the output tensor.

    Calibration sets the output range to what the calibration photos produce. Photos of clear
    subjects give larger logits than the textures and scenes calibration often uses, and an int8
    output clips them: the top classes then tie at the largest value and the answer changes.
    """
    import keras
    import tensorflow as tf

    low, high = output_range

    class OutputRange(keras.layers.Layer):
        def call(self, x):
            return tf.quantization.fake_quant_with_min_max_args(x, min=low, max=high, num_bits=bits)

    return keras.Model(model.inputs, OutputRange(name="output_range")(model.outputs[0]), name=model.name)


def read_io(model_content: bytes) -> tuple[TensorInfo, TensorInfo]:
    """Read the input and output tensors' dtype, shape, scale and zero point back from a model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    return _tensor_info(inp), _tensor_info(out)


def _tensor_info(details: dict) -> TensorInfo:
    scale, zero_point = details["quantization"]
    return TensorInfo(
        name=details["name"],
        dtype=np.dtype(details["dtype"]).name,
        shape=tuple(int(d) for d in details["shape"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def check_io(
    mode: QuantMode, io_type: str, inp: TensorInfo, out: TensorInfo, *, input_shape: tuple[int, ...]
) -> None:
    """Raise ConversionError unless the converted model's I/O is what ``mode`` and ``io_type`` promise."""
    problems = []
    if inp.dtype != io_type:
        problems.append(f"input dtype is {inp.dtype}, expected {io_type}")
    if out.dtype != io_type:
        problems.append(f"output dtype is {out.dtype}, expected {io_type}")
    if inp.shape != tuple(input_shape):
        problems.append(f"input shape is {list(inp.shape)}, expected {list(input_shape)}")
    if io_type in INPUT_QUANTIZATION:
        scale, zero_point = INPUT_QUANTIZATION[io_type]
        if not np.isclose(inp.scale, scale, rtol=1e-5) or inp.zero_point != zero_point:
            problems.append(
                f"input quantization is scale {inp.scale:g}, zero point {inp.zero_point}; raw pixels "
                f"need scale {scale:g}, zero point {zero_point}"
            )
        if out.scale <= 0:
            problems.append(f"output scale is {out.scale:g}, so the output cannot be dequantized")
    if problems:
        raise ConversionError(f"The {mode.name} model breaks its contract: {'; '.join(problems)}.")
