"""notebooks/mobilenets.ipynb: saved without outputs, and runs top to bottom printing real numbers."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REFERENCE_CLASSES
from mobile_export.data import bundled_photos, list_images

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "mobilenets.ipynb"
# The slowest cell, the int8 build of the full-size V2, took about 20 s on a 2-core machine.
CELL_TIMEOUT_S = 300


def _cell(notebook, tag: str):
    (cell,) = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    return cell


def _stdout(notebook, tag: str) -> str:
    outputs = _cell(notebook, tag).outputs
    return "".join(output.text for output in outputs if output.output_type == "stream" and output.name == "stdout")


def _numbers(text: str) -> list[int]:
    return [int(match.replace(",", "")) for match in re.findall(r"\d[\d,]*", text)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the notebook headless in a python3 kernel from an empty working folder.

    Returns the executed notebook and the files the run left in the working folder or beside
    the notebook.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    beside_before = set(NOTEBOOK.parent.iterdir())
    working = tmp_path_factory.mktemp("notebook-cwd")

    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(working)}}
    )
    client.execute()

    leftovers = sorted(set(NOTEBOOK.parent.iterdir()) - beside_before) + sorted(working.iterdir())
    return notebook, leftovers


@pytest.fixture(scope="module")
def executed(run):
    notebook, _ = run
    return notebook


def test_notebook_saved_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]

    assert code_cells
    for cell in code_cells:
        assert cell.outputs == [], f"cell {cell.source[:40]!r} has saved outputs; clear them before committing"
        assert cell.execution_count is None
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_notebook_runs_without_errors(executed):
    errors = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]

    assert errors == []
    assert all(cell.execution_count is not None for cell in executed.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_notebook_leaves_no_files(run):
    _, leftovers = run

    assert leftovers == []


@pytest.mark.slow
def test_worked_example_prints_costs(executed):
    text = _stdout(executed, "worked-example")
    numbers = _numbers(text)

    assert 3 * 3 * 5 * 64 * 10 * 10 in numbers  # standard: Dk² M N Df²
    assert 3 * 3 * 5 * 10 * 10 in numbers  # depthwise: Dk² M Df²
    assert 5 * 64 * 10 * 10 in numbers  # pointwise: M N Df²
    assert 3 * 3 * 5 * 10 * 10 + 5 * 64 * 10 * 10 in numbers
    ratio, formula = re.search(r"separable / standard = ([\d.]+), and 1/N \+ 1/Dk² = ([\d.]+)", text).groups()
    assert ratio == formula == f"{1 / 64 + 1 / 9:.4f}"


@pytest.mark.slow
def test_v1_blocks_compare_thirteen_pairs(executed):
    text = _stdout(executed, "v1-blocks")

    assert len(re.findall(r"^block\d+ ", text, flags=re.MULTILINE)) == 13
    fewer = float(re.search(r"([\d.]+)x fewer", text).group(1))
    # Every V1 pair has 3x3 kernels and 64 or more outputs, so each saves between 1/(1/64 + 1/9) and 9 times.
    assert 1 / (1 / 64 + 1 / 9) < fewer < 9


@pytest.mark.slow
def test_alpha_grid_counts_every_width(executed):
    text = _stdout(executed, "alpha-grid")
    rows = re.findall(r"^alpha ([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", text, flags=re.MULTILINE)

    assert [float(row[0]) for row in rows] == [0.25, 0.5, 0.75, 1.0]
    for row in rows:
        macs = [float(value) for value in row[1:5]]
        assert macs == sorted(macs), f"MACs must grow with resolution: {row}"
    macs_at_224 = [float(row[4]) for row in rows]
    assert macs_at_224 == sorted(macs_at_224)


@pytest.mark.slow
def test_latency_measured_for_four_exports(executed):
    text = _stdout(executed, "latency")
    rows = re.findall(r"^alpha ([\d.]+) at (\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", text, flags=re.MULTILINE)
    latency = {(float(alpha), int(resolution)): float(ms) for alpha, resolution, _, ms, _ in rows}

    assert set(latency) == {(0.5, 128), (0.5, 224), (1.0, 128), (1.0, 224)}
    assert all(ms > 0 for ms in latency.values())
    # The largest variant has over 11 times the MACs of the smallest and ran about 7 times slower
    # on a 2-core machine, so timing noise alone cannot reverse the order.
    assert latency[1.0, 224] > latency[0.5, 128]


@pytest.mark.slow
def test_plot_is_an_inline_png(executed):
    outputs = _cell(executed, "plot").outputs

    assert any(output.output_type == "display_data" and "image/png" in output.data for output in outputs)


@pytest.mark.slow
def test_v2_block_has_linear_bottleneck(executed):
    text = _stdout(executed, "v2-block")

    assert "expansion: 24 -> 144 channels (6x)" in text
    assert "activations: ['block3_expand_relu6', 'block3_dw_relu6']" in text
    assert "layer after the projection's BatchNorm: block3_add (add)" in text


@pytest.mark.slow
def test_v3_blocks_show_se_and_minimalistic(executed):
    v3 = _stdout(executed, "v3-block")
    minimalistic = _stdout(executed, "minimalistic")

    assert re.search(r"^block12_se_reduce\s+squeeze-excite", v3, flags=re.MULTILINE)
    assert "block12_expand_hswish" in v3
    assert re.search(r"largest gap between hard-swish and swish on \[-6, 6\]: 0\.\d+", v3)
    assert "depthwise kernel: (5, 5) -> (3, 3)" in minimalistic
    assert "'block14_se_scale'" in minimalistic.split("only in the minimalistic block")[0]


@pytest.mark.slow
def test_parity_metrics_printed(executed):
    text = _stdout(executed, "parity-metrics")
    validation_photos = len(list_images(bundled_photos("validation")))

    agreeing, images, agreement = re.search(r"top-1 agreement: (\d+)/(\d+) \(([\d.]+)\)", text).groups()
    assert int(images) == validation_photos
    assert 0 < int(agreeing) <= int(images)
    assert float(agreement) == pytest.approx(int(agreeing) / int(images), abs=1e-3)
    assert "gate:            passed" in text


@pytest.mark.slow
def test_predict_finds_bow_tie(executed):
    text = _stdout(executed, "predict")
    top1 = int(re.search(r"^1\. .* class\s+(\d+)", text, flags=re.MULTILINE).group(1))

    assert top1 == REFERENCE_CLASSES["grace_hopper.jpg"]
