"""Read PyTorch checkpoint files into numpy arrays without torch and without running pickled code.

``torch.save`` writes tensors as a pickle whose tensors point, through persistent ids, at raw
storage bytes stored beside it. Two layouts exist, and :func:`load_state_dict` reads both:

* The zip format (default since torch 1.6) is a zip archive with one top folder. The folder
  contains ``data.pkl`` (the pickle) and ``data/<key>`` (the raw bytes of each storage). Recent
  torch versions also write ``byteorder`` (``little`` or ``big``), and torch reads a file
  without it as ``little``.
* The legacy format: five concatenated records. They are the pickled magic number, the pickled
  protocol version 1001, a pickled ``sys_info`` dict, the object pickle, and the pickled list of
  storage keys. Then, for each key in that order, an 8-byte little-endian element count and the
  storage's raw little-endian bytes follow.

In both, a tensor is pickled as a call to ``torch._utils._rebuild_tensor_v2(storage,
storage_offset, size, stride, requires_grad, backward_hooks, metadata)``, where ``storage`` is a
persistent id ``('storage', <storage class>, key, location, numel[, view_metadata])``.

Every pickle goes through :class:`_RestrictedUnpickler`. Its ``find_class`` maps a short
allowlist of globals (``collections.OrderedDict``, the ``torch._utils`` rebuild functions, the
storage classes, the dtype globals, ``torch.Size``) to local stand-ins that only record their
arguments, and it raises :class:`UnsafeCheckpointError` for every other global. Nothing from the
file is imported or called, and torch does not need to be installed.
"""

from __future__ import annotations

import collections
import io
import math
import operator
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_state_dict"]

# torch/serialization.py: MAGIC_NUMBER and PROTOCOL_VERSION open every legacy-format file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

_ZIP_SIGNATURE = b"PK\x03\x04"
_PICKLE_PROTO_OPCODE = 0x80
_TAR_MAGIC_OFFSET = 257

# Keys under which training scripts commonly nest the model's state dict.
_WRAPPER_KEYS = ("state_dict", "model")

# Storage class name -> numpy dtype name. torch pickles these as torch.<Name> (CPU) or
# torch.cuda.<Name> (GPU); the bytes on disk are the same for both.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}
_UNTYPED_STORAGE = "UntypedStorage"

# Quantized storages need scale and zero point from _rebuild_qtensor, which this reader rejects.
_UNSUPPORTED_STORAGES = {"QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage"}

# torch.<dtype> globals that _rebuild_tensor_v3 receives for dtypes without a storage class.
_TORCH_DTYPES = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "complex64": "complex64",
    "complex128": "complex128",
}
_UNSUPPORTED_TORCH_DTYPES = {
    "complex32",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
}


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch checkpoint: wrong format, truncated or unsupported."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle references a global outside the reader's allowlist."""


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the tensors of a PyTorch checkpoint into numpy arrays, keyed by state-dict name.

    Reads both ``torch.save`` formats (zip and legacy). If the pickled object is a dict whose
    ``"state_dict"`` or ``"model"`` entry is itself a dict, as training checkpoints store it, that
    inner dict is returned. Entries such as ``num_batches_tracked`` are kept.

    Each array is a C-contiguous copy in native byte order with the tensor's dtype and shape.
    Strides and storage offsets are applied, so a transposed or sliced tensor reads as torch
    shows it. bfloat16 tensors need the ``ml_dtypes`` package (installed with TensorFlow).

    Raises:
        UnsafeCheckpointError: the pickle references a global outside the allowlist, for
            example a pickled ``nn.Module`` or ``os.system``. Nothing was called.
        CheckpointError: the file is not a torch checkpoint, is truncated or corrupt, or stores
            a storage type, dtype or value that this reader does not support.
    """
    return _CheckpointReader(Path(path)).read()


class _StorageType:
    """Stand-in for a torch storage class such as ``torch.FloatStorage``."""

    __slots__ = ("name", "dtype_name")

    def __init__(self, name: str, dtype_name: str):
        self.name = name
        self.dtype_name = dtype_name

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD on storage class {self.name} is not allowed")


class _TorchDtype:
    """Stand-in for a ``torch.<dtype>`` global such as ``torch.uint16``."""

    __slots__ = ("name", "dtype_name")

    def __init__(self, name: str, dtype_name: str):
        self.name = name
        self.dtype_name = dtype_name

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD on torch.{self.name} is not allowed")


class _Storage:
    """One storage of a checkpoint: its dtype, element count and, once read, its raw bytes.

    A legacy-format storage view has ``base`` set to its root storage and ``base_offset`` in
    elements. ``raw`` stays None until the bytes are read.
    """

    __slots__ = ("key", "dtype_name", "numel", "base", "base_offset", "raw", "byteorder")

    def __init__(self, key: str, dtype_name: str, numel: int, byteorder: str):
        self.key = key
        self.dtype_name = dtype_name
        self.numel = numel
        self.base: _Storage | None = None
        self.base_offset = 0
        self.raw: np.ndarray | None = None
        self.byteorder = byteorder

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD on storage {self.key!r} is not allowed")


class _TensorRecord:
    """The arguments of one pickled tensor rebuild, resolved to an array after unpickling."""

    __slots__ = ("storage", "storage_offset", "size", "stride", "dtype_name")

    def __init__(self, storage: Any, storage_offset: Any, size: Any, stride: Any, dtype_name: str | None):
        self.storage = storage
        self.storage_offset = storage_offset
        self.size = size
        self.stride = stride
        self.dtype_name = dtype_name

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("BUILD on a tensor is not allowed")


def _check_tensor_metadata(metadata: Any) -> None:
    # torch stores the conjugate and negative view bits here. This reader cannot apply them
    # with certainty, so a tensor that sets either is rejected instead of read with wrong signs.
    if metadata is None or metadata == {}:
        return
    if isinstance(metadata, dict) and not any(metadata.values()):
        return
    raise CheckpointError(
        f"a tensor carries torch metadata {metadata!r} (conjugate or negative view bits), which this"
        " reader does not apply; save the tensors after tensor.resolve_conj().resolve_neg()"
    )


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRecord(storage, storage_offset, size, stride, dtype_name=None)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    _check_tensor_metadata(metadata)
    return _TensorRecord(storage, storage_offset, size, stride, dtype_name=None)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _check_tensor_metadata(metadata)
    if not isinstance(dtype, _TorchDtype):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v3 expects a torch dtype, got {type(dtype).__name__}")
    return _TensorRecord(storage, storage_offset, size, stride, dtype_name=dtype.dtype_name)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return data


class _RebuildFunction:
    """Callable stand-in for a ``torch._utils`` rebuild function.

    The wrapper has no ``__dict__`` and rejects BUILD, so a pickle cannot attach attributes to
    the module-level functions it calls.
    """

    __slots__ = ("name", "function")

    def __init__(self, name: str, function):
        self.name = name
        self.function = function

    def __call__(self, *args):
        return self.function(*args)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"BUILD on torch._utils.{self.name} is not allowed")


_REBUILD_FUNCTIONS = {
    "_rebuild_tensor": _rebuild_tensor,
    "_rebuild_tensor_v2": _rebuild_tensor_v2,
    "_rebuild_tensor_v3": _rebuild_tensor_v3,
    "_rebuild_parameter": _rebuild_parameter,
    "_rebuild_parameter_with_state": _rebuild_parameter_with_state,
}


def _allowed_global(module: str, name: str) -> Any:
    """Return a fresh stand-in for an allowlisted global, or None when it is not allowlisted.

    Fresh objects per lookup keep one file from changing what the next file resolves to.
    """
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    if (module, name) == ("torch", "Size"):
        return tuple
    if module == "torch._utils" and name in _REBUILD_FUNCTIONS:
        return _RebuildFunction(name, _REBUILD_FUNCTIONS[name])
    if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
        return _StorageType(name, _STORAGE_DTYPES[name])
    if module in ("torch", "torch.storage") and name == _UNTYPED_STORAGE:
        return _StorageType(name, "uint8")
    if module == "torch" and name in _TORCH_DTYPES:
        return _TorchDtype(name, _TORCH_DTYPES[name])
    return None


def _is_unsupported_torch_global(module: str, name: str) -> bool:
    if module in ("torch", "torch.cuda") and name in _UNSUPPORTED_STORAGES:
        return True
    return module == "torch" and name in _UNSUPPORTED_TORCH_DTYPES


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _numpy_dtype(dtype_name: str) -> np.dtype:
    if dtype_name != "bfloat16":
        return np.dtype(dtype_name)

    try:
        import ml_dtypes
    except ImportError as error:
        raise CheckpointError(
            "the checkpoint contains bfloat16 tensors, which need the ml_dtypes package;"
            " install it with: pip install ml_dtypes"
        ) from error
    return np.dtype(ml_dtypes.bfloat16)


def _as_index_tuple(value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise CheckpointError(f"tensor {field} must be a tuple, got {type(value).__name__}")
    try:
        numbers = tuple(operator.index(item) for item in value)
    except TypeError as error:
        raise CheckpointError(f"tensor {field} {value!r} contains a non-integer") from error
    if any(number < 0 for number in numbers):
        raise CheckpointError(f"tensor {field} {value!r} contains a negative value")
    return numbers


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allowlisted globals and torch storage persistent ids."""

    def __init__(self, file, reader: _CheckpointReader):
        # torch.load decodes Python 2 byte strings as UTF-8 by default, so this reader does too.
        super().__init__(file, encoding="utf-8")
        self._reader = reader

    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed_global(module, name)
        if allowed is not None:
            return allowed
        if _is_unsupported_torch_global(module, name):
            raise CheckpointError(f"unsupported storage type or dtype {module}.{name}. Supported storage types: "
                                  + ", ".join(sorted(_STORAGE_DTYPES)))
        raise UnsafeCheckpointError(
            f"rejected global {module}.{name}: only tensors, storages and OrderedDict may appear in"
            " the pickle, so nothing else is imported or called. If the file stores a whole model,"
            " save model.state_dict() with torch.save instead"
        )

    def persistent_load(self, pid: Any) -> Any:
        return self._reader.load_persistent_id(pid)


class _CheckpointReader:
    """State of one :func:`load_state_dict` call: the file, its format and its storages."""

    def __init__(self, path: Path):
        self.path = path
        self.storages: dict[str, _Storage] = {}
        self.is_legacy = False
        self.byteorder = "little"
        self.zip_archive: zipfile.ZipFile | None = None
        self.zip_prefix = ""

    def error(self, message: str) -> CheckpointError:
        return CheckpointError(_one_line(f"{self.path}: {message}"))

    def read(self) -> dict[str, np.ndarray]:
        try:
            return self._read()
        except UnsafeCheckpointError as error:
            raise UnsafeCheckpointError(_one_line(f"{self.path}: {error}")) from None
        except CheckpointError as error:
            if str(error).startswith(f"{self.path}: "):
                raise
            raise self.error(str(error)) from None

    def _read(self) -> dict[str, np.ndarray]:
        with open(self.path, "rb") as file:
            header = file.read(_TAR_MAGIC_OFFSET + 8)

        if not header:
            raise self.error("the file is empty, not a PyTorch checkpoint")
        if header.startswith(_ZIP_SIGNATURE):
            return self._read_zip()
        if header[0] == _PICKLE_PROTO_OPCODE:
            return self._read_legacy()
        if header[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar":
            raise self.error("this is the tar-based format of torch before 0.4, which this reader does not support;"
                             " re-save it with a current torch.save")
        raise self.error(f"not a PyTorch checkpoint: it starts with {header[:8]!r}, expected a zip archive"
                         " (b'PK\\x03\\x04') or a pickle (b'\\x80')")

    # Legacy format

    def _read_legacy(self) -> dict[str, np.ndarray]:
        # NOTE: the whole file is read into memory and the arrays are copied out of it. Peak
        # memory is therefore about the file size plus the returned tensors.
        content = self.path.read_bytes()
        stream = io.BytesIO(content)
        self.is_legacy = True

        magic = self._unpickle(stream, "the magic number record")
        if magic != LEGACY_MAGIC_NUMBER:
            raise self.error(f"not a PyTorch checkpoint: the first pickle is {magic!r:.80}, expected the torch"
                             f" magic number {LEGACY_MAGIC_NUMBER:#x}")
        protocol = self._unpickle(stream, "the protocol version record")
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise self.error(f"unsupported legacy protocol version {protocol!r:.80}, expected {LEGACY_PROTOCOL_VERSION}")
        self._unpickle(stream, "the sys_info record")
        result = self._unpickle(stream, "the object pickle")
        storage_keys = self._unpickle(stream, "the storage key list")
        if not isinstance(storage_keys, list):
            raise self.error(f"the storage key list is a {type(storage_keys).__name__}, expected a list")

        self._attach_legacy_storage_bytes(content, stream.tell(), storage_keys)
        return self._resolve_state_dict(result)

    def _attach_legacy_storage_bytes(self, content: bytes, offset: int, storage_keys: list) -> None:
        buffer = np.frombuffer(content, dtype=np.uint8)
        for key in storage_keys:
            storage = self.storages.get(str(key))
            if storage is None or storage.base is not None:
                raise self.error(f"the storage key list names {key!r}, which no tensor in the pickle refers to")

            if offset + 8 > len(content):
                raise self.error(f"the file is truncated: it ends at byte {len(content)} before the element"
                                 f" count of storage {key!r}")
            count = int.from_bytes(content[offset:offset + 8], "little")
            offset += 8
            if count != storage.numel:
                raise self.error(f"storage {key!r} contains {count} elements on disk, but the pickle declares"
                                 f" {storage.numel}. The file is corrupt")

            nbytes = count * _numpy_dtype(storage.dtype_name).itemsize
            if offset + nbytes > len(content):
                raise self.error(f"the file is truncated: storage {key!r} needs {nbytes} bytes at offset"
                                 f" {offset}, but the file ends at byte {len(content)}")
            storage.raw = buffer[offset:offset + nbytes]
            offset += nbytes

    # Zip format

    def _read_zip(self) -> dict[str, np.ndarray]:
        try:
            archive = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as error:
            raise self.error(f"the zip archive is truncated or corrupt ({error})") from None

        with archive:
            self.zip_archive = archive
            names = archive.namelist()
            pickle_names = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
            if any(name.endswith("/constants.pkl") for name in names):
                raise self.error("this is a TorchScript archive from torch.jit.save; load it in PyTorch and save"
                                 " model.state_dict() with torch.save")
            if len(pickle_names) != 1:
                raise self.error(f"a torch.save zip archive contains one <folder>/data.pkl record, found"
                                 f" {len(pickle_names)}; this zip file is not a PyTorch checkpoint")
            self.zip_prefix = pickle_names[0][: -len("data.pkl")]

            byteorder_name = self.zip_prefix + "byteorder"
            if byteorder_name in names:
                byteorder = self._read_zip_record(byteorder_name).decode("ascii", errors="replace")
                if byteorder not in ("little", "big"):
                    raise self.error(f"the byteorder record is {byteorder!r:.40}, expected 'little' or 'big'")
                self.byteorder = byteorder

            data_pickle = self._read_zip_record(pickle_names[0])
            result = self._unpickle(io.BytesIO(data_pickle), "data.pkl")
            return self._resolve_state_dict(result)

    def _read_zip_record(self, name: str, expected_size: int | None = None) -> bytes:
        assert self.zip_archive is not None
        try:
            info = self.zip_archive.getinfo(name)
        except KeyError:
            raise self.error(f"the zip archive has no record {name!r}; the file is truncated or corrupt") from None
        # Checking the declared size first keeps a corrupt archive from inflating a huge record.
        if expected_size is not None and info.file_size != expected_size:
            raise self.error(f"record {name!r} contains {info.file_size} bytes, but the pickle declares"
                             f" {expected_size}. The file is corrupt")
        try:
            return self.zip_archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise self.error(f"cannot read record {name!r}: {error}; the file is truncated or corrupt") from None

    # Unpickling

    def _unpickle(self, stream: io.BytesIO, record_name: str) -> Any:
        unpickler = _RestrictedUnpickler(stream, self)
        try:
            return unpickler.load()
        except CheckpointError:
            raise
        except EOFError:
            raise self.error(f"the file is truncated: {record_name} ends early") from None
        except (pickle.UnpicklingError, ValueError, TypeError, LookupError, AttributeError, OverflowError) as error:
            raise self.error(f"{record_name} is truncated or corrupt ({type(error).__name__}: {error})") from None

    def load_persistent_id(self, pid: Any) -> _Storage:
        """Return the storage a persistent id names, creating it on first use."""
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"persistent id {pid!r:.80} is not a tuple")
        typename = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if typename != "storage":
            raise CheckpointError(f"unsupported persistent id type {typename!r:.40}; only 'storage' is read")

        expected_length = 6 if self.is_legacy else 5
        if len(pid) != expected_length:
            raise pickle.UnpicklingError(f"storage persistent id has {len(pid)} fields, expected {expected_length}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage persistent id names {storage_type!r:.80}, not a storage class")
        # NOTE: the location ('cpu', 'cuda:0', ...) is ignored; every storage is read into host memory.
        key = str(key)
        numel = operator.index(numel)
        if numel < 0:
            raise pickle.UnpicklingError(f"storage {key!r} declares a negative size {numel}")

        storage = self._storage_for_key(key, storage_type.dtype_name, numel)
        view_metadata = pid[5] if self.is_legacy else None
        if view_metadata is None:
            return storage
        return self._legacy_storage_view(storage, view_metadata)

    def _storage_for_key(self, key: str, dtype_name: str, numel: int) -> _Storage:
        storage = self.storages.get(key)
        if storage is None:
            storage = _Storage(key, dtype_name, numel, self.byteorder)
            self.storages[key] = storage
        elif storage.dtype_name != dtype_name or storage.numel != numel:
            raise CheckpointError(f"storage {key!r} is declared as both {storage.numel} x {storage.dtype_name}"
                                  f" and {numel} x {dtype_name}; the file is corrupt")
        return storage

    def _legacy_storage_view(self, root: _Storage, view_metadata: Any) -> _Storage:
        # The old serialization code could pickle a slice of a storage as (view_key, offset, size),
        # with offset and size counted in elements of the root storage.
        if not isinstance(view_metadata, tuple) or len(view_metadata) != 3:
            raise pickle.UnpicklingError(f"storage view metadata {view_metadata!r:.80} is not a 3-tuple")
        view_key, offset, size = str(view_metadata[0]), operator.index(view_metadata[1]), operator.index(view_metadata[2])
        if offset < 0 or size < 0 or offset + size > root.numel:
            raise CheckpointError(f"storage view {view_key!r} covers elements {offset}..{offset + size} of"
                                  f" storage {root.key!r}, which has {root.numel}")

        view = self.storages.get(view_key)
        if view is None:
            view = _Storage(view_key, root.dtype_name, size, root.byteorder)
            view.base = root
            view.base_offset = offset
            self.storages[view_key] = view
        return view

    # Arrays

    def _resolve_state_dict(self, result: Any) -> dict[str, np.ndarray]:
        if not isinstance(result, dict):
            raise self.error(f"the checkpoint contains a {type(result).__name__}, expected a dict of tensors")
        for wrapper_key in _WRAPPER_KEYS:
            if isinstance(result.get(wrapper_key), dict):
                result = result[wrapper_key]
                break

        state_dict: dict[str, np.ndarray] = {}
        for name, value in result.items():
            if not isinstance(name, str):
                raise self.error(f"state dict key {name!r:.80} is a {type(name).__name__}, expected str")
            if not isinstance(value, _TensorRecord):
                raise self.error(f"state dict entry {name!r} is a {type(value).__name__}, not a tensor")
            state_dict[name] = self._tensor_array(name, value)
        return state_dict

    def _storage_bytes(self, storage: _Storage) -> np.ndarray:
        if storage.base is not None:
            root_bytes = self._storage_bytes(storage.base)
            itemsize = _numpy_dtype(storage.dtype_name).itemsize
            start = storage.base_offset * itemsize
            return root_bytes[start:start + storage.numel * itemsize]

        if storage.raw is None:
            if self.zip_archive is None:
                raise self.error(f"storage {storage.key!r} is missing from the storage key list")
            nbytes = storage.numel * _numpy_dtype(storage.dtype_name).itemsize
            record = self._read_zip_record(f"{self.zip_prefix}data/{storage.key}", expected_size=nbytes)
            storage.raw = np.frombuffer(record, dtype=np.uint8)
        return storage.raw

    def _tensor_array(self, name: str, record: _TensorRecord) -> np.ndarray:
        """Copy one tensor out of its storage, honouring dtype, size, stride and storage offset."""
        if not isinstance(record.storage, _Storage):
            raise self.error(f"tensor {name!r} refers to a {type(record.storage).__name__}, not a storage")
        storage = record.storage
        dtype = _numpy_dtype(record.dtype_name or storage.dtype_name)

        try:
            size = _as_index_tuple(record.size, "size")
            stride = _as_index_tuple(record.stride, "stride")
            offset = operator.index(record.storage_offset)
        except (CheckpointError, TypeError) as error:
            raise self.error(f"tensor {name!r}: {error}") from None
        if len(size) != len(stride):
            raise self.error(f"tensor {name!r} has size {size} but stride {stride}, of a different length")
        if offset < 0:
            raise self.error(f"tensor {name!r} has a negative storage offset {offset}")

        raw = self._storage_bytes(storage)
        if len(raw) % dtype.itemsize:
            raise self.error(f"tensor {name!r}: storage {storage.key!r} contains {len(raw)} bytes, not a whole"
                             f" number of {dtype} elements")
        elements = raw.view(dtype)
        if math.prod(size) == 0:
            return np.zeros(size, dtype=dtype)

        last_index = offset + sum((extent - 1) * step for extent, step in zip(size, stride))
        if last_index >= len(elements):
            raise self.error(f"tensor {name!r} with size {size}, stride {stride} and offset {offset} reads"
                             f" element {last_index}, but storage {storage.key!r} has {len(elements)}")

        view = np.lib.stride_tricks.as_strided(
            elements[offset:],
            shape=size,
            strides=tuple(step * dtype.itemsize for step in stride),
            writeable=False,
        )
        array = view.copy(order="C")
        if storage.byteorder != sys.byteorder and dtype.itemsize > 1:
            array.byteswap(inplace=True)
        return array
