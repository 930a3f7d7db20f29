"""Per-layer quantization error of a calibrated export, from TFLite's QuantizationDebugger.

The debugger runs the float and the quantized model side by side and compares every quantized
tensor. The measure reported here is RMSE over scale: the root-mean-square difference between a
tensor's float values and its dequantized values, in units of the tensor's quantization step.
Rounding alone gives about 0.29 (the standard deviation of a uniform error over one step);
clipping and error carried in from earlier layers push it higher.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

DEFAULT_SAMPLES = 32


def layer_errors(
    model,
    mode,
    *,
    representative: np.ndarray,
    log_path: Path,
    samples: int = DEFAULT_SAMPLES,
    calibrated=None,
    float_nodes=(),
    **options,
) -> list[dict]:
    """Return one row per quantized tensor, worst first: ``layer``, ``op``, ``rmse_over_scale``,
    ``mse`` and ``scale``.

    With ``calibrated`` (a :class:`mobile_export.convert.tflite.Calibrated`), the debugger
    examines that calibration, with its refined ranges and ``float_nodes`` left in float, which
    is the model the export holds. Without it, ``options`` are
    :func:`mobile_export.convert.tflite.make_converter`'s and the converter calibrates anew.
    """
    from mobile_export._tf import captured_output, import_tensorflow
    from mobile_export.convert.tflite import all_layers, make_converter

    tf = import_tensorflow()
    subset = representative[:samples]

    def dataset():
        for sample in subset:
            yield [sample[None].astype(np.float32)]

    with captured_output(log_path):
        if calibrated is None:
            options = options | {"io_type": "float32"}  # the debugger compares float-interface models
            converter = make_converter(model, mode, representative=representative, **options)
            debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset)
        else:
            from tensorflow.lite.python import convert as tflite_convert

            # The debugger's own recipe for its model, applied to our calibration: float I/O,
            # and a NumericVerify op after each quantized op to compare it with float.
            debug_model = tflite_convert.mlir_quantize(
                calibrated.content,
                disable_per_channel=calibrated.per_tensor,
                enable_numeric_verify=True,
                denylisted_nodes=list(float_nodes) or None,
            )
            debugger = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=debug_model, debug_dataset=dataset
            )
        debugger.run()
        buffer = io.StringIO()
        debugger.layer_statistics_dump(buffer)
    known = {layer.name for layer in all_layers(model)}
    rows = []
    buffer.seek(0)
    for record in csv.DictReader(buffer):
        scale = float(record["scale"] or 0)
        mse = float(record["mean_squared_error"] or 0)
        if scale <= 0:
            continue
        rows.append(
            {
                "layer": layer_name(record["tensor_name"], known),
                "op": record["op_name"],
                "rmse_over_scale": float(np.sqrt(mse) / scale),
                "mse": mse,
                "scale": scale,
            }
        )
    rows.sort(key=lambda row: -row["rmse_over_scale"])
    return rows


def layer_name(tensor_name: str, known: set[str] | None = None) -> str:
    """Shorten a converter tensor name to the Keras layer it came from.

    Fused tensors are named like ``model/block16_project_bn_1/batchnorm/add_1;model/block16_...``,
    and layers of a nested model add a path level. The deepest path segment that names a known
    layer (after removing Keras' ``_1`` call suffix) wins; without ``known``, the first one does.
    """
    first = tensor_name.split(";")[0]
    parts = [re.sub(r"_\d+$", "", part) for part in first.split("/")]
    if len(parts) < 2:
        return "output" if first.startswith("StatefulPartitionedCall") else first
    matches = [part for part in parts[1:] if known and part in known]
    return matches[-1] if matches else parts[1]
