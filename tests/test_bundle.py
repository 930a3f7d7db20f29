"""bundle: an export goes into the Android app's model folder whole, checked, or not at all."""

import json
import shutil

import pytest

from mobile_export import bundle as bundle_module
from mobile_export.bundle import ANDROID_MODEL_DIR, BundleError

pytestmark = pytest.mark.slow


@pytest.fixture()
def app(tmp_path):
    root = tmp_path / "android_demo"
    root.mkdir()
    (root / "settings.gradle.kts").write_text('rootProject.name = "demo"\n')
    return root


def _int8(real_build):
    return next(e for e in real_build.exports if e.mode == "int8")


def test_bundle_copies_verified_files(real_build, app):
    (target,) = bundle_module.bundle(real_build.out, android=app, export="tflite-int8")

    export = _int8(real_build)
    assert target == app / ANDROID_MODEL_DIR
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [export.model_file.name, "manifest.json", "labels.txt", "golden.json"]
    )
    assert (target / export.model_file.name).read_bytes() == export.model_file.read_bytes()


def test_bundle_replaces_old_files_completely(real_build, app):
    old = app / ANDROID_MODEL_DIR
    old.mkdir(parents=True)
    (old / "old_model.tflite").write_bytes(b"old")

    bundle_module.bundle(real_build.out, android=app, export="tflite-fp32")

    assert not (old / "old_model.tflite").exists()
    assert json.loads((old / "manifest.json").read_text())["model"]["quant"] == "fp32"
    assert [p.name for p in old.parent.iterdir()] == ["model"]


def test_bundle_needs_a_choice_among_several(real_build, app):
    with pytest.raises(BundleError, match="choose one with --export"):
        bundle_module.bundle(real_build.out, android=app)


def test_bundle_refuses_a_tampered_export(real_build, app, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(_int8(real_build).folder, copy)
    (copy / "labels.txt").write_text("tampered\n")

    with pytest.raises(BundleError, match="sha256"):
        bundle_module.bundle(copy, android=app)
    assert not (app / ANDROID_MODEL_DIR).exists()


def test_bundle_refuses_a_failed_gate_unless_forced(real_build, app, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(_int8(real_build).folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "parity-failed"
    (copy / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(BundleError, match="failed its parity gate"):
        bundle_module.bundle(copy, android=app)
    bundle_module.bundle(copy, android=app, force=True)
    assert (app / ANDROID_MODEL_DIR / "manifest.json").is_file()


def test_ios_needs_a_core_ml_export(real_build, tmp_path):
    ios = tmp_path / "ios_demo"
    (ios / "MobileExportDemo").mkdir(parents=True)

    with pytest.raises(BundleError, match="Build one with --target coreml"):
        bundle_module.bundle(real_build.out, ios=ios, export="tflite-int8")


def test_wrong_app_folder(real_build, tmp_path):
    with pytest.raises(BundleError, match="not the sample app folder"):
        bundle_module.bundle(real_build.out, android=tmp_path, export="tflite-int8")


def test_build_bundle_fills_the_android_app(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mobile_export.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "android_demo").mkdir()
    (tmp_path / "android_demo" / "settings.gradle.kts").write_text('rootProject.name = "demo"\n')
    args = ["build", "--alpha", "0.35", "--resolution", "64", "--weights", "random", "--quant", "fp32", "--out", "out"]

    result = CliRunner().invoke(main, [*args, "--bundle"])
    bundled = json.loads((tmp_path / "android_demo" / ANDROID_MODEL_DIR / "manifest.json").read_text())

    assert result.exit_code == 0, result.output
    assert bundled["model"]["file"] == "mobilenet_v2_0.35_64_fp32.tflite"


def test_build_bundle_needs_the_app_before_building(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mobile_export.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build", "--quant", "fp32", "--target", "coreml", "--bundle", "--out", "out"])

    assert result.exit_code == 2
    assert "./ios_demo" in result.output
    assert not (tmp_path / "out").exists()


def test_bundle_export_for_an_app_not_given(real_build, app):
    with pytest.raises(BundleError, match="--ios is not given"):
        bundle_module.bundle(real_build.out, android=app, export=["tflite-int8", "coreml-fp16"])
    assert not (app / ANDROID_MODEL_DIR).exists()
