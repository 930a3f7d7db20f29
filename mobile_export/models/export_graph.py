"""Rewrites of a float model that compute the same function with fewer ops in the exported graph.

Every rewrite here returns a new Keras model whose outputs equal the input model's up to float32
rounding (tests/test_bench.py checks V2's logits on real photos to 1e-5 plus 1e-6 of each
logit). They are meant to run on the float model just before conversion.
"""

from __future__ import annotations

import numpy as np


class GraphRewriteError(ValueError):
    """The model does not have the structure a rewrite needs; the message names what is missing."""


def fold_normalization_scale(model):
    """Fold the division by ``std`` of the ``normalize`` layer into the stem convolution's kernel.

    Our models start with ``normalize`` (``(x - mean) / std`` per channel, which converts to a
    SUB and a MUL over the whole image), then an optional ``stem_pad`` (ZeroPadding2D) and the
    ``stem_conv`` (Conv2D). Zero padding commutes with the division, because ``0 / std = 0``,
    and the convolution is linear, so ``conv(W, pad((x - mean) / std))`` equals
    ``conv(W / std, pad(x - mean))`` with ``W`` divided along its input channels. The SUB must
    stay: padding ``x - mean`` with zeros pads every channel with its own mean in pixel units,
    which a constant PAD of raw pixels cannot do.

    Returns a new model that keeps every layer name; ``normalize`` becomes a mean-only
    Normalization layer, which converts to a single SUB.

    Raises:
        GraphRewriteError: the model has no ``normalize`` layer feeding a bias-free ``stem_conv``
            through at most a zero padding, or ``normalize`` has other consumers.
    """
    import keras

    normalize, stem = _normalize_and_stem(model)
    mean = np.asarray(normalize.mean, dtype=np.float64).reshape(-1)
    std = np.sqrt(np.asarray(normalize.variance, dtype=np.float64).reshape(-1))

    def clone(layer):
        if layer.name == normalize.name:
            return keras.layers.Normalization(axis=-1, mean=list(mean), variance=[1.0] * len(mean), name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    rewritten = keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        if layer.name == normalize.name or not layer.weights:
            continue
        arrays = model.get_layer(layer.name).get_weights()
        if layer.name == stem.name:
            arrays[0] = (arrays[0].astype(np.float64) / std[None, None, :, None]).astype(np.float32)
        layer.set_weights(arrays)
    return rewritten


def _normalize_and_stem(model):
    """Return the ``normalize`` layer and the Conv2D it feeds, checking the path between them."""
    import keras

    try:
        normalize = model.get_layer("normalize")
    except ValueError:
        raise GraphRewriteError(f"{model.name} has no 'normalize' layer; only registry MobileNets can be rewritten.") from None
    if not isinstance(normalize, keras.layers.Normalization) or normalize.axis not in ((-1,), (3,), -1, 3):
        raise GraphRewriteError(f"{model.name}'s 'normalize' is not a per-channel Normalization layer.")

    layer = normalize
    while True:
        consumers = [candidate for candidate in model.layers if _reads(candidate, layer.output)]
        if len(consumers) != 1:
            raise GraphRewriteError(
                f"{layer.name} feeds {len(consumers)} layers; folding needs the stem convolution to be its only consumer."
            )
        (layer,) = consumers
        if isinstance(layer, keras.layers.ZeroPadding2D):
            continue
        if type(layer) is keras.layers.Conv2D and not layer.use_bias:
            return normalize, layer
        raise GraphRewriteError(
            f"normalize feeds {layer.name} ({type(layer).__name__}); folding needs a bias-free Conv2D, "
            "with at most zero padding between them."
        )


def _reads(layer, tensor) -> bool:
    import keras

    if isinstance(layer, keras.layers.InputLayer):
        return False
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return any(candidate is tensor for candidate in inputs)
