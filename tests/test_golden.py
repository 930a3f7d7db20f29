"""The golden fixtures that the app cores test against still match the Python pipeline."""

import json
from pathlib import Path

import numpy as np
import pytest

from mobile_export import golden
from mobile_export.contract import InputContract
from mobile_export.data import read_labels

FIXTURES = sorted(path for path in (Path(__file__).parent / "golden").iterdir() if path.is_dir())


def _load(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    cases = json.loads((folder / "golden.json").read_text())["cases"]
    return manifest, cases, read_labels(folder / "labels.txt")


def test_fixtures_cover_every_io_type():
    dtypes = {json.loads((folder / "manifest.json").read_text())["input"]["dtype"] for folder in FIXTURES}

    assert dtypes == {"uint8", "int8", "int16", "float32"}


@pytest.mark.parametrize("folder", FIXTURES, ids=[f.name for f in FIXTURES])
def test_preprocessing_matches(folder):
    manifest, cases, _ = _load(folder)
    contract = InputContract.from_dict(manifest["input"])

    for case in cases:
        photo = golden.decode(case, "photo_rgb_base64", "uint8").reshape(case["photo_height"], case["photo_width"], 3)
        expected = golden.decode(case, "input_rgb_base64", "uint8").reshape(contract.height, contract.width, 3)
        np.testing.assert_array_equal(contract.prepare(photo), expected, err_msg=case["name"])


@pytest.mark.parametrize("folder", FIXTURES, ids=[f.name for f in FIXTURES])
def test_input_tensor_matches(folder):
    manifest, cases, _ = _load(folder)
    inp = manifest["input"]

    for case in cases:
        pixels = golden.decode(case, "input_rgb_base64", "uint8")
        tensor = golden.quantize_input(pixels, dtype=inp["dtype"], scale=inp["scale"], zero_point=inp["zero_point"])
        np.testing.assert_array_equal(tensor, golden.decode(case, "input_tensor_base64", inp["dtype"]))


@pytest.mark.parametrize("folder", FIXTURES, ids=[f.name for f in FIXTURES])
def test_top_k_matches(folder):
    manifest, cases, labels = _load(folder)
    out = manifest["output"]

    for case in cases:
        raw = golden.decode(case, "output_raw_base64", out["dtype"])
        assert raw.size == out["shape"][1]
        values = golden.scores(raw, dtype=out["dtype"], scale=out["scale"], zero_point=out["zero_point"], kind=out["kind"])
        top = golden.top_k(values, labels)
        assert [entry["index"] for entry in top] == [entry["index"] for entry in case["top_k"]]
        assert [entry["label"] for entry in top] == [entry["label"] for entry in case["top_k"]]
        np.testing.assert_allclose([e["score"] for e in top], [e["score"] for e in case["top_k"]], atol=1e-9)


def test_cases_cover_both_resize_branches():
    for folder in FIXTURES:
        manifest, cases, _ = _load(folder)
        _, height, width, _ = manifest["input"]["shape"]
        wide = [case["photo_width"] * height >= case["photo_height"] * width for case in cases]
        assert True in wide, folder.name
        assert False in wide, folder.name


def test_real_v2_case_is_the_reference_class():
    _, cases, _ = _load(Path(__file__).parent / "golden" / "v2_224_int8_uint8io")
    chelsea = next(case for case in cases if case["name"] == "chelsea.png")

    assert chelsea["top_k"][0]["label"] == "Egyptian cat"
    assert (chelsea["photo_height"], chelsea["photo_width"]) == (300, 451)
