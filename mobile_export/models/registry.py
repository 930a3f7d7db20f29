"""The registry of architectures: one row each, read by the builders, the CLI and the tests.

This module imports nothing heavy, so the CLI can list the choices without loading Keras.
"""

from __future__ import annotations

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One MobileNet family and the options it accepts."""

    name: str
    builder: str  # "module:function", imported only when a model is built
    alphas: tuple[float, ...]
    default_alpha: float = 1.0
    default_resolution: int = 224
    has_minimalistic: bool = False

    def build(self, *, alpha: float, input_shape: tuple[int, int], conventions, num_classes: int = 1000,
              batch_size: int | None = None):
        module_name, function_name = self.builder.split(":")
        build = getattr(importlib.import_module(module_name), function_name)
        return build(
            alpha=alpha,
            input_shape=input_shape,
            num_classes=num_classes,
            conventions=conventions,
            batch_size=batch_size,
        )


ARCHITECTURES = {
    arch.name: arch
    for arch in (
        Architecture(
            name="mobilenet_v2",
            builder="mobile_export.models.mobilenet_v2:build_mobilenet_v2",
            alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        ),
    )
}


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}.") from None
