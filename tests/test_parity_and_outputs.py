"""Parity metrics and gates on known arrays; the atomic OUT writer."""

import numpy as np
import pytest

from mobile_export.outputs import OutputError, staged_folder
from mobile_export.validate.parity import MAX_SQNR_DB, Gate, compare, gate_for, judge

LABELS = [f"class{i}" for i in range(10)]


def _compare(reference, export):
    names = [f"img{i}" for i in range(len(reference))]
    return compare(np.asarray(reference, float), np.asarray(export, float), names=names, labels=LABELS)


def test_identical_outputs():
    reference = np.random.default_rng(0).normal(size=(4, 10))

    metrics = _compare(reference, reference)

    assert metrics["top1_agreement"] == 1.0
    assert metrics["cosine_min"] == pytest.approx(1.0)
    assert metrics["sqnr_db"] == MAX_SQNR_DB
    assert metrics["max_abs_error"] == 0.0
    assert metrics["top1_changed"] == 0


def test_sqnr_of_known_noise():
    reference = np.ones((1, 10))
    export = reference + 0.1  # signal power 10, noise power 0.1 -> 20 dB

    metrics = _compare(reference, export)

    assert metrics["sqnr_db"] == pytest.approx(20.0)
    assert metrics["max_abs_error"] == pytest.approx(0.1)


def test_top1_and_top5_agreement():
    reference = np.tile(np.arange(10.0), (2, 1))  # top-1 is class 9
    export = reference.copy()
    export[0, 9] = 5.5  # class 9 drops to 5th place: top-1 changes, still in the top 5
    export[1, 9] = -1.0  # class 9 drops out of the top 5

    metrics = _compare(reference, export)

    assert metrics["top1_agreement"] == 0.0
    assert metrics["top5_agreement"] == 0.5
    assert metrics["per_image"][0]["export_top1_label"] == "class8"


def test_cosine_of_orthogonal_outputs():
    metrics = _compare([[1.0, 0.0] + [0.0] * 8], [[0.0, 1.0] + [0.0] * 8])

    assert metrics["cosine_min"] == pytest.approx(0.0)


def test_gate_names_each_failed_threshold():
    gate = Gate(min_top1_agreement=0.9, min_sqnr_db=20.0, max_abs_error=0.01)
    metrics = {"top1_agreement": 0.5, "sqnr_db": 25.0, "max_abs_error": 0.5}

    record = judge(metrics, gate)

    assert record["passed"] is False
    assert record["failures"] == ["top1_agreement 0.5 is not >= 0.9", "max_abs_error 0.5 is not <= 0.01"]


def test_gate_overrides_keep_other_defaults():
    gate = gate_for("int8", {"min_sqnr_db": 3.0, "min_cosine": None})

    assert gate.min_sqnr_db == 3.0
    assert gate.min_cosine == gate_for("int8").min_cosine


def test_staged_folder_replaces_out_only_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "old.txt").write_text("old")

    with pytest.raises(RuntimeError):
        with staged_folder(out, force=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("conversion crashed")

    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (out / "old.txt").read_text() == "old"

    with staged_folder(out, force=True) as staging:
        (staging / "summary.json").write_text("{}")

    assert [p.name for p in out.iterdir()] == ["summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staged_folder_refuses_existing_out_without_force(tmp_path):
    (tmp_path / "out").mkdir()

    with pytest.raises(OutputError, match="--force"):
        with staged_folder(tmp_path / "out", force=False):
            pass


def test_staged_folder_refuses_missing_parent(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        with staged_folder(tmp_path / "missing" / "out", force=False):
            pass


def test_litert_rejects_unknown_kernels():
    from mobile_export.runtime.litert import LiteRTModel

    with pytest.raises(ValueError, match="expected one of xnnpack, reference"):
        LiteRTModel(b"", kernels="gpu")
