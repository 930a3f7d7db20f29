"""The command line: usage errors, small real builds, gate failures, predict output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mobile_export.cli import main

SMALL = ["--arch", "mobilenet_v2", "--alpha", "0.35", "--resolution", "64", "--weights", "random"]


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_does_not_import_tensorflow():
    code = "import sys; from mobile_export.cli import main; print('tensorflow' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert output.strip() == "False"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "resnet50"], "'resnet50' is not"),
        (["--quant", "int4"], "'int4' is not one of 'fp32', 'fp16', 'dynamic', 'int8', 'int16x8'"),
        (["--target", "onnx"], "'onnx' is not one of 'tflite', 'coreml'"),
        (["--alpha", "0.6"], "alpha 0.6 is not available for mobilenet_v2; expected one of 0.35, 0.5"),
        (["--resolution", "16"], "at least 32"),
        (["--resolution", "big"], "is not N or HxW"),
        (["--weights", "imagenet21k"], "expected one of torchvision-imagenet, imagenet, random"),
        (["--weights", "/nonexistent/w.npz"], "does not exist"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    result = _run("build", "--out", str(tmp_path / "out"), *args)

    assert result.exit_code == 2
    assert message in result.output
    assert "mobilenet_v2" in result.output or "--arch" not in args
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_existing_out_needs_force(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("old")

    result = _run("build", "--out", str(tmp_path / "out"), *SMALL)

    assert result.exit_code == 2
    assert "--force" in result.output
    assert (tmp_path / "out" / "keep.txt").read_text() == "old"


def test_unwritable_parent(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/mobile-export-out"  # even root cannot create folders here
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "out")

    result = _run("build", "--out", target, *SMALL)

    assert result.exit_code == 2
    assert "choose another --out" in result.output


def test_empty_calibration_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()

    result = _run("build", "--out", str(tmp_path / "out"), *SMALL, "--calibration-data", str(empty))

    assert result.exit_code == 2
    assert str(empty) in result.output
    assert not (tmp_path / "out").exists()


def test_corrupt_validation_photos(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"not a jpeg")
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")

    result = _run("build", "--out", str(tmp_path / "out"), *SMALL, "--quant", "fp32", "--validation-data", str(bad))

    assert result.exit_code == 2
    assert "no readable" in result.output or "no usable" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    result = _run("build", "--out", str(out), *SMALL, "--quant", "fp32", "--quant", "int8", "--calibration-samples", "8")
    return out, result


def test_small_random_build_succeeds(small_build):
    out, result = small_build

    assert result.exit_code == 0, result.output
    assert "| tflite-fp32 |" in result.output
    assert "| tflite-int8 |" in result.output
    assert "mobile-export predict" in result.output


def test_random_weights_are_marked(small_build):
    out, _ = small_build
    manifest = json.loads((out / "tflite-int8" / "manifest.json").read_text())
    parity = (out / "tflite-int8" / "parity.md").read_text()

    assert manifest["weights"]["source"] == "random"
    assert manifest["weights"]["pretrained"] is False
    assert "random initialization" in parity
    assert "random initialization" in (out / "summary.md").read_text()


def test_build_repeats_warnings_under_the_table(tmp_path):
    from mobile_export.data import bundled_photos, list_images

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in list_images(bundled_photos("calibration"))[:3]:
        shutil.copy(path, photos / path.name)

    result = _run(
        "build", "--out", str(tmp_path / "out"), *SMALL, "--quant", "int8", "--no-diagnose",
        "--calibration-data", str(photos), "--calibration-samples", "8",
    )

    assert result.exit_code in (0, 3), result.output
    table_end = result.stdout.index("| tflite-int8 |")
    assert "Warning: calibration: only 3 calibration photos" in result.stdout[table_end:]


def test_predict_json(small_build, tmp_path):
    from PIL import Image

    out, _ = small_build
    photo = tmp_path / "grey.png"
    Image.new("L", (80, 60), color=128).save(photo)

    result = _run("predict", str(out / "tflite-fp32"), str(photo), "--json")

    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert "random weights" in result.stderr
    assert entry["image"] == str(photo)
    assert len(entry["top"]) == 5
    assert sum(item["score"] for item in entry["top"]) <= 1.0 + 1e-6


def test_predict_corrupt_image(small_build, tmp_path):
    out, _ = small_build
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(b"\xff\xd8\xff garbage")

    result = _run("predict", str(out / "tflite-fp32"), str(photo))

    assert result.exit_code == 2
    assert "broken.jpg" in result.output
    assert "Traceback" not in result.output


def test_predict_folder_skips_unreadable(small_build, tmp_path):
    from PIL import Image

    out, _ = small_build
    Image.new("RGB", (80, 60), color=(200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")

    result = _run("predict", str(out / "tflite-fp32"), str(tmp_path), "--json")
    entries = {Path(entry["image"]).name: entry for entry in json.loads(result.stdout)}

    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable" in result.stderr
    assert len(entries["red.png"]["top"]) == 5
    assert "broken.jpg" in entries["broken.jpg"]["skipped"]


def test_build_rejects_calibration_data_without_calibration(tmp_path):
    result = _run("build", "--quant", "fp32", "--calibration-data", str(tmp_path), "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    assert "need no calibration" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--no-rescue", "--rescue"])
def test_build_rejects_rescue_flag_without_int8(tmp_path, flag):
    result = _run("build", "--quant", "fp16", flag, "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    assert f"{flag} applies to TFLite int8 exports only; add --quant int8 or drop it." in result.output
    assert not (tmp_path / "out").exists()


def test_build_rejects_allow_float_ops_for_float_modes(tmp_path):
    result = _run("build", "--quant", "fp16", "--quant", "dynamic", "--allow-float-ops", "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    assert "--allow-float-ops applies to TFLite int8 and int16x8" in result.output
    assert "it changes nothing for fp16, dynamic, so drop it." in result.output
    assert not (tmp_path / "out").exists()


def test_build_out_under_a_file(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")

    result = _run("build", "--quant", "fp32", "--out", str(tmp_path / "photo.jpg" / "out"))

    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output


def test_predict_not_an_export(tmp_path):
    result = _run("predict", str(tmp_path), str(tmp_path / "x.jpg"))

    assert result.exit_code == 2
    assert "manifest.json" in result.output


def test_gate_failure_exits_3_and_marks_files(tmp_path):
    out = tmp_path / "out"

    result = _run("build", "--out", str(out), *SMALL, "--quant", "fp32", "--max-abs-error", "0")

    assert result.exit_code == 3
    assert "Parity gate failed for tflite-fp32 (max_abs_error" in result.output
    manifest = json.loads((out / "tflite-fp32" / "manifest.json").read_text())
    parity = json.loads((out / "tflite-fp32" / "parity.json").read_text())
    assert manifest["status"] == "parity-failed"
    assert parity["gate"]["passed"] is False
    assert parity["gate"]["failures"][0].startswith("max_abs_error")
    assert json.loads((out / "summary.json").read_text())["passed"] is False


def test_force_keeps_a_folder_it_did_not_write(tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.txt").write_text("not ours")

    result = _run("build", "--out", str(out), *SMALL, "--quant", "fp32", "--force")

    assert result.exit_code == 2
    assert "was not written by mobile-export" in result.output
    assert (out / "chapter1.txt").read_text() == "not ours"


def test_out_cannot_be_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = _run("build", "--out", ".", *SMALL, "--force")

    assert result.exit_code == 2
    assert "contains the current folder" in result.output


def test_seed_out_of_range():
    result = _run("build", "--out", "x", *SMALL, "--seed", "-1")

    assert result.exit_code == 2
    assert "--seed" in result.output


def test_force_replaces_out_completely(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "stale.txt").write_text("from an earlier run")

    result = _run("build", "--out", str(out), *SMALL, "--quant", "fp32", "--force")

    assert result.exit_code == 0, result.output
    assert not (out / "stale.txt").exists()
    assert (out / "tflite-fp32" / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_bench_measures_both_exports(small_build):
    out, _ = small_build

    result = _run("bench", str(out / "tflite-fp32"), str(out / "tflite-int8"), "--runs", "10", "--json")

    assert result.exit_code == 0, result.output
    fp32, int8 = json.loads(result.stdout)
    assert fp32["mode"] == "fp32"
    assert int8["mode"] == "int8"
    assert int8["size_mb"] < fp32["size_mb"]
    assert fp32["latency_1_thread_ms"] > 0
    assert fp32["latency_vs_fp32"] == 1.0
    assert int8["macs"] == fp32["macs"] > 0
    assert int8["params"] == 1_691_208  # V2 at alpha 0.35, as Keras counts it
    assert fp32["dynamic_shapes"] is False
    assert fp32["peak_rss_mb"] > 0


def test_bench_writes_an_adb_script(small_build, tmp_path):
    out, _ = small_build
    script = tmp_path / "phone.sh"

    result = _run("bench", str(out / "tflite-int8"), "--runs", "5", "--threads", "3", "--adb-script", str(script))

    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert "--graph=/data/local/tmp/mobilenet_v2_0.35_64_int8.tflite --num_threads=1 --num_runs=5" in text
    assert "--num_threads=3 --num_runs=5" in text
    subprocess.run(["bash", "-n", str(script)], check=True)
