"""A user's own Keras model file (``--model PATH``), loaded safely and given our input contract.

The file is loaded with Keras' ``safe_mode=True``, which refuses to deserialize Python code such as
``Lambda`` layers, so opening an untrusted model cannot run code. The user declares the input
normalization the model was trained with; a Normalization layer in front of it then lets the
export take raw 0..255 pixels like every other export.
"""

from __future__ import annotations

from pathlib import Path

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class UserModelError(ValueError):
    """The model file or its declared normalization or labels cannot be used."""


def parse_triple(value: str, option: str) -> tuple[float, float, float]:
    """Parse ``"R,G,B"`` (or a single number for all three channels)."""
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise UserModelError(f"{option} {value!r} is not a number or three comma-separated numbers.") from None
    if len(numbers) == 1:
        numbers = numbers * 3
    if len(numbers) != 3:
        raise UserModelError(f"{option} {value!r} needs one number or three (R,G,B).")
    return numbers[0], numbers[1], numbers[2]


def declared_normalization(
    input_range: str | None, mean: str | None, std: str | None
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Turn ``--input-range`` or ``--mean``/``--std`` into mean and std in 0..255 pixel units.

    ``--input-range a,b`` means the model was trained on pixels mapped linearly from 0..255 to
    ``[a, b]``: ``a + x * (b - a) / 255``, which is ``(x - mean) / std`` with
    ``std = 255 / (b - a)`` and ``mean = -a * std``. Keras' MobileNet ``preprocess_input`` is
    ``--input-range -1,1``.
    """
    if input_range is not None and (mean is not None or std is not None):
        raise UserModelError("Pass either --input-range or --mean/--std, not both.")
    if input_range is not None:
        parts = input_range.split(",")
        try:
            low, high = (float(part) for part in parts)
        except ValueError:
            raise UserModelError(f"--input-range {input_range!r} is not two numbers like -1,1 or 0,1.") from None
        if high <= low:
            raise UserModelError(f"--input-range {input_range!r} must go from low to high, like -1,1.")
        scale = 255.0 / (high - low)
        return (-low * scale,) * 3, (scale,) * 3
    if mean is None or std is None:
        raise UserModelError(
            "A --model needs its input normalization declared: --input-range -1,1 for Keras' MobileNet "
            "preprocessing, or --mean R,G,B --std R,G,B in 0..255 pixel units."
        )
    std_values = parse_triple(std, "--std")
    if min(std_values) <= 0:
        raise UserModelError(f"--std {std!r} must be positive.")
    return parse_triple(mean, "--mean"), std_values


def check_model_path(path: Path) -> None:
    if not path.is_file():
        raise UserModelError(f"Model file {path} does not exist; pass a .keras or .h5 file to --model.")
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise UserModelError(
            f"Model file {path} has suffix {path.suffix!r}; --model takes Keras files ({', '.join(KERAS_SUFFIXES)})."
        )


def load_user_model(path: Path):
    """Load a Keras model file with safe mode on and without compiling it."""
    import keras

    check_model_path(path)
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a bad or unsafe file
        message = str(error).strip()
        if "safe_mode" in message or "unsafe" in message:
            raise UserModelError(
                f"Rejected {path}: it contains Python code (such as a Lambda layer) that Keras safe mode "
                "does not run; re-save the model without Lambda layers."
            ) from None
        first_line = message.splitlines()[0] if message else type(error).__name__
        raise UserModelError(f"Cannot load {path} with Keras safe mode: {first_line}") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserModelError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; expected 1 and 1.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise UserModelError(f"{path} takes input of shape {shape}; expected (batch, height, width, 3) RGB images.")
    if len(model.outputs[0].shape) != 2:
        raise UserModelError(f"{path} outputs shape {tuple(model.outputs[0].shape)}; expected (batch, classes).")
    return model


def input_size(model, resolution: tuple[int, int] | None, path: Path) -> tuple[int, int]:
    """Return the model's fixed input size, or ``resolution`` when the model accepts any size."""
    _, height, width, _ = model.inputs[0].shape
    if height is not None and width is not None:
        if resolution is not None and tuple(resolution) != (height, width):
            raise UserModelError(
                f"{path} takes {height}x{width} input; drop --resolution or pass --resolution {height}x{width}."
            )
        return int(height), int(width)
    if resolution is None:
        raise UserModelError(f"{path} accepts any input size; pass --resolution to choose one.")
    return resolution


def output_kind(model) -> str:
    """``"probabilities"`` when the model's last layer applies a softmax, else ``"logits"``."""
    last = model.layers[-1]
    while hasattr(last, "layers") and last.layers:  # a nested model: look at its own last layer
        last = last.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if name == "softmax" or type(last).__name__ == "Softmax":
        return "probabilities"
    return "logits"


def wrap_with_normalization(inner, *, height: int, width: int, mean, std):
    """Return a batch-1 model taking 0..255 pixels: our Normalization layer, then ``inner``."""
    import keras
    from keras import layers

    pixels = keras.Input(shape=(height, width, 3), batch_size=1, name="pixels")
    x = layers.Normalization(axis=-1, mean=list(mean), variance=[s * s for s in std], name="normalize")(pixels)
    outputs = inner(x)
    return keras.Model(pixels, outputs, name=f"{inner.name}_pixels")
