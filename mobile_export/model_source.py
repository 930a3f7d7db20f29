"""Where a build's float model comes from: a registry architecture with named weights, or a user's
Keras file with declared normalization and labels.

Creating a source checks every option cheaply; :meth:`ModelSource.load` does the heavy work. The
rest of the pipeline sees only the loaded batch-1 Keras model and the facts recorded here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mobile_export.models import registry


class SourceOptionError(ValueError):
    """An option that does not fit the chosen model source."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A float model to build or load, and what its manifest says about it."""

    name: str  # registry architecture, or the model file's stem
    file_stem: str
    resolution: tuple[int, int]
    alpha: float | None
    minimalistic: bool
    output_kind: str
    pretrained: bool
    conventions: dict
    weights: dict
    labels_path: Path | None  # None means the bundled ImageNet class names
    _spec: object = None
    _model_path: Path | None = None
    _normalization: tuple | None = None

    def load(self, *, seed: int):
        """Return ``(batch-1 Keras model taking 0..255 pixels, labels)``."""
        from mobile_export._tf import import_tensorflow

        import_tensorflow()
        import keras

        from mobile_export.data import load_imagenet_labels, read_labels

        keras.utils.set_random_seed(seed)
        if self._model_path is None:
            model = self._build_registry_model(seed)
        else:
            model = self._load_keras_file()

        labels = load_imagenet_labels() if self.labels_path is None else read_labels(self.labels_path)
        classes = model.outputs[0].shape[-1]
        if len(labels) != classes:
            raise SourceOptionError(
                f"The labels file has {len(labels)} labels but the model outputs {classes} classes; "
                "pass a --labels file with one label per output."
            )
        return model, labels

    def _build_registry_model(self, seed: int):
        from mobile_export.models.weights import load_weights

        architecture = registry.get(self.name)
        options = {"minimalistic": True} if self.minimalistic else {}
        model = architecture.build(
            alpha=self.alpha,
            input_shape=self.resolution,
            conventions=self._spec.conventions,
            batch_size=1,
            **options,
        )
        load_weights(model, self._spec, seed=seed)
        return model

    def _load_keras_file(self):
        from mobile_export.models import user_model

        inner = user_model.load_user_model(self._model_path)
        height, width = user_model.input_size(inner, self.resolution, self._model_path)
        mean, std = self._normalization
        return user_model.wrap_with_normalization(inner, height=height, width=width, mean=mean, std=std)


def from_registry(
    arch: str, *, alpha: float | None, resolution, minimalistic: bool, weights: str | None
) -> ModelSource:
    """Check and describe a registry architecture with a named weights source."""
    from mobile_export.models.weights import resolve_weights
    from mobile_export.pipeline import parse_resolution

    try:
        architecture = registry.get(arch)
    except ValueError as error:
        raise SourceOptionError(str(error)) from None
    alpha = architecture.default_alpha if alpha is None else float(alpha)
    if alpha not in architecture.alphas:
        raise SourceOptionError(
            f"alpha {alpha:g} is not available for {arch}; expected one of "
            f"{', '.join(f'{a:g}' for a in architecture.alphas)}."
        )
    if minimalistic and not architecture.has_minimalistic:
        with_variant = [name for name, a in registry.ARCHITECTURES.items() if a.has_minimalistic]
        raise SourceOptionError(
            f"{arch} has no minimalistic variant; --minimalistic works with {', '.join(with_variant) or 'none'}."
        )
    height, width = parse_resolution(architecture.default_resolution if resolution is None else resolution)
    spec = resolve_weights(arch, weights, alpha=alpha, resolution=(height, width), minimalistic=minimalistic)

    size = f"{height}" if height == width else f"{height}x{width}"
    variant = "_minimalistic" if minimalistic else ""
    return ModelSource(
        name=arch,
        # The naming of TensorFlow's hosted MobileNets: mobilenet_v2_1.0_224, mobilenet_v2_0.35_96.
        file_stem=f"{arch}{variant}_{alpha}_{size}",
        resolution=(height, width),
        alpha=alpha,
        minimalistic=minimalistic,
        output_kind=spec.conventions.output,
        pretrained=spec.pretrained,
        conventions=spec.conventions.to_dict(),
        weights=spec.to_dict(),
        labels_path=None,
        _spec=spec,
    )


def from_keras_file(
    path: str | Path,
    *,
    resolution,
    input_range: str | None,
    mean: str | None,
    std: str | None,
    labels: str | Path | None,
) -> ModelSource:
    """Check and describe a user's Keras model file; the file itself is read only by ``load``."""
    from mobile_export.models import user_model
    from mobile_export.models.weights import sha256_of
    from mobile_export.pipeline import parse_resolution

    path = Path(path)
    user_model.check_model_path(path)
    mean_values, std_values = user_model.declared_normalization(input_range, mean, std)
    if labels is None:
        raise SourceOptionError("A --model needs its class names: pass --labels FILE with one label per line.")
    labels_path = Path(labels)
    if not labels_path.is_file():
        raise SourceOptionError(f"Labels file {labels_path} does not exist; pass a text file with one label per line.")

    # The true input size is known only once the file is loaded; a fixed-size model overrides this.
    size = parse_resolution(resolution) if resolution is not None else None
    return ModelSource(
        name="keras_model",
        file_stem=path.stem,
        resolution=size,
        alpha=None,
        minimalistic=False,
        output_kind="unknown until loaded",
        pretrained=True,
        conventions={
            "name": "declared by the user",
            "stride2_padding": "as saved in the model",
            "bn_epsilon": "as saved in the model",
            "normalization": {"mean": list(mean_values), "std": list(std_values), "pixel_range": [0, 255]},
        },
        weights={
            "source": "file",
            "pretrained": True,
            "description": f"user Keras model {path.name}, loaded with safe_mode=True",
            "licence": None,
            "file": path.name,
            "sha256": sha256_of(path),
        },
        labels_path=labels_path,
        _model_path=path.resolve(),
        _normalization=(mean_values, std_values),
    )


def finalize(source: ModelSource, model) -> ModelSource:
    """Fill in what only the loaded model reveals: the input size and output kind of a Keras file."""
    if source._model_path is None:
        return source
    from mobile_export.models import user_model

    _, height, width, _ = model.inputs[0].shape
    kind = user_model.output_kind(model)
    conventions = source.conventions | {"output": kind}
    return dataclasses.replace(source, resolution=(int(height), int(width)), output_kind=kind, conventions=conventions)
