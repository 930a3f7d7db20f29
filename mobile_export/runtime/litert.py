"""Run a .tflite model in the LiteRT interpreter, taking raw pixels and returning float outputs.

Quantizing the input and dequantizing the output use the scale and zero point read from the model
itself, exactly as an app must, so a misread dtype or zero point shows up here first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


KERNELS = ("xnnpack", "reference")


class LiteRTModel:
    """A loaded .tflite model: ``run(pixels)`` maps one HxWx3 uint8 image to float outputs.

    ``kernels="xnnpack"`` is LiteRT's default: the XNNPACK delegate takes the ops it supports,
    with micro-kernels chosen for this CPU's instruction set. ``"reference"`` runs LiteRT's
    reference kernels, plain C++ written to define each op's result: 270 ms against 7 ms per photo
    for the int8 V2 at 224 on a 2-core x86-64 machine.
    """

    def __init__(self, model: Path | bytes, *, num_threads: int = 2, kernels: str = "xnnpack"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from mobile_export._tf import captured_output

        if kernels not in KERNELS:
            raise ValueError(f"Invalid kernels {kernels!r}: expected one of {', '.join(KERNELS)}.")
        resolver = OpResolverType.AUTO if kernels == "xnnpack" else OpResolverType.BUILTIN_REF
        source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
        # LiteRT announces its XNNPACK delegate on descriptor 2; keep that off the terminal.
        with captured_output(None):
            self._interpreter = Interpreter(
                **source, num_threads=num_threads, experimental_op_resolver_type=resolver
            )
            self._interpreter.allocate_tensors()
        (self.input,) = self._interpreter.get_input_details()
        (self.output,) = self._interpreter.get_output_details()

    def quantize_input(self, pixels: np.ndarray) -> np.ndarray:
        """Turn uint8 pixels into the model's input tensor with its own dtype, scale and zero point."""
        dtype = np.dtype(self.input["dtype"])
        values = pixels.astype(np.float32)[None]
        if dtype.kind == "f":
            return values.astype(dtype)
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        quantized = np.round(values / scale) + zero_point
        return np.clip(quantized, info.min, info.max).astype(dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        if np.dtype(self.output["dtype"]).kind == "f":
            return raw.astype(np.float32)
        scale, zero_point = self.output["quantization"]
        return (raw.astype(np.float32) - zero_point) * np.float32(scale)

    def float_ops(self) -> dict[str, int]:
        """Count the ops that compute in float32, apart from the (de)quantize ops at their edges."""
        tensors = {tensor["index"]: tensor for tensor in self._interpreter.get_tensor_details()}
        counts: dict[str, int] = {}
        for op in self._interpreter._get_ops_details():
            if op["op_name"] in ("QUANTIZE", "DEQUANTIZE", "DELEGATE"):
                continue
            outputs = [tensors[index] for index in op["outputs"] if index in tensors]
            if outputs and all(np.dtype(tensor["dtype"]) == np.float32 for tensor in outputs):
                counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        return counts

    def output_limits(self) -> tuple[float, float] | None:
        """Return the smallest and largest values a quantized output can represent, or None for float output."""
        dtype = np.dtype(self.output["dtype"])
        if dtype.kind == "f":
            return None
        info = np.iinfo(dtype)
        return float(self.dequantize_output(np.array(info.min))), float(self.dequantize_output(np.array(info.max)))

    def run_raw(self, tensor: np.ndarray) -> np.ndarray:
        """Invoke the model on an input tensor already in its dtype; return the raw output, flat."""
        self._interpreter.set_tensor(self.input["index"], tensor)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self.output["index"]).ravel().copy()

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Return the dequantized output row for one prepared ``HxWx3`` uint8 image."""
        self._interpreter.set_tensor(self.input["index"], self.quantize_input(pixels))
        self._interpreter.invoke()
        return self.dequantize_output(self._interpreter.get_tensor(self.output["index"]))[0]

    def median_latency_ms(self, runs: int = 30, warmup: int = 3) -> float:
        """Median wall time of one invoke on a zero input, in milliseconds, after ``warmup`` runs."""
        import time

        tensor = np.zeros(self.input["shape"], self.input["dtype"])
        self._interpreter.set_tensor(self.input["index"], tensor)
        times = []
        for index in range(warmup + runs):
            start = time.perf_counter()
            self._interpreter.invoke()
            if index >= warmup:
                times.append(time.perf_counter() - start)
        return float(np.median(times) * 1e3)

    def run_all(self, images: np.ndarray, progress=None) -> np.ndarray:
        outputs = []
        for index, pixels in enumerate(images):
            outputs.append(self.run(pixels))
            if progress is not None:
                progress(index + 1, len(images))
        return np.stack(outputs)
