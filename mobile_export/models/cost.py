"""Per-layer cost of a built Keras model: parameters and multiply-accumulates (MACs).

What counts as a MAC, so that totals compare with the papers' "Mult-Adds":

* A standard or grouped convolution: ``Kh * Kw * Cin / groups * Cout * Hout * Wout``.
* A depthwise convolution: ``Kh * Kw * Cout * Hout * Wout``, where ``Cout = Cin * depth_multiplier``.
* A dense layer: ``in * out`` for every position it is applied at.

The 1x1 convolutions of squeeze-and-excite blocks and the classifier count like any other
convolution or dense layer. Nothing else counts: BatchNorm folds into the preceding convolution
at export, bias additions and residual additions are additions, and activations (ReLU, ReLU6,
hard-swish, hard-sigmoid), the squeeze-and-excite multiply, pooling, padding and normalization
of the input are cheap elementwise or reduction work. Those layers still get a row with 0 MACs,
and their parameters (BatchNorm's moving statistics included) are counted, so the parameter total
equals ``model.count_params()``.

Depthwise separable convolution, from MobileNets (Howard et al., 2017, arXiv:1704.04861): take a
``Dk x Dk`` kernel, ``M`` input channels, ``N`` output channels and a ``Df x Df`` feature map. A
standard convolution costs ``Dk² M N Df²``. A depthwise convolution followed by a pointwise one
costs ``Dk² M Df² + M N Df²``, so the ratio is ``1/N + 1/Dk²``. The paper assumes stride 1, where
input and output sizes agree. Here ``Df`` is the output size, so the formulas also equal the
layers' MACs at stride 2. For example, 5 channels of 10x10 filtered by 3x3 kernels into 64
channels cost 288,000 MACs as a standard convolution and 4,500 + 32,000 = 36,500 MACs as a
separable one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import keras

Shape = tuple[int | None, ...]

COMPUTE_KINDS = ("conv", "depthwise", "pointwise", "squeeze-excite", "dense")
KINDS = (*COMPUTE_KINDS, "pool", "add", "activation", "other")

_ACTIVATION_LAYERS = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
)
# Class names of the operations ``keras.ops`` puts in a functional graph when a builder calls them
# on symbolic tensors instead of using a layer.
_ACTIVATION_OPS = {"Relu", "Relu6", "HardSwish", "HardSigmoid", "Sigmoid", "Softmax", "Silu", "Swish"}
_ADD_OPS = {"Add"}
# Operations whose multiply-adds this module does not count yet. They raise, because a row with
# 0 MACs would understate the total.
_UNSUPPORTED_OPS = {"Conv", "DepthwiseConv", "SeparableConv", "ConvTranspose", "Matmul", "Dot", "Einsum", "Tensordot"}


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One layer of a model: what it is, the shapes it maps between, and what it costs.

    Shapes leave out the batch dimension. ``kind`` is one of :data:`KINDS`. ``kernel_size`` is
    ``(height, width)`` for a convolution and ``None`` for every other layer.
    """

    name: str
    kind: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int
    macs: int
    kernel_size: tuple[int, int] | None = None

    @property
    def input_shape(self) -> Shape:
        """The shape of the first input, because layers such as ``Add`` have more than one."""
        return self.input_shapes[0]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shapes": [list(shape) for shape in self.input_shapes],
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "kernel_size": None if self.kernel_size is None else list(self.kernel_size),
        }


@dataclasses.dataclass(frozen=True)
class Totals:
    """Sums over a list of :class:`LayerCost` rows, with the MACs split by kind."""

    params: int
    macs: int
    macs_by_kind: dict[str, int]

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "macs_by_kind": dict(self.macs_by_kind)}


@dataclasses.dataclass(frozen=True)
class SeparablePair:
    """A depthwise layer and its pointwise projection, compared with one standard convolution.

    ``dk`` is the kernel and ``df`` the output size, each as ``(height, width)``. ``m`` is the
    depthwise layer's channel count and ``n`` the pointwise layer's output channels.
    """

    block: str
    depthwise: str
    pointwise: str
    dk: tuple[int, int]
    m: int
    n: int
    df: tuple[int, int]
    separable_macs: int
    standard_macs: int

    @property
    def ratio(self) -> float:
        """Separable MACs over standard MACs."""
        return self.separable_macs / self.standard_macs

    @property
    def expected_ratio(self) -> float:
        """``1/N + 1/Dk²``, the ratio the formulas predict."""
        return 1 / self.n + 1 / (self.dk[0] * self.dk[1])

    def to_dict(self) -> dict:
        return {
            "block": self.block,
            "depthwise": self.depthwise,
            "pointwise": self.pointwise,
            "dk": list(self.dk),
            "m": self.m,
            "n": self.n,
            "df": list(self.df),
            "separable_macs": self.separable_macs,
            "standard_macs": self.standard_macs,
            "ratio": self.ratio,
            "expected_ratio": self.expected_ratio,
        }


def standard_cost(dk: int | tuple[int, int], m: int, n: int, df: int | tuple[int, int]) -> int:
    """Return ``Dk² M N Df²``, the MACs of a standard ``Dk x Dk`` convolution from M to N channels.

    ``dk`` and ``df`` are a side length, or ``(height, width)`` for a rectangle. ``df`` is the
    output size. ``standard_cost(3, 5, 64, 10) == 288_000``.
    """
    return _area(dk) * m * n * _area(df)


def depthwise_cost(dk: int | tuple[int, int], m: int, df: int | tuple[int, int]) -> int:
    """Return ``Dk² M Df²``, the MACs of a depthwise ``Dk x Dk`` convolution over M channels.

    ``depthwise_cost(3, 5, 10) == 4_500``.
    """
    return _area(dk) * m * _area(df)


def pointwise_cost(m: int, n: int, df: int | tuple[int, int]) -> int:
    """Return ``M N Df²``, the MACs of a 1x1 convolution from M to N channels.

    ``pointwise_cost(5, 64, 10) == 32_000``.
    """
    return m * n * _area(df)


def separable_cost(dk: int | tuple[int, int], m: int, n: int, df: int | tuple[int, int]) -> int:
    """Return ``Dk² M Df² + M N Df²``: a depthwise ``Dk x Dk`` convolution, then a 1x1 one to N.

    ``separable_cost(3, 5, 64, 10) == 4_500 + 32_000``.
    """
    return depthwise_cost(dk, m, df) + pointwise_cost(m, n, df)


def layer_costs(model: keras.Model) -> list[LayerCost]:
    """Return one :class:`LayerCost` per layer of ``model`` in topological order, inputs left out.

    The model must be a functional model built with a fixed input size, each layer called once,
    channels last. Raises ``NotImplementedError`` for a nested model, a shared layer, or a layer
    with weights whose multiply-adds this module does not count (for example ``Conv1D``,
    ``SeparableConv2D``, ``EinsumDense``), instead of reporting 0 MACs for it.
    """
    graph = _Graph(model)
    costs = []
    for operation in graph.operations:
        if isinstance(operation, keras.layers.InputLayer):
            continue
        kind, macs = _kind_and_macs(operation, graph)
        params = operation.count_params() if isinstance(operation, keras.layers.Layer) else 0
        costs.append(
            LayerCost(
                name=operation.name,
                kind=kind,
                input_shapes=tuple(graph.input_shapes(operation)),
                output_shape=graph.output_shape(operation),
                params=params,
                macs=macs,
                kernel_size=_kernel_size(operation),
            )
        )
    return costs


def totals(costs: Iterable[LayerCost]) -> Totals:
    """Sum parameters and MACs over ``costs``."""
    params = 0
    macs = 0
    macs_by_kind = {kind: 0 for kind in COMPUTE_KINDS}
    for cost in costs:
        params += cost.params
        macs += cost.macs
        if cost.macs:
            macs_by_kind[cost.kind] = macs_by_kind.get(cost.kind, 0) + cost.macs
    return Totals(params=params, macs=macs, macs_by_kind=macs_by_kind)


def separable_comparison(costs: Sequence[LayerCost]) -> list[SeparablePair]:
    """Pair each depthwise layer with the pointwise layer that projects its output.

    The pointwise layer is the first 1x1 convolution after the depthwise one, in the order of
    ``costs``, that reads the depthwise output's spatial size and channel count. Only layers
    without MACs may lie between them, so a block whose depthwise output first meets another
    convolution (a squeeze-and-excite 1x1 convolution is skipped) is left unpaired. The costs of
    the pair come from the formulas. They equal the two layers' measured MACs at any stride,
    because ``Df`` is the output size.
    """
    pairs = []
    for index, cost in enumerate(costs):
        if cost.kind != "depthwise":
            continue
        pointwise = _projection_of(costs, index)
        if pointwise is None:
            continue

        height, width, channels = cost.output_shape
        kernel = cost.kernel_size
        out_channels = pointwise.output_shape[-1]
        pairs.append(
            SeparablePair(
                block=_common_prefix(cost.name, pointwise.name),
                depthwise=cost.name,
                pointwise=pointwise.name,
                dk=kernel,
                m=channels,
                n=out_channels,
                df=(height, width),
                separable_macs=separable_cost(kernel, channels, out_channels, (height, width)),
                standard_macs=standard_cost(kernel, channels, out_channels, (height, width)),
            )
        )
    return pairs


def format_shape(shape: Shape) -> str:
    """Format a shape without batch as ``112x112x32``, with ``?`` for an unknown dimension."""
    return "x".join("?" if side is None else str(side) for side in shape)


def format_layer_table(costs: Sequence[LayerCost]) -> str:
    """Format one line per layer, then the totals in parameters and millions of MACs."""
    header = ("layer", "kind", "input shape", "output shape", "params", "MACs")
    rows = [
        (
            cost.name,
            cost.kind,
            " + ".join(format_shape(shape) for shape in cost.input_shapes),
            format_shape(cost.output_shape),
            f"{cost.params:,}",
            f"{cost.macs:,}",
        )
        for cost in costs
    ]
    summed = totals(costs)
    lines = _align(header, rows, numeric_columns=(4, 5))
    lines.append("")
    lines.append(f"Total params: {summed.params:,}")
    lines.append(f"Total MACs:   {summed.macs:,} ({summed.macs / 1e6:.1f} MMACs)")
    for kind, macs in summed.macs_by_kind.items():
        if macs:
            lines.append(f"  {kind:<15} {macs / 1e6:8.1f} MMACs")
    return "\n".join(lines)


def format_separable_table(pairs: Sequence[SeparablePair]) -> str:
    """Format one line per depthwise separable pair, against a standard convolution."""
    header = ("block", "Dk", "M", "N", "Df", "separable MACs", "standard MACs", "ratio", "1/N+1/Dk²")
    rows = [
        (
            pair.block,
            _format_side(pair.dk),
            str(pair.m),
            str(pair.n),
            _format_side(pair.df),
            f"{pair.separable_macs:,}",
            f"{pair.standard_macs:,}",
            f"{pair.ratio:.4f}",
            f"{pair.expected_ratio:.4f}",
        )
        for pair in pairs
    ]
    return "\n".join(_align(header, rows, numeric_columns=(1, 2, 3, 4, 5, 6, 7, 8)))


class _Graph:
    """The operations of a functional model and the edges between them."""

    def __init__(self, model: keras.Model):
        self.operations = list(model.operations)
        self._consumers: dict[int, list] = {id(op): [] for op in self.operations}
        for operation in self.operations:
            if isinstance(operation, keras.Model):
                raise NotImplementedError(
                    f"Layer {operation.name!r} is a nested model, but layer_costs supports only flat "
                    "functional models. Build the nested part inline."
                )
            if len(operation._inbound_nodes) != 1:
                raise NotImplementedError(
                    f"Layer {operation.name!r} is called {len(operation._inbound_nodes)} times, but "
                    "layer_costs supports only layers called exactly once."
                )
            for parent in operation._inbound_nodes[0].parent_nodes:
                self._consumers[id(parent.operation)].append(operation)

    def consumers(self, operation) -> list:
        return self._consumers[id(operation)]

    def input_shapes(self, operation) -> list[Shape]:
        return [tuple(tensor.shape[1:]) for tensor in operation._inbound_nodes[0].input_tensors]

    def output_shape(self, operation) -> Shape:
        outputs = operation._inbound_nodes[0].output_tensors
        if len(outputs) != 1:
            raise NotImplementedError(f"Layer {operation.name!r} has {len(outputs)} outputs, expected 1.")
        return tuple(outputs[0].shape[1:])


def _kind_and_macs(operation, graph: _Graph) -> tuple[str, int]:
    if isinstance(operation, keras.layers.DepthwiseConv2D):
        _require_channels_last(operation)
        height, width, channels = _spatial_output(operation, graph)
        kernel_h, kernel_w = operation.kernel_size
        return "depthwise", kernel_h * kernel_w * channels * height * width

    if isinstance(operation, keras.layers.Conv2D):
        _require_channels_last(operation)
        height, width, out_channels = _spatial_output(operation, graph)
        in_channels = graph.input_shapes(operation)[0][-1]
        kernel_h, kernel_w = operation.kernel_size
        macs = kernel_h * kernel_w * (in_channels // operation.groups) * out_channels * height * width
        if (kernel_h, kernel_w) != (1, 1) or operation.groups != 1:
            return "conv", macs
        if _is_squeeze_excite(operation, graph):
            return "squeeze-excite", macs
        return "pointwise", macs

    if isinstance(operation, keras.layers.Dense):
        input_shape = graph.input_shapes(operation)[0]
        positions = 1
        for side in input_shape[:-1]:
            positions *= _known(side, operation)
        return "dense", positions * input_shape[-1] * operation.units

    _reject_uncounted(operation)
    if isinstance(operation, keras.layers.Layer):
        if "Pooling" in type(operation).__name__:
            return "pool", 0
        if isinstance(operation, keras.layers.Add):
            return "add", 0
        if isinstance(operation, _ACTIVATION_LAYERS):
            return "activation", 0
        return "other", 0
    if type(operation).__name__ in _ADD_OPS:
        return "add", 0
    if type(operation).__name__ in _ACTIVATION_OPS:
        return "activation", 0
    return "other", 0


def _reject_uncounted(operation) -> None:
    weighted = any(
        getattr(operation, attribute, None) is not None
        for attribute in ("kernel", "depthwise_kernel", "pointwise_kernel")
    )
    if weighted or type(operation).__name__ in _UNSUPPORTED_OPS:
        raise NotImplementedError(
            f"Layer {operation.name!r} ({type(operation).__name__}) does multiply-adds that layer_costs "
            "does not count. Layers whose multiply-adds it counts: Conv2D, DepthwiseConv2D, Dense."
        )


def _is_squeeze_excite(operation, graph: _Graph) -> bool:
    """Tell a squeeze-and-excite 1x1 convolution from a pointwise one.

    A layer whose name contains ``_se_`` is one. Otherwise it is a 1x1 convolution on a 1x1
    tensor whose result flows, through other 1x1 tensors, into a multiply that scales a larger
    tensor. A classifier written as a 1x1 convolution after global pooling never reaches a
    multiply, so it stays pointwise.
    """
    if "_se_" in operation.name:
        return True
    if graph.input_shapes(operation)[0][:2] != (1, 1):
        return False

    pending = list(graph.consumers(operation))
    seen = set()
    while pending:
        consumer = pending.pop()
        if id(consumer) in seen:
            continue
        seen.add(id(consumer))
        if type(consumer).__name__ == "Multiply":
            return True
        shape = graph.output_shape(consumer)
        if len(shape) == 3 and shape[:2] != (1, 1):
            continue
        pending.extend(graph.consumers(consumer))
    return False


def _projection_of(costs: Sequence[LayerCost], index: int) -> LayerCost | None:
    depthwise = costs[index]
    for cost in costs[index + 1 :]:
        if cost.kind == "pointwise":
            if cost.input_shape == depthwise.output_shape:
                return cost
            return None
        if cost.kind in ("conv", "depthwise", "dense"):
            return None
    return None


def _kernel_size(operation) -> tuple[int, int] | None:
    if isinstance(operation, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return tuple(operation.kernel_size)
    return None


def _spatial_output(operation, graph: _Graph) -> tuple[int, int, int]:
    shape = graph.output_shape(operation)
    if len(shape) != 3:
        raise NotImplementedError(f"Layer {operation.name!r} has output shape {shape}, expected (H, W, C).")
    return tuple(_known(side, operation) for side in shape)


def _known(side: int | None, operation) -> int:
    if side is None:
        raise ValueError(
            f"Layer {operation.name!r} has an unknown dimension. Build the model with a fixed input "
            "size, for example input_shape=(224, 224)."
        )
    return side


def _require_channels_last(operation) -> None:
    if operation.data_format != "channels_last":
        raise NotImplementedError(
            f"Layer {operation.name!r} uses data_format={operation.data_format!r}, but layer_costs "
            "supports only channels_last."
        )


def _area(side: int | tuple[int, int]) -> int:
    if isinstance(side, int):
        return side * side
    height, width = side
    return height * width


def _format_side(side: tuple[int, int]) -> str:
    height, width = side
    return str(height) if height == width else f"{height}x{width}"


def _common_prefix(first: str, second: str) -> str:
    """Return the longest shared prefix of two layer names that ends before an underscore."""
    first_parts, second_parts = first.split("_"), second.split("_")
    shared = []
    for a, b in zip(first_parts, second_parts):
        if a != b:
            break
        shared.append(a)
    return "_".join(shared) or first


def _align(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_columns: Sequence[int]) -> list[str]:
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if column in numeric_columns else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)]
