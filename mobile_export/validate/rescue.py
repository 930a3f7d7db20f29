"""Rescue for an int8 export that misses its gate: keep the blocks that hurt most in float.

A per-layer score (the debugger's RMSE over scale) measures how far a tensor is from its float
values in its own steps, not how much that error moves the logits: on the ImageNet MobileNetV2,
keeping the 3 to 25 worst-scored layers in float left the median SQNR at 12-13 dB. This search
measures instead. Each block (a Keras layer-name group such as ``block14``: expand, depthwise,
project and add together) is kept in float on its own, and the logits' SQNR on the calibration
photos is measured; the blocks are then added in order of that gain, re-measuring each time,
until the target is reached or the budget of blocks is spent.

The search measures on calibration samples. Of the validation photos it uses only the
shortfall, the gap between their SQNR and the gate; which blocks to keep never depends on them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

MAX_BLOCKS = 6
# Calibration samples the search measures on: the photos and augmented copies of them.
SAMPLES = 32
# Extra SQNR the search aims for beyond the shortfall, since it measures on other images.
MARGIN_DB = 1.0
# The rescue's aim for the logits' SQNR: about what 16-bit activations give the ImageNet V2 (20.4 dB).
TARGET_DB = 20.0


@dataclasses.dataclass(frozen=True)
class Rescue:
    """The search's result: the blocks kept in float, and each step's SQNR on calibration samples."""

    target_db: float
    before_db: float
    after_db: float
    blocks: list[str]
    nodes: list[str]
    gains: dict[str, float]
    steps: list[dict]

    @property
    def reached(self) -> bool:
        return self.after_db >= self.target_db

    def to_dict(self) -> dict:
        return {
            "target_sqnr_db": self.target_db,
            "calibration_sqnr_db_before": self.before_db,
            "calibration_sqnr_db_after": self.after_db,
            "reached": self.reached,
            "float_blocks": self.blocks,
            "float_ops": len(self.nodes),
            "single_block_gain_db": self.gains,
            "steps": self.steps,
        }


def block_of(op_output: str) -> str | None:
    """Return the block an op belongs to, from the Keras layer in its converter name.

    Names look like ``mobilenet_v2_1_224x224_1/block14_expand_relu6_1/Relu6;...``: the second
    path segment is the layer, and its ``blockN`` prefix, or the whole name for stem, head,
    pool and logits, is the block. Ops the converter named otherwise (its own QUANTIZE, the
    output) have no block and always stay int8.
    """
    first = op_output.split(";")[0].split("/")
    if len(first) < 2:
        return None
    layer = re.sub(r"_\d+$", "", first[1])
    match = re.match(r"(block\d+)_", layer)
    if match:
        return match.group(1)
    return layer.split("_")[0] or None


def search(
    op_outputs: Sequence[str],
    measure: Callable[[list[str]], float],
    *,
    shortfall_db: float,
    max_blocks: int = MAX_BLOCKS,
) -> Rescue:
    """Choose blocks to keep in float until ``measure`` gains ``shortfall_db`` over all-int8.

    ``op_outputs`` are the calibrated model's op names; ``measure(float_nodes)`` quantizes with
    those ops in float and returns the median logits SQNR on calibration samples.
    """
    blocks: dict[str, list[str]] = {}
    for name in op_outputs:
        block = block_of(name)
        if block is not None:
            blocks.setdefault(block, []).append(name)
    before = measure([])
    target_db = before + shortfall_db
    gains = {block: measure(nodes) - before for block, nodes in blocks.items()}
    chosen: list[str] = []
    nodes: list[str] = []
    after = before
    steps = []
    for block in sorted(gains, key=gains.get, reverse=True):
        if after >= target_db or len(chosen) >= max_blocks or gains[block] <= 0.0:
            break
        trial = measure(nodes + blocks[block])
        # A block whose gain vanished next to the ones already chosen is skipped, not kept.
        if trial <= after:
            steps.append({"block": block, "sqnr_db": trial, "kept": False})
            continue
        chosen.append(block)
        nodes = nodes + blocks[block]
        after = trial
        steps.append({"block": block, "sqnr_db": trial, "kept": True})
    return Rescue(
        target_db=target_db, before_db=before, after_db=after, blocks=chosen, nodes=nodes,
        gains={block: round(gain, 2) for block, gain in sorted(gains.items(), key=lambda item: -item[1])},
        steps=steps,
    )
