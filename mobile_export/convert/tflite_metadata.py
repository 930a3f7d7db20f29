"""TFLite model metadata: the labels and the input contract inside the ``.tflite`` file itself.

LiteRT's support and task libraries and MediaPipe read a ``ModelMetadata`` flatbuffer stored in a
model buffer named ``TFLITE_METADATA``, and associated files (here ``labels.txt``) stored as an
uncompressed zip archive appended to the model. With both, Android code can take the labels, the
input size and the input normalization from the model alone.

Why this writes the flatbuffer itself: the ready-made writers do not install beside TensorFlow
2.21 (tflite-support 0.4.4 needs protobuf < 4; mediapipe 1.2.2's writers fail on import). The
metadata schema (``metadata_schema.fbs`` in tflite-support, file identifier ``M001``, version
1.0.0 features only) is small and stable, so the few tables used here are built with the
``flatbuffers`` runtime that TensorFlow already depends on. The model itself is edited through
TensorFlow's generated model schema (``tensorflow.lite.python.schema_py_generated``).

Field numbers below are the slot order of each table in ``metadata_schema.fbs``; a union takes two
slots (its type, then its value).
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
MIN_PARSER_VERSION = "1.0.0"

# Enum and union values of metadata_schema.fbs.
ASSOCIATED_FILE_TENSOR_AXIS_LABELS = 2
COLOR_SPACE_RGB = 1
CONTENT_FEATURE_PROPERTIES = 1
CONTENT_IMAGE_PROPERTIES = 2
PROCESS_UNIT_NORMALIZATION = 1


def _offset_vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _float_vector(builder: flatbuffers.Builder, values) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(list(values)):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def _associated_file(builder, *, name: str, description: str, file_type: int) -> int:
    name_offset = builder.CreateString(name)
    description_offset = builder.CreateString(description)
    builder.StartObject(4)  # AssociatedFile: name, description, type, locale
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description_offset, 0)
    builder.PrependInt8Slot(2, file_type, 0)
    return builder.EndObject()


def _stats(builder, *, low: float, high: float) -> int:
    maximum = _float_vector(builder, [high])
    minimum = _float_vector(builder, [low])
    builder.StartObject(2)  # Stats: max, min
    builder.PrependUOffsetTRelativeSlot(0, maximum, 0)
    builder.PrependUOffsetTRelativeSlot(1, minimum, 0)
    return builder.EndObject()


def _input_tensor(builder, *, height: int, width: int, description: str) -> int:
    builder.StartObject(2)  # ImageSize: width, height
    builder.PrependUint32Slot(0, width, 0)
    builder.PrependUint32Slot(1, height, 0)
    size = builder.EndObject()

    builder.StartObject(2)  # ImageProperties: color_space, default_size
    builder.PrependInt8Slot(0, COLOR_SPACE_RGB, 0)
    builder.PrependUOffsetTRelativeSlot(1, size, 0)
    image_properties = builder.EndObject()

    builder.StartObject(3)  # Content: content_properties_type, content_properties, range
    builder.PrependUint8Slot(0, CONTENT_IMAGE_PROPERTIES, 0)
    builder.PrependUOffsetTRelativeSlot(1, image_properties, 0)
    content = builder.EndObject()

    # The model normalizes internally and takes raw 0..255 pixels, so the out-of-graph
    # normalization is the identity: mean 0, std 1.
    mean = _float_vector(builder, [0.0])
    std = _float_vector(builder, [1.0])
    builder.StartObject(2)  # NormalizationOptions: mean, std
    builder.PrependUOffsetTRelativeSlot(0, mean, 0)
    builder.PrependUOffsetTRelativeSlot(1, std, 0)
    normalization = builder.EndObject()

    builder.StartObject(2)  # ProcessUnit: options_type, options
    builder.PrependUint8Slot(0, PROCESS_UNIT_NORMALIZATION, 0)
    builder.PrependUOffsetTRelativeSlot(1, normalization, 0)
    process_unit = builder.EndObject()
    process_units = _offset_vector(builder, [process_unit])

    stats = _stats(builder, low=0.0, high=255.0)
    return _tensor(builder, name="image", description=description, content=content,
                   process_units=process_units, stats=stats)


def _tensor(builder, *, name: str, description: str, content: int, process_units: int | None = None,
            stats: int | None = None, associated_files: int | None = None) -> int:
    name_offset = builder.CreateString(name)
    description_offset = builder.CreateString(description)
    builder.StartObject(7)  # TensorMetadata: name, description, dimension_names, content, ...
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description_offset, 0)
    builder.PrependUOffsetTRelativeSlot(3, content, 0)
    if process_units is not None:
        builder.PrependUOffsetTRelativeSlot(4, process_units, 0)
    if stats is not None:
        builder.PrependUOffsetTRelativeSlot(5, stats, 0)
    if associated_files is not None:
        builder.PrependUOffsetTRelativeSlot(6, associated_files, 0)
    return builder.EndObject()


def _output_tensor(builder, *, labels_file: str, output_kind: str) -> int:
    builder.StartObject(0)  # FeatureProperties has no fields
    features = builder.EndObject()
    builder.StartObject(3)
    builder.PrependUint8Slot(0, CONTENT_FEATURE_PROPERTIES, 0)
    builder.PrependUOffsetTRelativeSlot(1, features, 0)
    content = builder.EndObject()

    labels = _associated_file(
        builder, name=labels_file, description="Class names, one per output index.",
        file_type=ASSOCIATED_FILE_TENSOR_AXIS_LABELS,
    )
    files = _offset_vector(builder, [labels])
    stats = _stats(builder, low=0.0, high=1.0) if output_kind == "probabilities" else None
    description = (
        "Class probabilities." if output_kind == "probabilities" else "Class logits; apply softmax for probabilities."
    )
    return _tensor(builder, name="scores", description=description, content=content, stats=stats,
                   associated_files=files)


def build_metadata(*, name: str, description: str, version: str, author: str, licence: str,
                   height: int, width: int, labels_file: str, output_kind: str, input_description: str) -> bytes:
    """Return a ``ModelMetadata`` flatbuffer for a one-input, one-output image classifier."""
    builder = flatbuffers.Builder(1024)
    input_tensor = _input_tensor(builder, height=height, width=width, description=input_description)
    output_tensor = _output_tensor(builder, labels_file=labels_file, output_kind=output_kind)
    inputs = _offset_vector(builder, [input_tensor])
    outputs = _offset_vector(builder, [output_tensor])

    builder.StartObject(7)  # SubGraphMetadata: name, description, input_tensor_metadata, output_...
    builder.PrependUOffsetTRelativeSlot(2, inputs, 0)
    builder.PrependUOffsetTRelativeSlot(3, outputs, 0)
    subgraph = builder.EndObject()
    subgraphs = _offset_vector(builder, [subgraph])

    strings = {key: builder.CreateString(value) for key, value in
               {"name": name, "description": description, "version": version, "author": author,
                "license": licence, "min_parser_version": MIN_PARSER_VERSION}.items()}
    builder.StartObject(8)  # ModelMetadata
    builder.PrependUOffsetTRelativeSlot(0, strings["name"], 0)
    builder.PrependUOffsetTRelativeSlot(1, strings["description"], 0)
    builder.PrependUOffsetTRelativeSlot(2, strings["version"], 0)
    builder.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    builder.PrependUOffsetTRelativeSlot(4, strings["author"], 0)
    builder.PrependUOffsetTRelativeSlot(5, strings["license"], 0)
    builder.PrependUOffsetTRelativeSlot(7, strings["min_parser_version"], 0)
    root = builder.EndObject()
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def attach(model_content: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """Return the model with ``metadata`` in a ``TFLITE_METADATA`` buffer and ``files`` zipped after it."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_content, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()] + [entry]

    builder = flatbuffers.Builder(len(model_content) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)

    # Appending the archive in "a" mode makes its offsets count from the start of the model, which
    # is what zip readers (and the support library's metadata extractor) expect.
    stream = io.BytesIO(bytes(builder.Output()))
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return stream.getvalue()


def read_metadata_buffer(model_content: bytes) -> bytes:
    """Return the raw ``TFLITE_METADATA`` flatbuffer of a model, or raise ValueError."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == METADATA_NAME.encode():
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    raise ValueError(f"The model has no {METADATA_NAME} buffer.")


def read_associated_files(model_content: bytes) -> dict[str, bytes]:
    """Return the files zipped after the model, by name."""
    with zipfile.ZipFile(io.BytesIO(model_content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
