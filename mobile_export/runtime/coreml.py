"""Execute a saved Core ML ML Program (``.mlpackage``) on the CPU, so parity can be checked off macOS.

Core ML's own ``predict`` runs only on macOS. :class:`CoreMLProgram` reads the package that
coremltools wrote and executes its MIL program op by op, with numpy and TensorFlow's CPU kernels:

* The program comes from ``Manifest.json``'s root item (``Data/com.apple.CoreML/model.mlmodel``),
  parsed with coremltools' ``Model_pb2``. The proto is walked directly instead of through
  ``coremltools.converters.mil.frontend.milproto.load``. That loader rebuilds a MIL program with
  type and value inference, which folds the constexpr ops into constants, so the decompression
  under test would be coremltools' own. It also fails inside coremltools on ops it does not know,
  before this module could name them.
* Weights come from the blob file that ``blobFileValue`` entries name, read by :class:`_WeightFile`
  (layout documented there) rather than through coremltools' private ``_BlobStorageReader``.
* An ``ImageType`` input reaches the program as a float tensor ``[1, 3, H, W]`` (NCHW) in the
  colour order of the image's colour space. An ML Program records no scale or bias in its
  description: coremltools inserts them as ``mul``/``add`` ops named ``<input>__scaled__`` and
  ``<input>__biased__`` at the start of the program, so executing the program applies them.

Precision is applied per op output. ``"model"`` rounds to float16 exactly the outputs that the
program types as fp16: a program converted with ``compute_precision=FLOAT16`` casts its input to
fp16 and keeps fp16 up to its output cast. ``"fp16"`` rounds every float output and constant to
float16. ``"fp32"`` computes everything in float32, so only the weights' own rounding remains.
Each op computes in float32 from its (possibly rounded) inputs and rounds its result once.
"""

from __future__ import annotations

import collections
import inspect
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

PRECISIONS = ("model", "fp32", "fp16")
_ROOT_MODEL = "Data/com.apple.CoreML/model.mlmodel"
_BLOB_SENTINEL = 0xDEADBEEF


class UnsupportedOpError(RuntimeError):
    """A program op that this runtime cannot execute; raised when the package is loaded."""

    def __init__(self, op_type: str, output_name: str, detail: str = ""):
        self.op_type = op_type
        self.output_name = output_name
        reason = f" ({detail})" if detail else ""
        super().__init__(
            f"Cannot execute Core ML op {op_type!r} (output {output_name!r}){reason}: mobile-export's "
            f"reference runtime supports {', '.join(sorted(_KERNELS))}; check this package with "
            "Core ML's predict on macOS instead."
        )


class CoreMLPackageError(ValueError):
    """A package this runtime cannot read: missing files, not an ML Program, or an input it cannot feed."""


class CoreMLProgram:
    """A loaded ML Program: ``run(pixels)`` maps uint8 RGB images to each program output.

    Attributes:
        inputs: input name -> ``kind`` (``"image"`` or ``"tensor"``), ``shape`` (the program's
            tensor shape), ``layout`` (``"NCHW"`` or ``"NHWC"``), ``dtype``, ``color``,
            ``height`` and ``width``.
        outputs: the output feature names in the model description's order.
        ops: op type -> number of ops of that type in the main function, constants included.
        classes: the class labels of a classifier's ``classify`` op, else None.
        deployment_opset: the main function's opset, for example ``"CoreML6"`` (iOS 16).
    """

    def __init__(self, path: str | Path, *, precision: str = "model"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}.")
        self.path = Path(path)
        self.precision = precision
        from mobile_export._tf import import_tensorflow

        import_tensorflow()  # the convolutions and float16 rounding run on TensorFlow's CPU kernels
        spec, model_file = _read_spec(self.path)
        if spec.WhichOneof("Type") != "mlProgram":
            raise CoreMLPackageError(
                f"{self.path} contains a {spec.WhichOneof('Type')} model, not an ML Program; convert with "
                "convert_to='mlprogram'."
            )
        function = spec.mlProgram.functions.get("main")
        if function is None:
            raise CoreMLPackageError(f"{self.path} has no 'main' function; found {list(spec.mlProgram.functions)}.")
        self.deployment_opset = function.opset
        block = function.block_specializations[function.opset]

        self.ops = collections.Counter(op.type for op in block.operations)
        self._check_ops(block)
        self.outputs = [feature.name for feature in spec.description.output]
        self.inputs = _describe_inputs(spec, function, self.path)
        (self._input_name,) = self.inputs

        self._weights = _WeightFile(model_file.parent)
        self._constants: dict[str, object] = {}
        self._steps: list[_Step] = []
        # Program output name -> the value returned for it, and the classifier's label outputs.
        self._output_sources: dict[str, str] = {}
        self._label_outputs: set[str] = set()
        self.classes: list[str] | None = None
        self._load_block(block)

        # One run on a black image finds unsupported argument values (a pad mode, a cast dtype) and
        # shape mismatches now, rather than in the middle of a parity check. It costs one inference.
        spec = self.inputs[self._input_name]
        self._run_one(self._input_tensor(np.zeros((spec["height"], spec["width"], 3), np.uint8), spec))

    def _check_ops(self, block) -> None:
        """Raise UnsupportedOpError for the first op without a kernel, before anything runs."""
        for op in block.operations:
            if op.type in ("const", "classify"):
                continue
            if op.type not in _KERNELS:
                raise UnsupportedOpError(op.type, _first_output(op))
            if op.blocks:
                raise UnsupportedOpError(op.type, _first_output(op), "ops with nested blocks are not supported")
            accepted = _KERNEL_PARAMETERS[op.type]
            for name in _arguments(op):
                if name not in accepted:
                    raise UnsupportedOpError(op.type, _first_output(op), f"input {name!r} is not handled")

    def _load_block(self, block) -> None:
        for op in block.operations:
            arguments = _arguments(op)
            if op.type == "const":
                (output,) = op.outputs
                (value,) = arguments["val"]
                self._constants[output.name] = self._constant(_decode_value(value, self._weights), output.type)
                continue
            if op.type == "classify":
                self._load_classify(op, arguments)
                continue

            bindings: dict[str, list[str]] = {}
            for name, items in arguments.items():
                names = []
                for index, item in enumerate(items):
                    if isinstance(item, str):
                        names.append(item)
                        continue
                    inline = f"{_first_output(op)}::{name}[{index}]"
                    self._constants[inline] = self._constant(_decode_value(item, self._weights), item.type)
                    names.append(inline)
                bindings[name] = names
            # An op that only selects, moves or clamps values returns float16 values from float16 inputs,
            # and every value such an op reads was rounded already where its output must be.
            exact = op.type in _VALUE_PRESERVING_OPS
            rounds = [self._rounds_to_fp16(output.type) and not exact for output in op.outputs]
            step = _Step(op.type, bindings, [output.name for output in op.outputs], rounds)
            if op.type.startswith("constexpr_"):
                # Compile-time ops depend only on constants, so they run once here, not per image.
                for name, value in zip(step.outputs, step.execute(self._constants)):
                    self._constants[name] = value
                continue
            self._steps.append(step)

        for name in block.outputs:
            if name not in self._label_outputs:
                self._output_sources.setdefault(name, name)
        self._plan_releases()

    def _plan_releases(self) -> None:
        """Let each step drop the values that no later step reads, so a run keeps few feature maps in memory."""
        last_use = {}
        for index, step in enumerate(self._steps):
            for names in step.bindings.values():
                for name in names:
                    last_use[name] = index
        keep = set(self._output_sources.values()) | set(self._constants)
        for name, index in last_use.items():
            if name not in keep:
                self._steps[index].release.append(name)

    def _load_classify(self, op, arguments) -> None:
        # The classify op turns a probability tensor into a label and a dict. This runtime returns
        # that tensor under the dict output's name and leaves the label out.
        (probabilities,) = arguments["probabilities"]
        (classes,) = arguments["classes"]
        self.classes = [str(label) for label in _decode_value(classes, self._weights)]
        for output in op.outputs:
            if output.type.WhichOneof("type") == "dictionaryType":
                self._output_sources[output.name] = probabilities
            else:
                self._label_outputs.add(output.name)

    def _rounds_to_fp16(self, value_type) -> bool:
        """Return whether values of this MIL type are rounded to float16 under the chosen precision."""
        from coremltools.proto import MIL_pb2

        if value_type.WhichOneof("type") != "tensorType" or self.precision == "fp32":
            return False
        dtype = value_type.tensorType.dataType
        if self.precision == "fp16":
            return dtype in (MIL_pb2.FLOAT16, MIL_pb2.FLOAT32, MIL_pb2.FLOAT64)
        return dtype == MIL_pb2.FLOAT16

    def _constant(self, value, value_type):
        """Return a constant with floats as float32, rounded to float16 where the precision requires it."""
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            value = value.astype(np.float32)
            if self._rounds_to_fp16(value_type):
                value = _round_fp16(value)
        return value

    def run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Run every image of ``pixels`` (uint8, ``N x H x W x 3``, RGB) through the program.

        Returns each program output as float32, batched over N: an output whose first dimension is
        1 is concatenated along it, any other output gains a leading N axis. A classifier's label
        output is left out and its probabilities output is the tensor the ``classify`` op reads.
        """
        spec = self.inputs[self._input_name]
        pixels = np.asarray(pixels)
        expected = (spec["height"], spec["width"], 3)
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != expected or len(pixels) == 0:
            raise ValueError(
                f"pixels must be uint8 of shape (N, {expected[0]}, {expected[1]}, 3) with N >= 1, got "
                f"{pixels.dtype} {pixels.shape}; pass RGB photos prepared at the model's input size."
            )

        results: dict[str, list[np.ndarray]] = {name: [] for name in self._output_sources}
        for image in pixels:
            values = self._run_one(self._input_tensor(image, spec))
            for name, source in self._output_sources.items():
                results[name].append(np.asarray(values[source], dtype=np.float32))
        return {name: _batch(arrays) for name, arrays in results.items()}

    def _input_tensor(self, image: np.ndarray, spec: dict) -> np.ndarray:
        channels = image[..., ::-1] if spec["color"] == "BGR" else image
        if spec["layout"] == "NCHW":
            channels = channels.transpose(2, 0, 1)
        tensor = channels[None].astype(np.float32)
        return _round_fp16(tensor) if spec["dtype"] == "float16" and self.precision != "fp32" else tensor

    def _run_one(self, tensor: np.ndarray) -> dict[str, object]:
        values = dict(self._constants)
        values[self._input_name] = tensor
        for step in self._steps:
            for name, value in zip(step.outputs, step.execute(values)):
                values[name] = value
            for name in step.release:
                del values[name]
        return values


class _Step:
    """One op of the program, with its inputs bound to value names."""

    def __init__(self, op_type: str, bindings: dict[str, list[str]], outputs: list[str], rounds: list[bool]):
        self.op_type = op_type
        self.kernel = _KERNELS[op_type]
        self.bindings = bindings
        self.outputs = outputs
        self.rounds = rounds
        self.release: list[str] = []

    def execute(self, values: dict[str, object]) -> list[object]:
        arguments = {}
        for name, names in self.bindings.items():
            if name in _VARIADIC.get(self.op_type, ()):
                arguments[name] = [values[value] for value in names]
            else:
                (value,) = names
                arguments[name] = values[value]
        try:
            result = self.kernel(**arguments)
        except NotImplementedError as error:
            raise UnsupportedOpError(self.op_type, self.outputs[0], str(error)) from None
        results = list(result) if isinstance(result, tuple) else [result]
        return [_round_fp16(value) if rounds else value for value, rounds in zip(results, self.rounds)]


# ---------------------------------------------------------------------------------------------
# Reading the package


def _quiet_coremltools() -> None:
    """Import coremltools once with its start-up warnings (untested versions, no native runtime
    off macOS) kept off the terminal, because they do not apply to this runtime."""
    if "coremltools" not in sys.modules:
        from mobile_export._tf import captured_output

        with captured_output(None):
            import coremltools  # noqa: F401


def _read_spec(path: Path):
    _quiet_coremltools()
    from coremltools.proto import Model_pb2

    if not path.is_dir():
        raise CoreMLPackageError(f"Core ML package {path} is not a folder; pass the .mlpackage folder.")
    model_file = path / _ROOT_MODEL
    manifest = path / "Manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text())
        root = entries.get("itemInfoEntries", {}).get(entries.get("rootModelIdentifier"), {})
        if "path" in root:
            model_file = path / "Data" / root["path"]
    if not model_file.is_file():
        raise CoreMLPackageError(f"Core ML package {path} has no model spec at {model_file}; is the package complete?")
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    return spec, model_file


def _describe_inputs(spec, function, path: Path) -> dict[str, dict]:
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2

    features = list(spec.description.input)
    if len(features) != 1:
        raise CoreMLPackageError(
            f"{path} has inputs {[feature.name for feature in features]}; this runtime feeds exactly one image."
        )
    (feature,) = features
    program_inputs = {value.name: value.type for value in function.inputs}
    if feature.name not in program_inputs:
        raise CoreMLPackageError(f"{path}: input {feature.name!r} is not an input of the program's main function.")
    tensor_type = program_inputs[feature.name].tensorType
    shape = []
    for dimension in tensor_type.dimensions:
        if dimension.WhichOneof("dimension") != "constant":
            raise CoreMLPackageError(f"{path}: input {feature.name!r} has a flexible shape; export a fixed input size.")
        shape.append(dimension.constant.size)
    dtype = {MIL_pb2.FLOAT32: "float32", MIL_pb2.FLOAT16: "float16"}.get(tensor_type.dataType)
    if dtype is None:
        raise CoreMLPackageError(
            f"{path}: input {feature.name!r} has dtype {MIL_pb2.DataType.Name(tensor_type.dataType)}; "
            "only float32 and float16 inputs are fed."
        )

    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        color = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(feature.type.imageType.colorSpace)
        if color not in ("RGB", "BGR"):
            raise CoreMLPackageError(
                f"{path}: image input {feature.name!r} is {color}; only RGB and BGR images are fed."
            )
        height, width, layout = feature.type.imageType.height, feature.type.imageType.width, "NCHW"
        kind = "image"
    elif kind == "multiArrayType" and len(shape) == 4 and shape[0] == 1 and 3 in (shape[1], shape[3]):
        color = "RGB"
        layout = "NHWC" if shape[3] == 3 else "NCHW"
        height, width = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
        kind = "tensor"
    else:
        raise CoreMLPackageError(
            f"{path}: input {feature.name!r} is a {kind} of shape {shape}; this runtime feeds an image or a "
            "[1, H, W, 3] / [1, 3, H, W] tensor."
        )
    return {
        feature.name: {
            "kind": kind,
            "shape": shape,
            "layout": layout,
            "dtype": dtype,
            "color": color,
            "height": height,
            "width": width,
        }
    }


class _WeightFile:
    """The blob files of an ML Program's weights, read as coremltools 9 writes them.

    Layout (little-endian, MILBlob storage format version 2): a 64-byte header
    (``uint32 count, uint32 version`` then reserved). A ``blobFileValue``'s offset points to a
    64-byte metadata record: ``uint32 sentinel (0xDEADBEEF), uint32 dtype code, uint64 size in
    bytes, uint64 offset of the data, uint64 unused bits at the end (sub-byte types)``, then
    reserved. The data is the raw array in row-major order. Sub-byte types are packed from the
    least significant bit of each byte upward, with no padding between elements.
    """

    # MILBlob's BlobDataType codes, by the MIL proto's data type names.
    DTYPE_CODES = {
        "FLOAT16": 1, "FLOAT32": 2, "UINT8": 3, "INT8": 4, "INT16": 6, "UINT16": 7, "INT4": 8,
        "UINT1": 9, "UINT2": 10, "UINT4": 11, "UINT3": 12, "UINT6": 13, "INT32": 14, "UINT32": 15,
    }

    def __init__(self, model_dir: Path):
        self._model_dir = model_dir
        self._files: dict[str, bytes] = {}

    def read(self, file_name: str, offset: int, dtype_name: str, shape: list[int]) -> np.ndarray:
        path = self._resolve(file_name)
        data = self._files.get(str(path))
        if data is None:
            data = self._files[str(path)] = path.read_bytes()
        sentinel, code, size, data_offset = struct.unpack_from("<IIQQ", data, offset)
        if sentinel != _BLOB_SENTINEL:
            raise CoreMLPackageError(f"{path}: no blob metadata at offset {offset}; the weight file is damaged.")
        if code != self.DTYPE_CODES.get(dtype_name):
            raise CoreMLPackageError(
                f"{path}: the blob at offset {offset} has dtype code {code}, but the program reads it as {dtype_name}."
            )
        raw = np.frombuffer(data, np.uint8, size, data_offset)
        return _unpack(raw, dtype_name, shape, f"blob at offset {offset} of {path}")

    def _resolve(self, file_name: str) -> Path:
        prefix = "@model_path/"
        if not file_name.startswith(prefix):
            raise CoreMLPackageError(f"Weight file {file_name!r} is not under @model_path; cannot locate it.")
        path = self._model_dir / file_name[len(prefix):]
        if not path.is_file():
            raise CoreMLPackageError(f"Weight file {path} is missing from the package.")
        return path


_NUMPY_DTYPES = {
    "FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64, "BOOL": np.bool_,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
_SUB_BYTE_BITS = {"UINT1": 1, "UINT2": 2, "UINT3": 3, "UINT4": 4, "UINT6": 6, "INT4": 4}


def _unpack(raw: np.ndarray, dtype_name: str, shape: list[int], where: str) -> np.ndarray:
    """Turn raw little-endian bytes into an array of ``shape``; sub-byte values are unpacked LSB first."""
    count = math.prod(shape)
    if dtype_name in _SUB_BYTE_BITS:
        bits = _SUB_BYTE_BITS[dtype_name]
        flat = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
        values = (flat.astype(np.int32) << np.arange(bits)).sum(axis=1)
        if dtype_name == "INT4":
            values = np.where(values >= 8, values - 16, values)
            return values.astype(np.int8).reshape(shape)
        return values.astype(np.uint8).reshape(shape)
    dtype = _NUMPY_DTYPES.get(dtype_name)
    if dtype is None:
        raise CoreMLPackageError(f"{where} has dtype {dtype_name}, which this runtime cannot read.")
    dtype = np.dtype(dtype).newbyteorder("<")
    if raw.size < count * dtype.itemsize:
        raise CoreMLPackageError(
            f"{where} is truncated: {raw.size} bytes, but {count} {dtype_name} values need {count * dtype.itemsize}."
        )
    return raw[: count * dtype.itemsize].view(dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _decode_value(value, weights: _WeightFile):
    """Return a MIL ``Value``: an ndarray for tensors, ``str`` for a scalar string, a list for lists."""
    from coremltools.proto import MIL_pb2

    kind = value.type.WhichOneof("type")
    if kind == "listType":
        return [_decode_value(item, weights) for item in value.immediateValue.list.values]
    if kind != "tensorType":
        raise CoreMLPackageError(f"Constant of type {kind} is not supported by this runtime.")
    tensor_type = value.type.tensorType
    dtype_name = MIL_pb2.DataType.Name(tensor_type.dataType)
    shape = [dimension.constant.size for dimension in tensor_type.dimensions]

    if value.WhichOneof("value") == "blobFileValue":
        return weights.read(value.blobFileValue.fileName, value.blobFileValue.offset, dtype_name, shape)
    tensor = value.immediateValue.tensor
    field = tensor.WhichOneof("value")
    if field == "strings":
        strings = list(tensor.strings.values)
        return strings[0] if not shape and len(strings) == 1 else strings
    if field == "bytes":
        raw = np.frombuffer(tensor.bytes.values, np.uint8)
        return _unpack(raw, dtype_name, shape, f"immediate {dtype_name} value")
    values = {
        "floats": (tensor.floats.values, np.float32),
        "ints": (tensor.ints.values, np.int32),
        "bools": (tensor.bools.values, np.bool_),
        "longInts": (tensor.longInts.values, np.int64),
        "doubles": (tensor.doubles.values, np.float64),
    }.get(field)
    if values is None:
        raise CoreMLPackageError(f"Immediate value field {field!r} is not supported by this runtime.")
    array = np.asarray(values[0], dtype=values[1])
    if dtype_name in _NUMPY_DTYPES:
        array = array.astype(_NUMPY_DTYPES[dtype_name])
    return array.reshape(shape)


def _arguments(op) -> dict[str, list]:
    """Return an op's arguments by name, each a list of variable names (str) and inline ``Value`` protos.

    iOS 16 constexpr ops keep their tensors in attributes; later ops and iOS 18 constexpr ops bind
    them as inputs. The ``name`` attribute is left out.
    """
    arguments = {name: [value] for name, value in op.attributes.items() if name != "name"}
    for name, argument in op.inputs.items():
        arguments[name] = [
            binding.name if binding.WhichOneof("binding") == "name" else binding.value
            for binding in argument.arguments
        ]
    return arguments


def _first_output(op) -> str:
    return op.outputs[0].name if op.outputs else "<no output>"


def _round_fp16(value):
    """Round a float array to the nearest float16 (ties to even), returned as float32."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return value
    if value.size < 4096:
        # Values beyond float16's range become inf, as they do on a device computing in float16.
        with np.errstate(over="ignore"):
            return value.astype(np.float16).astype(np.float32)
    import tensorflow as tf

    # numpy converts to float16 one element at a time; TensorFlow's vectorized cast rounds the
    # same way (ties to even, subnormals kept, overflow to inf) about 4x faster.
    return tf.cast(tf.cast(value, tf.float16), tf.float32).numpy()


def _batch(arrays: list[np.ndarray]) -> np.ndarray:
    if arrays and arrays[0].ndim > 0 and arrays[0].shape[0] == 1:
        return np.concatenate(arrays, axis=0)
    return np.stack(arrays)


# ---------------------------------------------------------------------------------------------
# Kernels: one function per MIL op type, taking the op's arguments by name. Tensors are NCHW, as
# Core ML's ops define them.


def _ints(value) -> tuple[int, ...]:
    return tuple(int(item) for item in np.asarray(value).ravel())


def _conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """Convolve NCHW ``x`` with an ``(out, in / groups, kh, kw)`` weight in 2-D, through TensorFlow.

    TensorFlow's CPU kernels take NHWC, hence the transposes. They replace numpy's matmul because
    numpy's OpenBLAS with 2 threads ran a 1x1 convolution 30x slower than with 1 thread on a 2-core
    x86-64 VM at load average 6, where TensorFlow took about 3x the single thread's time.
    """
    import tensorflow as tf

    if weight.ndim != 4:
        raise NotImplementedError(f"conv with a rank-{weight.ndim} weight; only 2-D convolutions are supported")
    groups = int(groups)
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    channels = x.shape[1]
    stride = _ints(strides) if strides is not None else (1, 1)
    dilation = _ints(dilations) if dilations is not None else (1, 1)
    if max(stride) > 1 and max(dilation) > 1:
        raise NotImplementedError(f"conv with strides {stride} and dilations {dilation} together")
    top, bottom, left, right = _conv_padding(x.shape[2:], str(pad_type), pad, (kernel_h, kernel_w), stride, dilation)
    padding = [[0, 0], [top, bottom], [left, right], [0, 0]]
    nhwc = np.transpose(x, (0, 2, 3, 1))

    if groups == channels and group_channels == 1:
        # Output channel c * multiplier + k filters input channel c, as TensorFlow's depthwise filter
        # (kh, kw, channels, multiplier) orders them.
        multiplier = out_channels // channels
        kernel = weight.reshape(channels, multiplier, kernel_h, kernel_w).transpose(2, 3, 0, 1)
        out = tf.nn.depthwise_conv2d(nhwc, kernel, (1, *stride, 1), padding, dilations=dilation)
    else:
        kernel = weight.transpose(2, 3, 1, 0)  # (kh, kw, in / groups, out)
        per_group = out_channels // groups
        outputs = [
            tf.nn.conv2d(
                nhwc[..., g * group_channels : (g + 1) * group_channels],
                kernel[..., g * per_group : (g + 1) * per_group],
                stride,
                padding,
                dilations=dilation,
            )
            for g in range(groups)
        ]
        out = outputs[0] if groups == 1 else tf.concat(outputs, axis=-1)
    out = np.transpose(out.numpy(), (0, 3, 1, 2))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def _conv_padding(spatial, pad_type, pad, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """Return ``(top, bottom, left, right)`` padding for a conv's ``pad_type``."""
    if pad_type == "valid":
        return 0, 0, 0, 0
    if pad_type == "custom":
        return _ints(pad)
    if pad_type not in ("same", "same_lower"):
        raise NotImplementedError(f"conv pad_type {pad_type!r}")
    amounts = []
    for size, k, stride, dilation in zip(spatial, kernel, strides, dilations):
        effective = (k - 1) * dilation + 1
        total = max(0, stride * math.ceil(size / stride) - size + effective - stride)
        # "same" puts an odd extra pixel after, "same_lower" before.
        before = total // 2 if pad_type == "same" else (total + 1) // 2
        amounts += [before, total - before]
    return tuple(amounts)


def _pad(x, pad, mode="constant", constant_val=0.0):
    """Pad the last ``len(pad) / 2`` dimensions by ``pad = [before_1, after_1, before_2, ...]``."""
    amounts = _ints(pad)
    padded_dims = len(amounts) // 2
    widths = [(0, 0)] * (x.ndim - padded_dims) + [(amounts[2 * i], amounts[2 * i + 1]) for i in range(padded_dims)]
    mode = str(mode)
    if mode == "constant":
        # A filled array and one slice assignment: several times faster than np.pad.
        out = np.full([size + before + after for size, (before, after) in zip(x.shape, widths)], constant_val, x.dtype)
        out[tuple(slice(before, before + size) for size, (before, _) in zip(x.shape, widths))] = x
        return out
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise NotImplementedError(f"pad mode {mode!r}")


def _reduce_mean(x, axes=None, keep_dims=False):
    axis = None if axes is None else _ints(axes)
    return np.mean(x, axis=axis, keepdims=bool(keep_dims), dtype=np.float32)


def _matmul(x, y, transpose_x=False, transpose_y=False):
    if bool(transpose_x) and x.ndim > 1:
        x = np.swapaxes(x, -1, -2)
    if bool(transpose_y) and y.ndim > 1:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _linear(x, weight, bias=None):
    out = np.matmul(x, weight.T)
    return out if bias is None else out + bias


def _softmax(x, axis=-1):
    axis = int(axis)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reshape(x, shape):
    target = [x.shape[index] if size == 0 else size for index, size in enumerate(_ints(shape))]
    return np.reshape(x, target)


def _squeeze(x, axes=None):
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=_ints(axes))


def _expand_dims(x, axes):
    return np.expand_dims(x, axis=_ints(axes))


def _concat(values, axis, interleave=False):
    axis = int(axis)
    if bool(interleave):
        axis = axis % values[0].ndim
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


# NOTE: float to int casts truncate toward zero, as numpy's do; Core ML's rounding for them is unchecked.
_CAST_DTYPES = {
    "fp16": np.float32, "fp32": np.float32, "fp64": np.float32,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "int64": np.int64, "bool": np.bool_,
}


def _cast(x, dtype):
    # Float casts return float32; the op's declared fp16 output type does the rounding.
    target = _CAST_DTYPES.get(str(dtype))
    if target is None:
        raise NotImplementedError(f"cast to {dtype!r}")
    return np.asarray(x).astype(target)


def _affine_dequantize(quantized_data, zero_point, scale, axis):
    """Dequantize iOS 16 int8/uint8 weights to ``scale * (quantized_data - zero_point)``.

    ``scale`` and ``zero_point`` are scalars, or vectors along ``axis`` of ``quantized_data``.
    """
    rank = quantized_data.ndim
    axis = int(axis) % rank

    def along_axis(parameter):
        parameter = np.asarray(parameter)
        if parameter.ndim == 0:
            return parameter
        shape = [1] * rank
        shape[axis] = parameter.size
        return parameter.reshape(shape)

    centred = quantized_data.astype(np.float32) - along_axis(zero_point).astype(np.float32)
    return centred * along_axis(scale).astype(np.float32)


def _blockwise_shift_scale(data, scale, offset=None):
    """Dequantize iOS 18 blockwise weights to ``scale * (data - offset)``, each cell of ``scale`` covering one block.

    ``data.shape[d] / scale.shape[d]`` is the block size along dimension ``d``.
    """
    values = data.astype(np.float32)
    blocks = [size // cells for size, cells in zip(data.shape, scale.shape)]

    def spread(parameter):
        for axis, block in enumerate(blocks):
            if block > 1:
                parameter = np.repeat(parameter, block, axis=axis)
        return parameter.astype(np.float32)

    if offset is not None:
        values = values - spread(offset)
    return values * spread(scale)


def _lut_to_dense(indices, lut, shape=None, vector_axis=None):
    """Decompress palettized weights by looking each index up in its table.

    iOS 16 form (``shape`` given): ``indices`` is uint8 bytes packing ``log2(lut.size)``-bit
    indices from the least significant bit up, and ``lut`` is one table. iOS 18 form: ``indices``
    has the output's shape (or the shape divided by the vector size along ``vector_axis``), and
    ``lut`` has shape ``[G_1, ..., G_K, palettes, vector size]``, where table ``(g_1, ..., g_K)``
    serves the block of indices ``g_d * (n_d / G_d)`` onwards along each dimension ``d``.
    """
    if shape is not None:
        shape = _ints(shape)
        bits = int(math.log2(lut.size))
        packed = np.asarray(indices, np.uint8)
        unpacked = _unpack(packed, f"UINT{bits}", [math.prod(shape)], "constexpr_lut_to_dense indices")
        return lut[unpacked.astype(np.int64)].reshape(shape)

    rank = indices.ndim
    groups = []
    for dimension in range(rank):
        block = indices.shape[dimension] // lut.shape[dimension]
        index = np.arange(indices.shape[dimension]) // block
        groups.append(index.reshape([-1 if d == dimension else 1 for d in range(rank)]))
    vectors = lut[(*groups, indices.astype(np.int64))]  # indices' shape + [vector size]
    if lut.shape[-1] == 1:
        return vectors[..., 0]
    axis = int(vector_axis) % rank
    out_shape = list(indices.shape)
    out_shape[axis] *= lut.shape[-1]
    return np.moveaxis(vectors, -1, axis + 1).reshape(out_shape)


def _constexpr_cast(source_val, output_dtype):
    return _cast(source_val, output_dtype)


_KERNELS = {
    "add": lambda x, y: np.add(x, y),
    "sub": lambda x, y: np.subtract(x, y),
    "mul": lambda x, y: np.multiply(x, y),
    "real_div": lambda x, y: np.divide(x, y),
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "clip": lambda x, alpha, beta: np.clip(x, alpha, beta),
    "sigmoid": _sigmoid,
    "sigmoid_hard": lambda x, alpha=0.2, beta=0.5: np.clip(alpha * x + beta, 0, 1),
    "silu": lambda x: x * _sigmoid(x),
    "identity": lambda x: x,
    "conv": _conv,
    "pad": _pad,
    "reduce_mean": _reduce_mean,
    "matmul": _matmul,
    "linear": _linear,
    "softmax": _softmax,
    "transpose": lambda x, perm: np.transpose(x, _ints(perm)),
    "reshape": _reshape,
    "squeeze": _squeeze,
    "expand_dims": _expand_dims,
    "concat": _concat,
    "cast": _cast,
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_blockwise_shift_scale": _blockwise_shift_scale,
    "constexpr_lut_to_dense": _lut_to_dense,
    "constexpr_cast": _constexpr_cast,
}
_VALUE_PRESERVING_OPS = frozenset(
    {"relu", "relu6", "clip", "identity", "pad", "transpose", "reshape", "squeeze", "expand_dims", "concat"}
)
_KERNEL_PARAMETERS = {name: set(inspect.signature(kernel).parameters) for name, kernel in _KERNELS.items()}
_VARIADIC = {"concat": {"values"}}


def run_native(path: str | Path, pixels: np.ndarray) -> dict[str, np.ndarray] | None:
    """Run ``pixels`` (uint8, ``N x H x W x 3``, RGB) through Core ML's own predict, one image at a time.

    Returns None off macOS, where Core ML does not exist. Outputs are float32 arrays batched over N
    like :meth:`CoreMLProgram.run`: string outputs are left out, and a dict output (a classifier's
    probabilities) becomes an array in the order of the model's class labels.
    """
    if sys.platform != "darwin":
        return None
    import coremltools as ct
    from PIL import Image

    # NOTE: untested, because the project's tests run on Linux. It relies on coremltools 9's
    # MLModel.predict taking a PIL image for an image input and returning a classifier's probabilities as a dict.
    model = ct.models.MLModel(str(path))
    spec = model.get_spec()
    (feature,) = spec.description.input
    is_image = feature.type.WhichOneof("Type") == "imageType"
    labels = _spec_class_labels(spec)

    results: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for image in np.asarray(pixels):
        feed = Image.fromarray(image) if is_image else image[None].astype(np.float32)
        for name, value in model.predict({feature.name: feed}).items():
            if isinstance(value, dict):
                value = np.array([[value[label] for label in labels]], np.float32)
            elif isinstance(value, str):
                continue
            results[name].append(np.asarray(value, dtype=np.float32))
    return {name: _batch(arrays) for name, arrays in results.items()}


def _spec_class_labels(spec) -> list[str]:
    """Return the labels of an ML Program classifier's ``classify`` op, in the order of its probabilities."""
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        if op.type == "classify":
            (classes,) = _arguments(op)["classes"]
            return [str(label) for label in _decode_value(classes, weights=None)]
    return []
