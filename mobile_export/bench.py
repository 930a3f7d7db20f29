"""Speed and size of exports in the LiteRT interpreter on this CPU (XNNPACK), as one table.

Each measurement runs in a fresh subprocess, so its peak resident memory is its own. Latency is
the median and 90th percentile of ``runs`` invocations at 1 thread and at ``threads`` threads,
each model warmed up by ``warmup`` invocations first. The runs are split into rounds that visit
every model in turn, so a burst of load from other processes on a shared machine falls on all
models alike. Compare ratios measured in one run (ours against naive, int8 against fp32) rather
than absolute numbers across runs.

With ``baseline="naive"`` the run adds, for each build, Keras Applications' model with the same
weights converted by the plain converter (see :mod:`mobile_export.baseline`), and each of our
exports gets its ratios against the naive export of its mode and its goals.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Ops whose presence means the graph computes shapes at run time.
DYNAMIC_SHAPE_OPS = {"SHAPE", "DYNAMIC_UPDATE_SLICE", "WHERE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5"}
BASELINES = ("naive",)
DEFAULT_ROUNDS = 5
# An int8 export should take at most this share of our fp32 export's latency.
INT8_LATENCY_GOAL = 0.67

_WORKER = r"""
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter

path, threads, warmup, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
low, high = float(sys.argv[5]), float(sys.argv[6])
interpreter = Interpreter(model_path=path, num_threads=threads)
interpreter.allocate_tensors()
(inp,) = interpreter.get_input_details()
rng = np.random.default_rng(0)
if np.dtype(inp["dtype"]).kind == "f":
    data = rng.uniform(low, high, inp["shape"]).astype(inp["dtype"])
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
tensors = interpreter.get_tensor_details()
# Linux's VmHWM belongs to this process image, whereas getrusage's ru_maxrss carries the
# parent's peak over fork and exec, which is large when the parent has imported TensorFlow.
try:
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    import resource
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
print(json.dumps({
    "times_ms": times,
    "peak_rss_mb": peak_kb / 1024,
    "ops": [
        {"name": op["op_name"], "inputs": [int(i) for i in op["inputs"]], "outputs": [int(i) for i in op["outputs"]]}
        for op in interpreter._get_ops_details()
    ],
    "float_tensors": [int(t["index"]) for t in tensors if np.dtype(t["dtype"]) == np.float32],
    "dynamic_tensors": [t["name"] for t in tensors if -1 in list(t["shape_signature"])],
}))
"""


class BenchError(ValueError):
    """A model to benchmark is missing or unreadable; the message names it."""


def _measure(model_file: Path, threads: int, warmup: int, runs: int, value_range: tuple[float, float]) -> dict:
    low, high = value_range
    command = [sys.executable, "-c", _WORKER, str(model_file), str(threads), str(warmup), str(runs), str(low), str(high)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise BenchError(f"Benchmarking {model_file} failed: {lines[-1] if lines else 'no error output'}.")
    return json.loads(result.stdout.strip().splitlines()[-1])


def undelegated_ops(ops: list[dict]) -> list[str]:
    """Return the names of the ops that no delegate took, in graph order.

    After delegation LiteRT lists the model's own ops followed by one ``DELEGATE`` op per
    partition, whose inputs and outputs are the partition's boundary tensors. An op belongs to
    a partition when a walk back from the partition's outputs reaches it without crossing the
    partition's inputs. Every other op runs on LiteRT's built-in kernels.
    """
    own = [op for op in ops if op["name"] != "DELEGATE"]
    producer = {tensor: index for index, op in enumerate(own) for tensor in op["outputs"]}
    delegated: set[int] = set()
    for partition in (op for op in ops if op["name"] == "DELEGATE"):
        boundary = set(partition["inputs"])
        pending = list(partition["outputs"])
        while pending:
            tensor = pending.pop()
            if tensor in boundary or tensor not in producer or producer[tensor] in delegated:
                continue
            delegated.add(producer[tensor])
            pending.extend(index for index in own[producer[tensor]]["inputs"] if index >= 0)
    return [op["name"] for index, op in enumerate(own) if index not in delegated]


def _float_ops(ops: list[dict], float_tensors: set[int]) -> list[str]:
    """Ops computing in float32, apart from DELEGATE and the (de)quantize ops at a graph's edges."""
    return [
        op["name"]
        for op in ops
        if op["name"] not in ("QUANTIZE", "DEQUANTIZE", "DELEGATE") and op["outputs"]
        and all(tensor in float_tensors for tensor in op["outputs"])
    ]


def time_models(
    files: list[Path], ranges: list[tuple[float, float]], *, threads: int, warmup: int, runs: int, rounds: int
) -> list[dict]:
    """Time every file at ``threads`` threads in ``rounds`` rounds that alternate the files.

    ``ranges`` gives each float-input model the ``(low, high)`` its random input is drawn from.
    Each result contains ``times_ms`` (all runs), ``peak_rss_mb``, the op list and the tensors.
    """
    per_round = max(1, runs // rounds)
    measured: list[dict] = [{} for _ in files]
    for _ in range(rounds):
        for index, (model_file, value_range) in enumerate(zip(files, ranges, strict=True)):
            result = _measure(model_file, threads, warmup, per_round, value_range)
            if measured[index]:
                measured[index]["times_ms"] += result["times_ms"]
                measured[index]["peak_rss_mb"] = max(measured[index]["peak_rss_mb"], result["peak_rss_mb"])
            else:
                measured[index] = result
    return measured


def bench(
    models: list[str | Path],
    *,
    threads: int = 2,
    warmup: int = 5,
    runs: int = 50,
    rounds: int = DEFAULT_ROUNDS,
    baseline: str | None = None,
    out: str | Path | None = None,
) -> list[dict]:
    """Benchmark each export (a model file or export folder written by ``build``).

    ``runs`` timed invocations per model and thread count are split over ``rounds`` fresh
    processes per model, taken in turn.

    With ``baseline="naive"``, naive exports of the same builds are written to ``out`` (a
    temporary folder when ``None``), timed in the same rounds and returned as rows with
    ``"origin": "naive"``. Each of our rows then carries ``vs_naive`` ratios. Every one of our
    rows carries ``goals``: what was checked, whether it was met, and why not.
    """
    from mobile_export.predict import ExportFolderError, locate_export

    if baseline is not None and baseline not in BASELINES:
        raise BenchError(f"Unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}.")
    entries = []
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
        entries.append(_our_entry(model_file, manifest))

    scratch = None
    if baseline == "naive":
        if out is None:
            scratch = tempfile.TemporaryDirectory(prefix="mobile-export-naive-")
            out = scratch.name
        entries += _naive_entries(entries, Path(out))

    files = [entry["file_path"] for entry in entries]
    ranges = [entry["value_range"] for entry in entries]
    single = time_models(files, ranges, threads=1, warmup=warmup, runs=runs, rounds=rounds)
    multi = time_models(files, ranges, threads=threads, warmup=warmup, runs=runs, rounds=rounds) if threads > 1 else single
    rows = [_row(entry, one, many, threads) for entry, one, many in zip(entries, single, multi, strict=True)]
    if baseline is not None:
        for row, entry in zip(rows, entries, strict=True):
            row["metadata_kb"] = _metadata_bytes(entry["file_path"]) / 1e3
    _add_ratios(rows, threads)
    if scratch is not None:
        scratch.cleanup()
    return rows


def _metadata_bytes(model_file: Path) -> int:
    """Bytes of TFLite metadata and associated files (labels) that the model file carries beside its graph."""
    import zipfile

    from mobile_export.convert.tflite_metadata import read_associated_files, read_metadata_buffer

    content = model_file.read_bytes()
    try:
        metadata = len(read_metadata_buffer(content))
    except ValueError:
        return 0
    try:
        files = sum(len(data) for data in read_associated_files(content).values())
    except zipfile.BadZipFile:
        files = 0
    return metadata + files


def _our_entry(model_file: Path, manifest: dict) -> dict:
    parity = manifest.get("parity", {})
    images = parity.get("images", 0)
    return {
        "origin": "ours",
        "file_path": model_file,
        "build": model_file.parent.parent,
        "manifest": manifest,
        "export": model_file.parent.name,
        "mode": manifest["model"]["quant"],
        "params": manifest["model"].get("params"),
        "macs": manifest["model"].get("macs"),
        "images": images,
        "top1_kept": images - parity.get("top1_changed", 0),
        "value_range": (0.0, 255.0),
    }


def _naive_entries(ours: list[dict], out: Path) -> list[dict]:
    """Build the naive exports for every build among ``ours``, in the modes that have a naive recipe."""
    from mobile_export.baseline import NAIVE_MODES, BaselineError, build_naive_exports, naive_inputs

    by_build: dict[Path, list[dict]] = collections.defaultdict(list)
    for entry in ours:
        by_build[entry["build"]].append(entry)

    entries = []
    for build, exports in by_build.items():
        modes = [mode for mode in NAIVE_MODES if any(entry["mode"] == mode for entry in exports)]
        if not modes:
            continue
        manifest = exports[0]["manifest"]
        destination = out if len(by_build) == 1 else out / build.name
        try:
            naive_exports = build_naive_exports(build, manifest, destination, modes)
        except BaselineError as error:
            raise BenchError(str(error)) from None
        low, high = naive_inputs(np.array([0.0, 255.0]), manifest["model"]["arch"])
        for naive in naive_exports:
            entries.append(
                {
                    "origin": "naive",
                    "file_path": naive.model_file,
                    "build": build,
                    "export": naive.model_file.parent.name,
                    "mode": naive.mode,
                    "params": exports[0]["params"],
                    "macs": exports[0]["macs"],
                    "images": naive.parity["images"],
                    "top1_kept": naive.parity["images"] - naive.parity["top1_changed"],
                    "value_range": (float(low), float(high)),
                    "float_vs_ours_top1": naive.float_vs_ours["top1_agreement"],
                    "float_vs_ours_cosine_min": naive.float_vs_ours["cosine_min"],
                }
            )
    return entries


def _row(entry: dict, single: dict, multi: dict, threads: int) -> dict:
    macs = entry["macs"]
    one = float(np.median(single["times_ms"]))
    many = float(np.median(multi["times_ms"]))
    float_tensors = set(single["float_tensors"])
    ops = single["ops"]
    dynamic_ops = sorted({op["name"] for op in ops} & DYNAMIC_SHAPE_OPS)
    row = {
        "origin": entry["origin"],
        "export": entry["export"],
        "build": str(entry["build"]),
        "file": entry["file_path"].name,
        "mode": entry["mode"],
        "size_mb": entry["file_path"].stat().st_size / 1e6,
        "params": entry["params"],
        "macs": macs,
        "latency_1_thread_ms": one,
        "p90_1_thread_ms": float(np.percentile(single["times_ms"], 90)),
        f"latency_{threads}_threads_ms": many,
        f"p90_{threads}_threads_ms": float(np.percentile(multi["times_ms"], 90)),
        "gmacs_per_s_1_thread": macs / one / 1e6 if macs else None,
        f"gmacs_per_s_{threads}_threads": macs / many / 1e6 if macs else None,
        "peak_rss_mb": max(single["peak_rss_mb"], multi["peak_rss_mb"]),
        "dynamic_shapes": bool(single["dynamic_tensors"]) or bool(dynamic_ops),
        "dynamic_tensors": single["dynamic_tensors"][:5],
        "dynamic_ops": dynamic_ops,
        "op_counts": dict(collections.Counter(op["name"] for op in ops if op["name"] != "DELEGATE")),
        "not_delegated": undelegated_ops(ops),
        "float_ops": _float_ops(ops, float_tensors) if entry["mode"] != "fp32" else [],
        "top1_kept": f"{entry['top1_kept']}/{entry['images']}",
        "top1_agreement": entry["top1_kept"] / entry["images"] if entry["images"] else None,
    }
    for key in ("float_vs_ours_top1", "float_vs_ours_cosine_min"):
        if key in entry:
            row[key] = entry[key]
    return row


def _add_ratios(rows: list[dict], threads: int) -> None:
    """Add int8-against-fp32 ratios to every row, and ratios against naive plus goals to ours."""
    keys = ("latency_1_thread_ms", f"latency_{threads}_threads_ms")

    def find(build: str, origin: str, mode: str) -> dict | None:
        return next((r for r in rows if r["build"] == build and r["origin"] == origin and r["mode"] == mode), None)

    for row in rows:
        fp32 = find(row["build"], row["origin"], "fp32")
        row["latency_vs_fp32"] = row[keys[0]] / fp32[keys[0]] if fp32 else None
        row[f"latency_vs_fp32_{threads}_threads"] = row[keys[1]] / fp32[keys[1]] if fp32 else None

    has_naive = any(row["origin"] == "naive" for row in rows)
    for row in rows:
        if row["origin"] != "ours":
            continue
        naive = find(row["build"], "naive", row["mode"])
        if naive is not None:
            row["vs_naive"] = {
                "export": naive["export"],
                "latency_ratio_1_thread": row[keys[0]] / naive[keys[0]],
                f"latency_ratio_{threads}_threads": row[keys[1]] / naive[keys[1]],
                "size_ratio": row["size_mb"] / naive["size_mb"],
            }
        row["goals"] = _goals(row, naive, has_naive, threads)


def _goals(row: dict, naive: dict | None, has_naive: bool, threads: int) -> list[dict]:
    """Check one of our rows against the goals; each missed goal lists the causes found in the graphs."""
    goals = []
    if naive is not None:
        ratios = row["vs_naive"]
        slower = max(ratios["latency_ratio_1_thread"], ratios[f"latency_ratio_{threads}_threads"])
        goals.append(_goal("no slower than naive", slower <= 1.0, _graph_differences(row, naive)))
        extra_bytes = (row["size_mb"] - naive["size_mb"]) * 1e6
        why = [f"ours is {extra_bytes / 1e3:.1f} kB larger, of which {row.get('metadata_kb', 0):.1f} kB are "
               "TFLite metadata and labels that the naive export lacks"]
        # The metadata and labels are what an app reads the contract from, so they do not count.
        model_bytes = row["size_mb"] * 1e6 - row.get("metadata_kb", 0) * 1e3
        goals.append(_goal("no larger than naive, metadata aside", model_bytes <= naive["size_mb"] * 1e6, why))
    elif has_naive:
        goals.append({"goal": "no slower than naive", "met": None, "why": f"no naive recipe for {row['mode']}"})
    if row["mode"] == "int8" and row["latency_vs_fp32"] is not None:
        worst = max(row["latency_vs_fp32"], row[f"latency_vs_fp32_{threads}_threads"])
        why = []
        if row["not_delegated"]:
            why.append("not delegated to XNNPACK: " + _counted(row["not_delegated"]))
        if row["float_ops"]:
            why.append("computed in float: " + _counted(row["float_ops"]))
        goals.append(_goal(f"int8 at most {INT8_LATENCY_GOAL}x our fp32", worst <= INT8_LATENCY_GOAL, why))
    why = []
    if row["dynamic_tensors"]:
        why.append("tensors with -1 in their shape signature: " + ", ".join(row["dynamic_tensors"]))
    if row["dynamic_ops"]:
        why.append("dynamic-shape ops: " + ", ".join(row["dynamic_ops"]))
    goals.append(_goal("no dynamic shapes", not row["dynamic_shapes"], why))
    return goals


def _goal(name: str, met: bool, why: list[str]) -> dict:
    return {"goal": name, "met": bool(met), "why": [] if met else why}


def _counted(names: list[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in collections.Counter(names).items())


def _graph_differences(row: dict, naive: dict) -> list[str]:
    """Ops ours has more of than naive, and ops of ours that XNNPACK does not run."""
    extra = collections.Counter(row["op_counts"]) - collections.Counter(naive["op_counts"])
    why = []
    if extra:
        why.append("ops naive lacks: " + ", ".join(f"{count} {name}" for name, count in sorted(extra.items())))
    if row["not_delegated"]:
        why.append("not delegated to XNNPACK: " + _counted(row["not_delegated"]))
    return why or ["same op types as naive; the difference is within this machine's noise or in kernel choice"]


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""


def table(rows: list[dict], threads: int) -> str:
    """Render benchmark rows as Markdown: every export, then ours against naive when measured."""
    lines = [
        f"| export | size MB | MMACs | 1 thread ms (p90) | {threads} threads ms (p90) | GMAC/s 1 / {threads} | "
        f"int8 / fp32 1 / {threads} | peak MB | dynamic shapes | top-1 kept |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        macs = f"{row['macs'] / 1e6:.1f}" if row["macs"] else "?"
        gmacs = (
            f"{row['gmacs_per_s_1_thread']:.1f} / {row[f'gmacs_per_s_{threads}_threads']:.1f}"
            if row["gmacs_per_s_1_thread"] else "?"
        )
        ratio = (
            f"{_ratio(row['latency_vs_fp32'])} / {_ratio(row[f'latency_vs_fp32_{threads}_threads'])}"
            if row["latency_vs_fp32"] is not None and row["mode"] != "fp32" else ""
        )
        name = f"{row['export']} (naive)" if row["origin"] == "naive" and not row["export"].startswith("naive") else row["export"]
        lines.append(
            f"| {name} | {row['size_mb']:.2f} | {macs} | {row['latency_1_thread_ms']:.2f} "
            f"({row['p90_1_thread_ms']:.2f}) | {row[f'latency_{threads}_threads_ms']:.2f} "
            f"({row[f'p90_{threads}_threads_ms']:.2f}) | {gmacs} | {ratio} | {row['peak_rss_mb']:.0f} | "
            f"{'yes' if row['dynamic_shapes'] else 'no'} | {row['top1_kept']} |"
        )

    ours = [row for row in rows if row["origin"] == "ours" and row.get("goals")]
    if not ours:
        return "\n".join(lines)
    lines += [
        "",
        "Goals: no slower and no larger than the naive export (with --baseline naive), int8 at most "
        f"{INT8_LATENCY_GOAL}x our fp32, no dynamic shapes. Ratios are ours over naive.",
        "",
        f"| ours | naive | latency 1 thread | latency {threads} threads | size | goals met | missed: why |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ours:
        against = row.get("vs_naive")
        latency = (
            (_ratio(against["latency_ratio_1_thread"]), _ratio(against[f"latency_ratio_{threads}_threads"]),
             _ratio(against["size_ratio"]))
            if against else ("", "", "")
        )
        met = [goal for goal in row["goals"] if goal["met"]]
        missed = [goal for goal in row["goals"] if goal["met"] is False]
        why = "; ".join(f"{goal['goal']}: {', '.join(goal['why']) or 'no cause found'}" for goal in missed)
        lines.append(
            f"| {row['export']} | {against['export'] if against else '-'} | {latency[0]} | {latency[1]} | "
            f"{latency[2]} | {len(met)}/{len(row['goals'])} | {why or '-'} |"
        )
    naive = [row for row in rows if row["origin"] == "naive" and "float_vs_ours_top1" in row]
    if naive:
        lines += [
            "",
            "Naive exports are Keras Applications' model with our weights. It pads stride-2 layers on the "
            "bottom and right only, where ours pads every side, so it is a slightly different function: its "
            f"float model agrees with ours on the top-1 class of {naive[0]['float_vs_ours_top1']:.0%} of the "
            f"validation photos (cosine at least {naive[0]['float_vs_ours_cosine_min']:.4f}). Its parity is "
            "measured against its own float model.",
        ]
    return "\n".join(lines)


def write_results(rows: list[dict], threads: int, out: Path) -> list[Path]:
    """Write ``bench.json``, ``bench.md`` and the latency-against-agreement figure ``bench.png`` to ``out``."""
    from mobile_export.report import plots

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.json", out / "bench.md", out / "bench.png"]
    written[0].write_text(json.dumps({"threads": threads, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    written[1].write_text(table(rows, threads) + "\n", encoding="utf-8")
    plots.latency_against_agreement(rows, written[2], threads=threads)
    return written


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
