"""Rebuild the golden fixtures: the real V2 int8 export and small exports with every I/O type."""

import shutil
import sys
import tempfile
from pathlib import Path

from mobile_export import pipeline

HERE = Path(__file__).parent
KEEP = ("manifest.json", "labels.txt", "golden.json")
SMALL = {"arch": "mobilenet_v2", "alpha": 0.35, "resolution": "64x80", "weights": "random", "calibration_samples": 16}
LOOSE = {"min_top1_agreement": 0.0, "min_top5_agreement": 0.0, "min_cosine": -1.0, "min_sqnr_db": -100.0}
BUILDS = {
    "v2_224_int8_uint8io": {"quant": ["int8"]},
    "small_int8_int8io": {**SMALL, "quant": ["int8"], "io_type": "int8", "gate_overrides": LOOSE},
    "small_int16x8_int16io": {**SMALL, "quant": ["int16x8"], "gate_overrides": LOOSE},
    "small_fp32": {**SMALL, "quant": ["fp32"]},
}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for name, options in BUILDS.items():
            result = pipeline.build(out=Path(scratch) / name, diagnose=False, command=["regenerate"], **options)
            (export,) = result.exports
            target = HERE / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for file in KEEP:
                shutil.copy(export.folder / file, target / file)
            print(f"{name}: {export.folder.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
