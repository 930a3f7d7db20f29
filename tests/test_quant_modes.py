"""Quantization modes, I/O types, kernel gaps and calibration checks."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from mobile_export import pipeline
from mobile_export.calibrate import CalibrationDataError, check_calibration
from mobile_export.convert.tflite import INPUT_QUANTIZATION, QUANT_MODES

SMALL = {"arch": "mobilenet_v2", "alpha": 0.35, "resolution": 64, "weights": "random", "calibration_samples": 8}


def _manifest(export):
    return json.loads((export.folder / "manifest.json").read_text())


@pytest.fixture(scope="module")
def real_modes(tmp_path_factory):
    """fp16, dynamic range and int16x8 exports of the real torchvision V2."""
    out = tmp_path_factory.mktemp("modes") / "out"
    result = pipeline.build(out=out, quant=["fp16", "dynamic", "int16x8"], command=["test"])
    return {export.mode: export for export in result.exports}


@pytest.mark.slow
def test_fp16_keeps_every_answer(real_modes):
    parity = real_modes["fp16"].parity

    assert parity["top1_agreement"] == 1.0
    assert parity["sqnr_db"] > 35.0
    assert _manifest(real_modes["fp16"])["input"]["dtype"] == "float32"
    assert real_modes["fp16"].size_bytes < 0.6 * 14e6  # half of fp32's 14 MB, plus graph


@pytest.mark.slow
def test_dynamic_range_is_close_to_float(real_modes):
    parity = real_modes["dynamic"].parity

    assert parity["top1_agreement"] >= 12 / 13
    assert parity["sqnr_db"] > 18.0
    assert _manifest(real_modes["dynamic"])["input"]["dtype"] == "float32"


@pytest.mark.slow
def test_int16x8_beats_int8(real_modes):
    export = real_modes["int16x8"]
    manifest = _manifest(export)

    assert export.parity["sqnr_db"] > 15.0
    assert export.parity["cosine_min"] > 0.95
    assert manifest["input"]["dtype"] == "int16"
    assert manifest["input"]["zero_point"] == 0
    assert manifest["input"]["scale"] == pytest.approx(255 / 32767)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "io_type"), [("int8", "int8"), ("int8", "float32"), ("int16x8", "float32")])
def test_io_types(tmp_path, mode, io_type):
    result = pipeline.build(out=tmp_path / "out", quant=[mode], io_type=io_type, gate_overrides=_loose(), **SMALL)
    (export,) = result.exports
    manifest = _manifest(export)

    assert export.folder.name == f"tflite-{mode}-io-{io_type}"
    assert manifest["input"]["dtype"] == io_type
    assert manifest["output"]["dtype"] == io_type
    assert manifest["model"]["io_type"] == io_type
    if io_type in INPUT_QUANTIZATION:
        assert (manifest["input"]["scale"], manifest["input"]["zero_point"]) == INPUT_QUANTIZATION[io_type]


def _loose():
    # Random weights: these tests check types and plumbing, not agreement.
    return {"min_top1_agreement": 0.0, "min_top5_agreement": 0.0, "min_cosine": -1.0, "min_sqnr_db": -100.0}


@pytest.mark.parametrize(
    ("quant", "io_type", "message"),
    [
        (["int8"], "int16", "--io-type int16 does not apply to int8; it takes uint8, int8, float32"),
        (["int16x8"], "uint8", "--io-type uint8 does not apply to int16x8; it takes int16, float32"),
        (["fp16", "dynamic"], "int8", "--io-type applies to TFLite int8 and int16x8"),
    ],
)
def test_io_type_mismatch_is_rejected_early(tmp_path, quant, io_type, message):
    with pytest.raises(pipeline.BuildOptionError, match=message):
        pipeline.build(out=tmp_path / "out", quant=quant, io_type=io_type, **SMALL)


def test_int16x8_names_the_hard_swish_gap_before_converting(tmp_path):
    with pytest.raises(pipeline.BuildOptionError, match="int16x8 has no integer kernel for HARD_SWISH") as info:
        pipeline.build(
            out=tmp_path / "out", arch="mobilenet_v3_small", alpha=0.75, resolution=64, weights="random", quant=["int16x8"]
        )

    assert "--allow-float-ops" in str(info.value)
    assert "--minimalistic" in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_int16x8_runs_hard_swish_in_float_when_allowed(tmp_path):
    from mobile_export.runtime.litert import LiteRTModel

    result = pipeline.build(
        out=tmp_path / "out",
        arch="mobilenet_v3_small",
        alpha=0.75,
        resolution=64,
        weights="random",
        quant=["int16x8", "dynamic"],
        allow_float_ops=True,
        calibration_samples=8,
        gate_overrides=_loose(),
    )
    export, dynamic = result.exports
    runner = LiteRTModel(export.model_file)
    names = [op["op_name"] for op in runner._interpreter._get_ops_details()]
    ops = set(names)

    assert _manifest(export)["model"]["float_ops_allowed"] is True
    assert "DEQUANTIZE" in ops or "HARD_SWISH" in ops
    assert export.parity["float_ops"] == {"HARD_SWISH": names.count("HARD_SWISH")}
    assert names.count("HARD_SWISH") > 0
    # Dynamic range computes in float by design, so it lists no ops as left in float.
    assert dynamic.parity["float_ops"] == {}


@pytest.mark.slow
def test_per_tensor_is_recorded_and_warned(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mobile_export"):
        result = pipeline.build(
            out=tmp_path / "out", quant=["int8"], per_tensor=True, gate_overrides=_loose(), **SMALL
        )

    assert _manifest(result.exports[0])["model"]["weights_per_channel"] is False
    assert any("depthwise" in record.getMessage() for record in caplog.records)


def test_all_modes_have_gates():
    from mobile_export.convert.coreml import COREML_MODES
    from mobile_export.validate.parity import DEFAULT_GATES

    assert set(DEFAULT_GATES) == set(QUANT_MODES) | {f"coreml-{name}" for name in COREML_MODES}


def test_noise_is_rejected():
    noise = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)

    with pytest.raises(CalibrationDataError, match="random noise"):
        check_calibration(noise)


def test_zero_to_one_data_is_rejected():
    dark = np.random.default_rng(0).integers(0, 2, (10, 64, 64, 3), dtype=np.uint8)

    with pytest.raises(CalibrationDataError, match="0..1 data"):
        check_calibration(dark)


def test_few_photos_warn(validation_photos):
    warnings = check_calibration(validation_photos.pixels[:3])

    assert len(warnings) == 1
    assert "only 3 calibration photos" in warnings[0]
    assert check_calibration(validation_photos.pixels) == []


def test_noise_folder_fails_the_build(tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(8):
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(folder / f"{index}.png")

    with pytest.raises(pipeline.BuildOptionError, match="random noise"):
        pipeline.build(out=tmp_path / "out", quant=["int8"], calibration_data=folder, **SMALL)
    assert not (tmp_path / "out").exists()
