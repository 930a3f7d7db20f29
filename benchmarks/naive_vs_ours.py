"""Compare our MobileNetV2 exports with the naive ones and find where the difference goes.

Writes benchmarks/naive_vs_ours.json (and bench.md, bench.png in --out). Steps:

1. build V2 (torchvision's ImageNet weights, 224 px) in fp32 and int8, or reuse --build;
2. `bench --baseline naive` on both: ours against Keras Applications' V2 with the same weights,
   converted by the plain converter (see mobile_export/baseline.py);
3. time variants of our graph, each converted with our own recipe (without the build's fixed
   int8 output range, so `ours` here differs from the build's export by one op), in rounds that
   alternate them:
   - `folded`: the normalization's scale folded into the stem convolution
     (mobile_export.models.export_graph.fold_normalization_scale; the same function);
   - `no_normalize`: the normalization left out, as the naive model leaves it to the app
     (a different input contract, for attribution only);
   - `same_padding`: SAME padding for stride-2 layers instead of symmetric PAD ops, as Keras pads
     (a different function, for attribution only);
   - `float_io` (int8 only): float32 input and output instead of uint8;
   and the naive exports again, so that every ratio in `variants` comes from one set of rounds.

Run: python benchmarks/naive_vs_ours.py [--build OUT] [--runs 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def _same_padding(model):
    """Rebuild ``model`` with SAME stride-2 layers in place of explicit zero padding (not the same function)."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.layers.ZeroPadding2D):
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and config["padding"] == "valid":
            config["padding"] = "same"
        return layer.__class__.from_config(config)

    return _with_weights(keras.models.clone_model(model, clone_function=clone), model)


def _without_normalization(model):
    """Rebuild ``model`` with its ``normalize`` layer replaced by an identity (another input contract)."""
    import keras

    def clone(layer):
        if layer.name == "normalize":
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return _with_weights(keras.models.clone_model(model, clone_function=clone), model)


def _with_weights(rewritten, original):
    for layer in rewritten.layers:
        if layer.weights:
            layer.set_weights(original.get_layer(layer.name).get_weights())
    return rewritten


def _convert(model, mode: str, representative, io_type: str | None, path: Path) -> Path:
    from mobile_export.convert.tflite import QUANT_MODES, convert

    path.write_bytes(
        convert(model, QUANT_MODES[mode], io_type=io_type, representative=representative, log_path=path.with_suffix(".log"))
    )
    return path


def _variants(build: Path, folder: Path, naive: dict[str, Path], runs: int, rounds: int) -> dict:
    """Convert and time our graph's variants, with the ``naive`` exports by mode, at 1 and 2 threads.

    Returns each model's median latencies in ms and their ratios to ``ours`` of the same mode.
    """
    import keras

    from mobile_export.bench import time_models
    from mobile_export.calibrate import representative_dataset
    from mobile_export.contract import InputContract
    from mobile_export.data import bundled_photos, load_folder
    from mobile_export.models.export_graph import fold_normalization_scale

    ours = keras.models.load_model(build / "float_model.keras", safe_mode=True, compile=False)
    calibration = load_folder(bundled_photos("calibration"), InputContract(height=224, width=224))
    representative = representative_dataset(calibration.pixels, count=100, seed=0)
    models = {
        "ours": ours,
        "folded": fold_normalization_scale(ours),
        "no_normalize": _without_normalization(ours),
        "same_padding": _same_padding(ours),
    }
    files, names = [], []
    for mode in ("fp32", "int8"):
        for name, model in models.items():
            files.append(_convert(model, mode, representative, None, folder / f"{name}_{mode}.tflite"))
            names.append(f"{name}_{mode}")
    files.append(_convert(ours, "int8", representative, "float32", folder / "float_io_int8.tflite"))
    names.append("float_io_int8")
    ranges = [(0.0, 255.0)] * len(files)
    for mode, path in naive.items():
        files.append(path)
        names.append(f"naive_{mode}")
        ranges.append((-1.0, 1.0))

    results = {}
    for threads in (1, 2):
        measured = time_models(files, ranges, threads=threads, warmup=5, runs=runs, rounds=rounds)
        for name, result in zip(names, measured, strict=True):
            results.setdefault(name, {})[f"latency_{threads}_thread{'s' if threads > 1 else ''}_ms"] = round(
                float(np.median(result["times_ms"])), 3
            )
    for name in names:
        mode = name.rsplit("_", 1)[1]
        for key, value in list(results[name].items()):
            results[name][key.replace("_ms", "_vs_ours")] = round(value / results[f"ours_{mode}"][key], 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, help="an OUT folder of `build --quant fp32 --quant int8` to reuse")
    parser.add_argument("--out", type=Path, default=None, help="folder for bench.md, bench.png and the exports")
    parser.add_argument("--runs", type=int, default=200, help="timed invocations per model and thread count")
    parser.add_argument("--rounds", type=int, default=10, help="processes per model that share the runs")
    options = parser.parse_args()

    from mobile_export import bench, pipeline
    from mobile_export._tf import import_tensorflow

    import_tensorflow()
    scratch = tempfile.TemporaryDirectory(prefix="naive-vs-ours-")
    out = options.out or Path(scratch.name) / "results"
    build = options.build
    if build is None:
        build = Path(scratch.name) / "build"
        pipeline.build(out=build, quant=["fp32", "int8"], diagnose=False, command=["benchmarks/naive_vs_ours.py"])

    start = time.perf_counter()
    rows = bench.bench(
        [build / "tflite-fp32", build / "tflite-int8"], threads=2, runs=options.runs, rounds=options.rounds,
        baseline="naive", out=out,
    )
    bench.write_results(rows, 2, out)
    variants_folder = out / "variants"
    variants_folder.mkdir(parents=True, exist_ok=True)
    naive = {row["mode"]: out / row["export"] / row["file"] for row in rows if row["origin"] == "naive"}
    variants = _variants(build, variants_folder, naive, options.runs, options.rounds)

    keep = (
        "origin", "export", "mode", "size_mb", "macs", "latency_1_thread_ms", "p90_1_thread_ms",
        "latency_2_threads_ms", "p90_2_threads_ms", "gmacs_per_s_1_thread", "gmacs_per_s_2_threads",
        "latency_vs_fp32", "latency_vs_fp32_2_threads", "dynamic_shapes", "op_counts", "not_delegated",
        "top1_kept", "metadata_kb", "vs_naive", "goals", "float_vs_ours_top1", "float_vs_ours_cosine_min",
    )
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "model": "mobilenet_v2 alpha 1.0, 224x224, torchvision ImageNet weights",
        "runs": options.runs,
        "rounds": options.rounds,
        "rows": [{key: row[key] for key in keep if key in row} for row in rows],
        "variants": variants,
        "seconds": round(time.perf_counter() - start),
    }
    (HERE / "naive_vs_ours.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(bench.table(rows, 2))
    print(json.dumps(variants, indent=2))


if __name__ == "__main__":
    main()
