"""Time the pipeline itself and write the figures to benchmarks/pipeline_speed.json.

Measures, on this machine:
- CLI start-up: `mobile-export --help` (target: under 0.5 s);
- one `build` of the real V2 int8 without the per-layer diagnosis, end to end in a fresh process,
  with its peak resident memory (targets: under 30 s, 3 GB or less on 2 cores);
- the matrix of architectures x modes at small size with random weights, in a process pool that
  uses every core.

Run: python benchmarks/pipeline_speed.py [--skip-matrix]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
CLI = [sys.executable, "-m", "mobile_export.cli"]
MATRIX_MODES = ("fp32", "fp16", "dynamic", "int8")


def _timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and the peak RSS in MB of the largest child so far."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _matrix_cell(arch: str, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        command = [*CLI, "build", "--arch", arch, "--weights", "random", "--resolution", "96", "--quant", mode,
                   "--no-diagnose", "--min-top1", "0", "--min-top5", "0", "--min-cosine", "-1", "--min-sqnr", "-100",
                   "--out", str(Path(scratch) / "out")]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        return {"arch": arch, "mode": mode, "seconds": round(time.perf_counter() - start, 1),
                "exit_code": result.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-matrix", action="store_true", help="time only start-up and one build")
    options = parser.parse_args()
    figures = {"cores": os.cpu_count()}

    figures["help_seconds"] = round(min(_timed([*CLI, "--help"])[0] for _ in range(3)), 3)

    with tempfile.TemporaryDirectory() as scratch:
        seconds, peak = _timed([*CLI, "build", "--quant", "int8", "--no-diagnose", "--out", str(Path(scratch) / "out")])
    figures["build_v2_int8_seconds"] = round(seconds, 1)
    figures["build_v2_int8_peak_rss_mb"] = round(peak)

    if not options.skip_matrix:
        from mobile_export.models import registry

        cells = [(arch, mode) for arch in registry.ARCHITECTURES for mode in MATRIX_MODES]
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            figures["matrix"] = list(pool.map(_matrix_cell, *zip(*cells)))
        figures["matrix_seconds"] = round(time.perf_counter() - start, 1)

    (HERE / "pipeline_speed.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
