"""The registry of architectures: one row each, read by the builders, the CLI and the tests.

This module imports nothing heavy, so the CLI can list the choices without loading Keras.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator


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
              batch_size: int | None = None, minimalistic: bool = False):
        """Import the builder and build one model; ``minimalistic`` needs ``has_minimalistic``."""
        if minimalistic and not self.has_minimalistic:
            with_option = [arch.name for arch in ARCHITECTURES.values() if arch.has_minimalistic]
            raise ValueError(
                f"{self.name} has no minimalistic variant; pass minimalistic=False, "
                f"or pick one of {', '.join(with_option)}."
            )
        options = {"minimalistic": minimalistic} if self.has_minimalistic else {}

        module_name, function_name = self.builder.split(":")
        build = getattr(importlib.import_module(module_name), function_name)
        return build(
            alpha=alpha,
            input_shape=input_shape,
            num_classes=num_classes,
            conventions=conventions,
            batch_size=batch_size,
            **options,
        )

    def variants(self) -> Iterator[tuple[str, float, bool]]:
        """Yield ``(name, alpha, minimalistic)`` for every width, minimalistic ones last."""
        for minimalistic in (False, True) if self.has_minimalistic else (False,):
            for alpha in self.alphas:
                yield self.name, alpha, minimalistic


ARCHITECTURES = {
    arch.name: arch
    for arch in (
        Architecture(
            name="mobilenet_v1",
            builder="mobile_export.models.mobilenet_v1:build_mobilenet_v1",
            alphas=(0.25, 0.5, 0.75, 1.0),
        ),
        Architecture(
            name="mobilenet_v2",
            builder="mobile_export.models.mobilenet_v2:build_mobilenet_v2",
            alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        ),
        Architecture(
            name="mobilenet_v3_small",
            builder="mobile_export.models.mobilenet_v3:build_mobilenet_v3_small",
            alphas=(0.75, 1.0),
            has_minimalistic=True,
        ),
        Architecture(
            name="mobilenet_v3_large",
            builder="mobile_export.models.mobilenet_v3:build_mobilenet_v3_large",
            alphas=(0.75, 1.0),
            has_minimalistic=True,
        ),
    )
}


def variants() -> Iterator[tuple[str, float, bool]]:
    """Yield ``(name, alpha, minimalistic)`` for every buildable variant, for test parametrization."""
    for arch in ARCHITECTURES.values():
        yield from arch.variants()


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}.") from None
