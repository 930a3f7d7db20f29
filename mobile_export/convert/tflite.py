"""Keras to TFLite (LiteRT): one row per quantization mode, and a read-back of what came out.

The converter decides the input and output tensors' dtype, scale and zero point. Nothing
downstream trusts what was requested: :func:`read_io` reads them back from the flatbuffer through
the LiteRT interpreter, and :func:`check_io` compares them with the mode's promise before any
file is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mobile_export._tf import captured_output, import_tensorflow


class ConversionError(RuntimeError):
    """The converter failed or produced a model that breaks the requested contract."""


@dataclasses.dataclass(frozen=True)
class QuantMode:
    """One TFLite export mode."""

    name: str
    description: str
    needs_calibration: bool
    input_dtype: str
    output_dtype: str
    # For integer input: the quantization a raw 0..255 pixel must pass through unchanged.
    input_quantization: tuple[float, int] | None = None


QUANT_MODES = {
    mode.name: mode
    for mode in (
        QuantMode(
            name="fp32",
            description="float32 weights and activations; the converter's graph, no quantization",
            needs_calibration=False,
            input_dtype="float32",
            output_dtype="float32",
        ),
        QuantMode(
            name="int8",
            description=(
                "full integer: int8 weights (per channel) and int8 activations calibrated on real "
                "photos; uint8 input and output"
            ),
            needs_calibration=True,
            input_dtype="uint8",
            output_dtype="uint8",
            input_quantization=(1.0, 0),
        ),
    )
}


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


def convert(
    model,
    mode: QuantMode,
    *,
    representative: np.ndarray | None,
    log_path: Path,
    output_range: tuple[float, float] | None = None,
    progress=None,
) -> bytes:
    """Convert a batch-1 Keras model to a TFLite flatbuffer in ``mode``.

    ``representative`` holds float32 calibration inputs (N, H, W, 3) in 0..255, as the model
    takes them; full-integer modes need it. ``output_range`` fixes the quantized output's
    ``(min, max)`` instead of taking it from calibration. Converter output goes to ``log_path``;
    ``progress(done, total)`` is called as calibration consumes samples.
    """
    if model.inputs[0].shape[0] != 1:
        raise ConversionError(
            f"Export needs a batch-1 model so that the graph has no dynamic shapes; got input "
            f"shape {tuple(model.inputs[0].shape)}."
        )
    tf = import_tensorflow()
    if output_range is not None and mode.needs_calibration:
        model = _with_output_range(model, output_range)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)

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
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.as_dtype(mode.input_dtype)
        converter.inference_output_type = tf.as_dtype(mode.output_dtype)
        # Per-channel weights are the converter's default in full-integer mode. Setting the flag
        # explicitly keeps them if that default ever changes.
        converter._experimental_disable_per_channel = False

    with captured_output(log_path):
        try:
            return converter.convert()
        except Exception as error:  # the converter raises many unrelated types
            raise ConversionError(
                f"The TFLite converter failed in mode {mode.name}: {str(error).splitlines()[0]} "
                f"(full log: {log_path})."
            ) from error


def _with_output_range(model, output_range: tuple[float, float]):
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
            return tf.quantization.fake_quant_with_min_max_args(x, min=low, max=high, num_bits=8)

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


def check_io(mode: QuantMode, inp: TensorInfo, out: TensorInfo, *, input_shape: tuple[int, ...]) -> None:
    """Raise ConversionError unless the converted model's I/O is what ``mode`` promises."""
    problems = []
    if inp.dtype != mode.input_dtype:
        problems.append(f"input dtype is {inp.dtype}, expected {mode.input_dtype}")
    if out.dtype != mode.output_dtype:
        problems.append(f"output dtype is {out.dtype}, expected {mode.output_dtype}")
    if inp.shape != tuple(input_shape):
        problems.append(f"input shape is {list(inp.shape)}, expected {list(input_shape)}")
    if mode.input_quantization is not None:
        scale, zero_point = mode.input_quantization
        if not np.isclose(inp.scale, scale, rtol=1e-6) or inp.zero_point != zero_point:
            problems.append(
                f"input quantization is scale {inp.scale:g}, zero point {inp.zero_point}; raw pixels "
                f"need scale {scale:g}, zero point {zero_point}"
            )
    if np.dtype(mode.output_dtype).kind in "iu" and out.scale <= 0:
        problems.append(f"output scale is {out.scale:g}, so the output cannot be dequantized")
    if problems:
        raise ConversionError(f"The {mode.name} model breaks its contract: {'; '.join(problems)}.")
