"""Speed and size of exports in the LiteRT interpreter on this CPU (XNNPACK), as one table.

Each model runs in a fresh subprocess, so its peak resident memory is its own. Latency is the
median and 90th percentile of ``runs`` invocations after ``warmup`` ones, at 1 thread and at
``threads`` threads. This machine's timings are noisy when it is shared; compare ratios measured
in one run (int8 against fp32) rather than absolute numbers across runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Ops whose presence means the graph computes shapes at run time.
DYNAMIC_SHAPE_OPS = {"SHAPE", "DYNAMIC_UPDATE_SLICE", "WHERE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5"}

_WORKER = r"""
import json, resource, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter

path, threads, warmup, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
interpreter = Interpreter(model_path=path, num_threads=threads)
interpreter.allocate_tensors()
(inp,) = interpreter.get_input_details()
rng = np.random.default_rng(0)
if np.dtype(inp["dtype"]).kind == "f":
    data = rng.uniform(0, 255, inp["shape"]).astype(inp["dtype"])
else:
    info = np.iinfo(inp["dtype"])
    data = rng.integers(info.min, info.max, inp["shape"], endpoint=True).astype(inp["dtype"])
interpreter.set_tensor(inp["index"], data)
for _ in range(warmup):
    interpreter.invoke()
times = []
for _ in range(runs):
    start = time.perf_counter()
    interpreter.invoke()
    times.append((time.perf_counter() - start) * 1000)
ops = [op["op_name"] for op in interpreter._get_ops_details()]
dynamic = any(-1 in list(t["shape_signature"]) for t in interpreter.get_tensor_details())
print(json.dumps({
    "median_ms": float(np.median(times)),
    "p90_ms": float(np.percentile(times, 90)),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "ops": ops,
    "dynamic_shapes": dynamic,
}))
"""


class BenchError(ValueError):
    """A model to benchmark is missing or unreadable; the message names it."""


def _measure(model_file: Path, threads: int, warmup: int, runs: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _WORKER, str(model_file), str(threads), str(warmup), str(runs)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise BenchError(f"Benchmarking {model_file} failed: {lines[-1] if lines else 'no error output'}.")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench(models: list[str | Path], *, threads: int = 2, warmup: int = 5, runs: int = 50) -> list[dict]:
    """Benchmark each export (a model file or export folder written by ``build``)."""
    from mobile_export.predict import ExportFolderError, locate_export

    rows = []
    for model in models:
        try:
            model_file, manifest = locate_export(model)
        except ExportFolderError as error:
            raise BenchError(str(error)) from None
        if manifest["model"].get("target") == "coreml":
            raise BenchError(
                f"{model_file.parent.name} is a Core ML export; bench times LiteRT on this CPU, so pass TFLite exports "
                "(Core ML latency needs an Apple device, for example Xcode's performance report)."
            )
        single = _measure(model_file, 1, warmup, runs)
        multi = _measure(model_file, threads, warmup, runs) if threads > 1 else single
        macs = manifest.get("model", {}).get("macs")
        parity = manifest.get("parity", {})
        dynamic_ops = sorted(set(single["ops"]) & DYNAMIC_SHAPE_OPS)
        rows.append(
            {
                "export": model_file.parent.name,
                "file": model_file.name,
                "mode": manifest["model"]["quant"],
                "size_mb": model_file.stat().st_size / 1e6,
                "params": manifest["model"].get("params"),
                "macs": macs,
                "latency_1_thread_ms": single["median_ms"],
                "p90_1_thread_ms": single["p90_ms"],
                f"latency_{threads}_threads_ms": multi["median_ms"],
                f"p90_{threads}_threads_ms": multi["p90_ms"],
                "gmacs_per_s_1_thread": macs / single["median_ms"] / 1e6 if macs else None,
                "peak_rss_mb": max(single["peak_rss_mb"], multi["peak_rss_mb"]),
                "dynamic_shapes": single["dynamic_shapes"] or bool(dynamic_ops),
                "top1_kept": f"{parity.get('images', 0) - parity.get('top1_changed', 0)}/{parity.get('images', 0)}",
            }
        )
    fp32 = next((row for row in rows if row["mode"] == "fp32"), None)
    for row in rows:
        row["latency_vs_fp32"] = row["latency_1_thread_ms"] / fp32["latency_1_thread_ms"] if fp32 else None
    return rows


def table(rows: list[dict], threads: int) -> str:
    """Render benchmark rows as a Markdown table."""
    lines = [
        f"| export | size MB | MMACs | 1 thread ms (p90) | {threads} threads ms (p90) | GMAC/s | vs fp32 | peak MB "
        "| dynamic shapes | top-1 kept |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        macs = f"{row['macs'] / 1e6:.1f}" if row["macs"] else "?"
        gmacs = f"{row['gmacs_per_s_1_thread']:.1f}" if row["gmacs_per_s_1_thread"] else "?"
        ratio = f"{row['latency_vs_fp32']:.2f}x" if row["latency_vs_fp32"] else ""
        lines.append(
            f"| {row['export']} | {row['size_mb']:.2f} | {macs} | {row['latency_1_thread_ms']:.2f} "
            f"({row['p90_1_thread_ms']:.2f}) | {row[f'latency_{threads}_threads_ms']:.2f} "
            f"({row[f'p90_{threads}_threads_ms']:.2f}) | {gmacs} | {ratio} | {row['peak_rss_mb']:.0f} | "
            f"{'yes' if row['dynamic_shapes'] else 'no'} | {row['top1_kept']} |"
        )
    return "\n".join(lines)


def adb_script(models: list[Path], *, threads: int = 4, runs: int = 50) -> str:
    """Return a shell script that runs each model through TFLite's ``benchmark_model`` over adb.

    The script expects ``benchmark_model`` (built for the phone's ABI from TensorFlow's
    ``tensorflow/lite/tools/benchmark``) next to it, and one phone connected.
    """
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by mobile-export bench --adb-script: times each model on the connected phone with",
        "# TFLite's benchmark_model at 1 thread and at the given thread count, XNNPACK on.",
        "set -euo pipefail",
        'here="$(cd "$(dirname "$0")" && pwd)"',
        'adb push "$here/benchmark_model" /data/local/tmp/benchmark_model',
        "adb shell chmod +x /data/local/tmp/benchmark_model",
    ]
    for model in models:
        remote = f"/data/local/tmp/{model.name}"
        lines.append(f'adb push "{model.resolve()}" {remote}')
        for count in sorted({1, threads}):
            lines.append(
                f'echo "== {model.name}, {count} thread(s)"; adb shell /data/local/tmp/benchmark_model '
                f"--graph={remote} --num_threads={count} --num_runs={runs} --use_xnnpack=true"
            )
    return "\n".join(lines) + "\n"
