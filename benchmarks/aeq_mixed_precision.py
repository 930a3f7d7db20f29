"""Compare ai-edge-quantizer (AEQ) 0.10.0 recipes with our int8 export of the ImageNet MobileNetV2.

Every variant starts from the same float .tflite: the Keras model converted by
``tf.lite.TFLiteConverter`` with no optimizations, normalization unfolded (SUB and MUL in front of
the stem), float32 input 0..255. AEQ calibrates once on our 100 representative samples, and every
recipe quantizes from that one calibration result. Parity is measured against the float Keras
model on the 13 bundled validation photos with :func:`mobile_export.validate.parity.compare`.

Run (AEQ installed with ``pip install --no-deps --target DIR ai-edge-quantizer==0.10.0
immutabledict``)::

    PYTHONPATH=$PWD:DIR python benchmarks/aeq_mixed_precision.py [--out FOLDER]

The figures recorded in ``aeq_mixed_precision.json`` beside this script came from two runs of it
(the second with ``--only`` for the last three variants).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mobile_export import model_source
from mobile_export.calibrate import output_range_for, representative_dataset
from mobile_export.contract import InputContract
from mobile_export.convert import ranges
from mobile_export.data import bundled_photos, load_folder
from mobile_export.runtime.litert import LiteRTModel
from mobile_export.validate.parity import compare

SIGNATURE = "serving_default"
LATENCY_RUNS = 50

# Op scopes (AEQ matches the regex against an op's output tensor names) that get 16-bit
# activations in the mixed recipes. The names come from our V2 builder's Keras layer names.
LATE_BLOCKS = r"/(block1[4-7]_|head_|pool_)|StatefulPartitionedCall"
EARLY_BLOCKS = r"/(normalize_|stem_|block[1-3]_)"
# The late set without the classifier, so that the output stays int8.
LATE_NO_FC = r"/(block1[4-7]_|head_|pool_)"
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def load_inputs(samples: int, seed: int) -> dict:
    """Load the float Keras model, the photos, the float reference and the representative samples."""
    source = model_source.from_registry("mobilenet_v2", alpha=None, resolution=None, minimalistic=False, weights=None)
    model, labels = source.load(seed=seed)
    contract = InputContract(height=source.resolution[0], width=source.resolution[1])
    calibration = load_folder(bundled_photos("calibration"), contract)
    validation = load_folder(bundled_photos("validation"), contract)

    def float_outputs(images: np.ndarray) -> np.ndarray:
        rows = [np.asarray(model(images[i : i + 1].astype(np.float32), training=False))[0] for i in range(len(images))]
        return np.stack(rows)

    return {
        "model": model,
        "labels": labels,
        "validation": validation,
        "reference": float_outputs(validation.pixels),
        # The same doubled logits range our int8 export fixes for its output tensor.
        "output_range": output_range_for(float_outputs(calibration.pixels)),
        "representative": representative_dataset(calibration.pixels, count=samples, seed=seed),
    }


def float_tflite(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def input_name(content: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    (name,) = Interpreter(model_content=content).get_signature_list()[SIGNATURE]["inputs"]
    return name


def aeq_calibrate(content: bytes, representative: np.ndarray) -> dict:
    """Calibrate with AEQ's default calibrator (min/max, moving average with factor 0.95)."""
    from ai_edge_quantizer import quantizer, recipe

    name = input_name(content)
    data = {SIGNATURE: [{name: sample[None].astype(np.float32)} for sample in representative]}
    runner = quantizer.Quantizer(content, recipe.static_wi8_ai8())
    return runner.calibrate(data, num_threads=2)


def aeq_quantize(content: bytes, qsvs: dict, scopes: list[tuple]) -> bytes:
    """Quantize with one static config per ``(regex, activation bits, algorithm[, op name])``.

    Later rows win where several match an op; a row without an op name covers every supported op.
    """
    from ai_edge_quantizer import qtyping, quantizer

    runner = quantizer.Quantizer(content)
    for regex, activation_bits, algorithm, *operation in scopes:
        runner.add_static_config(
            regex=regex,
            operation_name=qtyping.TFLOperationName(operation[0]) if operation else qtyping.TFLOperationName.ALL_SUPPORTED,
            activation_num_bits=activation_bits,
            weight_num_bits=8,
            algorithm_key=algorithm,
        )
    result = runner.quantize(qsvs, enable_progress_report=False)
    return bytes(result.quantized_model)


def with_io_ranges(qsvs: dict, content: bytes, output_range: tuple[float, float]) -> dict:
    """Return ``qsvs`` with the input range set to 0..255 and the output range to ``output_range``.

    AEQ quantizes the graph's input and output tensors themselves, so their calibrated ranges
    become the I/O scales. A moving-average input max below 255 would clip bright pixels.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    changed = dict(qsvs)
    for name, (low, high) in ((inp["name"], (0.0, 255.0)), (out["name"], output_range)):
        old = qsvs[name]
        changed[name] = {
            **old,
            "min": np.full_like(np.asarray(old["min"]), low),
            "max": np.full_like(np.asarray(old["max"]), high),
        }
    return changed


def with_mse_ranges(qsvs: dict, content: bytes, representative: np.ndarray, seed: int) -> dict:
    """Return ``qsvs`` with our least-error 8-bit clipping ranges for every activation.

    The values come from the float model's intermediate tensors on up to ``ranges.MAX_SAMPLES``
    samples. The search starts from the wider of AEQ's range and the extremes seen there.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    by_name = {detail["name"]: detail["index"] for detail in interpreter.get_tensor_details()}
    names = [name for name in qsvs if name in by_name and name not in (inp["name"], out["name"])]

    rng = np.random.default_rng(seed)
    seen: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for sample in representative[: ranges.MAX_SAMPLES]:
        interpreter.set_tensor(inp["index"], sample[None].astype(np.float32))
        interpreter.invoke()
        for name in names:
            values = interpreter.get_tensor(by_name[name]).ravel()
            if len(values) > ranges.VALUES_PER_SAMPLE:
                values = rng.choice(values, size=ranges.VALUES_PER_SAMPLE, replace=False)
            seen[name].append(values.astype(np.float32))

    refined = dict(qsvs)
    for name in names:
        values = np.concatenate(seen[name])
        old = qsvs[name]
        low = min(float(np.min(old["min"])), float(values.min()), 0.0)
        high = max(float(np.max(old["max"])), float(values.max()), 0.0)
        chosen = ranges.best_range(values, low, high)
        refined[name] = {
            **old,
            "min": np.full_like(np.asarray(old["min"]), chosen[0]),
            "max": np.full_like(np.asarray(old["max"]), chosen[1]),
        }
    return refined


def describe_io(runner: LiteRTModel) -> str:
    def one(detail: dict) -> str:
        dtype = np.dtype(detail["dtype"]).name
        if dtype.startswith("float"):
            return dtype
        scale, zero_point = detail["quantization"]
        return f"{dtype} s={scale:.4g} zp={zero_point}"

    return f"{one(runner.input)} -> {one(runner.output)}"


def op_dtypes(content: bytes) -> str:
    """Count ops by (name, output dtype), e.g. ``CONV_2D:int16 x12``, for the mixed models."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    dtypes = {detail["index"]: np.dtype(detail["dtype"]).name for detail in interpreter.get_tensor_details()}
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        key = f"{op['op_name']}:{dtypes.get(op['outputs'][0], '?')}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} x{count}" for key, count in sorted(counts.items()))


def measure(name: str, content: bytes, inputs: dict, seconds: float, folder: Path) -> dict:
    (folder / f"{name}.tflite").write_bytes(content)
    runner = LiteRTModel(content)
    outputs = runner.run_all(inputs["validation"].pixels)
    names = [path.name for path in inputs["validation"].paths]
    metrics = compare(inputs["reference"], outputs, names=names, labels=inputs["labels"])
    latency = LiteRTModel(content, num_threads=1).median_latency_ms(runs=LATENCY_RUNS)
    row = {
        "variant": name,
        "sqnr_db": round(metrics["sqnr_db"], 2),
        "sqnr_db_min": round(metrics["sqnr_db_min"], 2),
        "top1_kept": f"{metrics['images'] - metrics['top1_changed']}/{metrics['images']}",
        "cosine_min": round(metrics["cosine_min"], 4),
        "size_kb": round(len(content) / 1024),
        "latency_ms_1thread": round(latency, 2),
        "quantize_s": round(seconds, 1),
        "io": describe_io(runner),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/aeq_work"), help="folder for the .tflite files and results.json")
    parser.add_argument("--samples", type=int, default=100, help="representative samples for calibration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    inputs = load_inputs(args.samples, args.seed)
    content = float_tflite(inputs["model"])

    start = time.perf_counter()
    qsvs = aeq_calibrate(content, inputs["representative"])
    calibrate_s = time.perf_counter() - start
    print(f"AEQ calibration: {len(qsvs)} tensors, {calibrate_s:.1f} s on {args.samples} samples", flush=True)

    start = time.perf_counter()
    mse_qsvs = with_mse_ranges(qsvs, content, inputs["representative"], args.seed)
    mse_s = time.perf_counter() - start
    print(f"least-error ranges for AEQ's tensors: {mse_s:.1f} s", flush=True)

    ranged = with_io_ranges(qsvs, content, inputs["output_range"])
    mse_ranged = with_io_ranges(mse_qsvs, content, inputs["output_range"])
    minmax, octav, mse = AlgorithmName.MIN_MAX_UNIFORM_QUANT, AlgorithmName.OCTAV, AlgorithmName.MSE
    # Later rows win, so a row for CONV_2D-like ops with OCTAV or MSE weights must follow '.*'.
    variants = {
        "aeq-a8w8": (qsvs, [(".*", 8, minmax)]),
        "aeq-a8w8-io": (ranged, [(".*", 8, minmax)]),
        "aeq-a8w8-io-octav": (ranged, [(".*", 8, octav)]),
        "aeq-a8w8-io-mse-weights": (ranged, [(".*", 8, minmax), (".*", 8, mse)]),
        "aeq-a8w8-our-ranges": (mse_ranged, [(".*", 8, minmax)]),
        "aeq-a8w8-our-ranges-octav": (mse_ranged, [(".*", 8, octav)]),
        "aeq-mixed-late-a16": (ranged, [(".*", 8, minmax), (LATE_BLOCKS, 16, minmax)]),
        "aeq-mixed-early-a16": (ranged, [(".*", 8, minmax), (EARLY_BLOCKS, 16, minmax)]),
        "aeq-mixed-early-late-a16": (ranged, [(".*", 8, minmax), (EARLY_BLOCKS, 16, minmax), (LATE_BLOCKS, 16, minmax)]),
        "aeq-mixed-late-a16-our-ranges": (mse_ranged, [(".*", 8, minmax), (LATE_BLOCKS, 16, minmax)]),
        "aeq-a8w8-io-octav-conv-weights": (ranged, [(".*", 8, minmax)] + [(".*", 8, octav, op) for op in WEIGHT_OPS]),
        "aeq-mixed-early-late-a16-our-ranges": (
            mse_ranged, [(".*", 8, minmax), (EARLY_BLOCKS, 16, minmax), (LATE_BLOCKS, 16, minmax)],
        ),
        "aeq-mixed-late-no-fc-a16-our-ranges": (mse_ranged, [(".*", 8, minmax), (LATE_NO_FC, 16, minmax)]),
        "aeq-a16w8": (ranged, [(".*", 16, minmax)]),
    }

    rows = []
    for name, (variant_qsvs, scopes) in variants.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        try:
            quantized = aeq_quantize(content, variant_qsvs, scopes)
        except Exception as error:  # AEQ raises many types; record the message and go on
            print(f"{name}: FAILED {type(error).__name__}: {str(error)[:400]}", flush=True)
            rows.append({"variant": name, "error": f"{type(error).__name__}: {str(error)[:400]}"})
            continue
        seconds = time.perf_counter() - start
        try:
            rows.append(measure(name, quantized, inputs, seconds, args.out))
        except Exception as error:  # LiteRT rejects some graphs at allocate or invoke
            print(f"{name}: quantized but LiteRT FAILED {type(error).__name__}: {str(error)[:400]}", flush=True)
            rows.append({"variant": name, "error": f"LiteRT: {type(error).__name__}: {str(error)[:400]}"})
            continue
        if "mixed" in name or name == "aeq-a8w8-io":
            print(f"  ops of {name}: {op_dtypes(quantized)}", flush=True)

    (args.out / "results.json").write_text(json.dumps({"calibrate_s": calibrate_s, "mse_ranges_s": mse_s, "rows": rows}, indent=1))
    print()
    print("| variant | median SQNR dB | min SQNR dB | top-1 kept | size KB | 1-thread ms | quantize s | I/O |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if "error" in row:
            print(f"| {row['variant']} | failed: {row['error'][:120]} | | | | | | |")
        else:
            print(
                f"| {row['variant']} | {row['sqnr_db']} | {row['sqnr_db_min']} | {row['top1_kept']} | {row['size_kb']} "
                f"| {row['latency_ms_1thread']} | {row['quantize_s']} | {row['io']} |"
            )


if __name__ == "__main__":
    main()
