"""Distil a MobileNetV3 from the real torchvision MobileNetV2 on augmented real photos.

ImageNet weights for V3 cannot be had offline, and random weights have no realistic activation
statistics, so int8 tests of V3 on them would measure little. This script trains a V3 student to copy the
V2 teacher's outputs on a few thousand augmented crops of the bundled real photos. The result is a
test fixture with trained BatchNorm statistics and logits on the teacher's scale. It is NOT an
ImageNet classifier: it has seen about two dozen photos, never ImageNet.

Steps, all from one seed:
1. Draw ``--images`` augmented 224x224 inputs from the photo pool: a random resized crop, a
   horizontal flip, colour jitter, and for some inputs a blend (mixup) or a pasted rectangle
   (cutmix) of a second photo. ``--held-out`` more inputs come from a second random stream.
2. Run the teacher once over every input, in batches, and keep its logits.
3. Train the student with Adam on ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``
   plus a small MSE on the logits, BatchNorm in training mode. After each epoch, measure top-1
   agreement with the teacher on the validation photos (standard centre crop) and on the held-out
   inputs. Stop when their sum has not improved for ``--patience`` epochs, or after
   ``--max-minutes``.
4. Keep the epoch with the best summed agreement and write it as a float16 mobile-export
   checkpoint.

The validation photos are in the training pool, so agreement on them measures unseen views of
seen photos. The held-out augmented inputs are the measure of generalization.

The fixtures in tests/data came from these commands, with TensorFlow 2.21 and Keras 3.15 on 2
shared CPU cores (25 and 50 minutes):
    nice -n 10 python benchmarks/distil_v3.py --arch mobilenet_v3_small \
        --out tests/data/v3_small_distilled.npz
    nice -n 19 python benchmarks/distil_v3.py --arch mobilenet_v3_large --alpha 0.75 \
        --max-epochs 12 --max-minutes 80 --patience 4 --out tests/data/v3_large_075_distilled.npz
Each run also writes its per-epoch history next to the checkpoint (``.json``). The time limit
makes a slow machine stop at an earlier epoch, and so give other weights; raise ``--max-minutes``
to reproduce a fixture.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 224
# One photo outside the bundled folders: scikit-image's microaneurysms.png, a 102x102 CC0 retina
# crop. The other real photos that scikit-image, matplotlib and scikit-learn ship are already
# bundled. The rest of their image files are drawings or renderings, or state no licence.
EXTRA_SKIMAGE_PHOTOS = ("microaneurysms.png",)


def load_pool() -> tuple[list[np.ndarray], list[str]]:
    """Read every training photo as full-size uint8 RGB."""
    import skimage

    from mobile_export.data import bundled_photos, list_images, load_rgb

    paths = [path for split in ("calibration", "validation") for path in list_images(bundled_photos(split))]
    paths += [Path(skimage.__file__).parent / "data" / name for name in EXTRA_SKIMAGE_PHOTOS]
    return [load_rgb(path) for path in paths], [path.name for path in paths]


def random_resized_crop(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    """Crop 10-100% of the photo's area at an aspect ratio in 3/4..4/3, resized to SIZE."""
    height, width = photo.shape[:2]
    for _ in range(10):
        area = height * width * rng.uniform(0.1, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        crop_w = int(round(np.sqrt(area * aspect)))
        crop_h = int(round(np.sqrt(area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            break
    else:
        crop_h = crop_w = min(height, width)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    return np.asarray(crop.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)


def jitter_colour(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """Scale brightness, contrast and saturation by random factors; turn 10% of inputs grey."""
    pixels = pixels * rng.uniform(0.6, 1.4)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.6, 1.4) + mean
    grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturation = 0.0 if rng.random() < 0.1 else rng.uniform(0.5, 1.5)
    pixels = (pixels - grey[..., None]) * saturation + grey[..., None]
    return np.clip(pixels, 0, 255)


def augmented_view(rng: np.random.Generator, pool: list[np.ndarray]) -> np.ndarray:
    view = random_resized_crop(rng, pool[rng.integers(len(pool))])
    if rng.random() < 0.5:
        view = view[:, ::-1]
    view = jitter_colour(rng, view)
    return view


def make_inputs(rng: np.random.Generator, pool: list[np.ndarray], count: int) -> np.ndarray:
    """Draw ``count`` augmented inputs; a third blend two photos and a third paste one into another."""
    inputs = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    for index in range(count):
        view = augmented_view(rng, pool)
        mix = rng.random()
        if mix < 1 / 3:
            weight = rng.uniform(0.3, 0.7)
            view = weight * view + (1 - weight) * augmented_view(rng, pool)
        elif mix < 2 / 3:
            other = augmented_view(rng, pool)
            side = int(SIZE * np.sqrt(rng.uniform(0.1, 0.5)))
            top, left = rng.integers(0, SIZE - side + 1, size=2)
            view[top : top + side, left : left + side] = other[top : top + side, left : left + side]
        inputs[index] = np.round(view).astype(np.uint8)
    return inputs


def predict(model, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    outputs = [
        np.asarray(model(inputs[start : start + batch_size].astype(np.float32), training=False))
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(outputs)


def agreement(model, inputs: np.ndarray, teacher_logits: np.ndarray) -> float:
    return float(np.mean(predict(model, inputs).argmax(1) == teacher_logits.argmax(1)))


def build_teacher():
    from mobile_export.models import registry
    from mobile_export.models.weights import load_weights, resolve_weights

    spec = resolve_weights("mobilenet_v2", "torchvision-imagenet")
    teacher = registry.get("mobilenet_v2").build(alpha=1.0, input_shape=(SIZE, SIZE), conventions=spec.conventions)
    load_weights(teacher, spec)
    return teacher, spec


def make_train_step(student, learning_rate, temperature: float, mse_weight: float):
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)

    @tf.function
    def step(pixels, teacher_logits):
        with tf.GradientTape() as tape:
            logits = student(pixels, training=True)
            soft_targets = tf.nn.softmax(teacher_logits / temperature)
            log_student = tf.nn.log_softmax(logits / temperature)
            kl = tf.reduce_mean(
                tf.reduce_sum(soft_targets * (tf.math.log(soft_targets + 1e-12) - log_student), axis=1)
            )
            mse = tf.reduce_mean(tf.square(logits - teacher_logits))
            loss = temperature**2 * kl + mse_weight * mse
        gradients = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(gradients, student.trainable_variables))
        return loss, kl, mse

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=("mobilenet_v3_small", "mobilenet_v3_large"), default="mobilenet_v3_small")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.npz)")
    parser.add_argument("--images", type=int, default=3200, help="augmented training inputs")
    parser.add_argument("--held-out", type=int, default=256, help="augmented inputs kept out of training")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--mse-weight", type=float, default=0.1, help="weight of the MSE between logits")
    parser.add_argument("--max-epochs", type=int, default=10, help="epochs; the learning rate decays to 0 over them")
    parser.add_argument("--max-minutes", type=float, default=40.0, help="time limit from the start, minutes")
    parser.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--teacher-cache", type=Path, help="file (.npz) to keep the teacher's logits in, reused by a run with the same inputs"
    )
    args = parser.parse_args(argv)

    from mobile_export._tf import import_tensorflow

    tf = import_tensorflow()
    import keras

    from mobile_export.contract import InputContract
    from mobile_export.data import bundled_photos, load_folder
    from mobile_export.models import registry
    from mobile_export.models.weights import save_checkpoint

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    pool, names = load_pool()
    log(f"{len(pool)} photos: {', '.join(names)}")
    train_inputs = make_inputs(np.random.default_rng([args.seed, 1]), pool, args.images)
    held_out_inputs = make_inputs(np.random.default_rng([args.seed, 2]), pool, args.held_out)
    validation = load_folder(bundled_photos("validation"), InputContract(height=SIZE, width=SIZE)).pixels
    log(f"made {len(train_inputs)} training and {len(held_out_inputs)} held-out inputs")

    teacher, teacher_spec = build_teacher()
    cache_key = np.array([args.seed, args.images, args.held_out])
    if args.teacher_cache is not None and args.teacher_cache.is_file():
        with np.load(args.teacher_cache) as cached:
            if not np.array_equal(cached["key"], cache_key):
                parser.error(f"{args.teacher_cache} holds logits for other inputs; delete it or pass another path")
            train_targets, held_out_targets = cached["train"], cached["held_out"]
    else:
        train_targets = predict(teacher, train_inputs)
        held_out_targets = predict(teacher, held_out_inputs)
        if args.teacher_cache is not None:
            np.savez(args.teacher_cache, key=cache_key, train=train_targets, held_out=held_out_targets)
    validation_targets = predict(teacher, validation)
    distinct = len(np.unique(train_targets.argmax(1)))
    log(f"teacher logits computed; {distinct} distinct teacher top-1 classes among the training inputs")
    del teacher

    student = registry.get(args.arch).build(
        alpha=args.alpha, input_shape=(SIZE, SIZE), conventions=teacher_spec.conventions
    )
    steps_per_epoch = len(train_inputs) // args.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps_per_epoch * args.max_epochs)
    train_step = make_train_step(student, schedule, args.temperature, args.mse_weight)
    order_rng = np.random.default_rng([args.seed, 3])

    history = []
    best = None
    for epoch in range(1, args.max_epochs + 1):
        order = order_rng.permutation(len(train_inputs))
        losses = []
        for batch in range(steps_per_epoch):
            rows = np.sort(order[batch * args.batch_size : (batch + 1) * args.batch_size])
            loss, kl, mse = train_step(
                tf.constant(train_inputs[rows], dtype=tf.float32), tf.constant(train_targets[rows])
            )
            losses.append((float(loss), float(kl), float(mse)))
        loss, kl, mse = np.mean(losses, axis=0)
        record = {
            "epoch": epoch,
            "loss": round(float(loss), 4),
            "kl": round(float(kl), 4),
            "mse": round(float(mse), 3),
            "validation_agreement": agreement(student, validation, validation_targets),
            "held_out_agreement": agreement(student, held_out_inputs, held_out_targets),
            "minutes": round((time.perf_counter() - started) / 60, 1),
        }
        history.append(record)
        log(
            f"epoch {epoch}: loss {loss:.3f} (KL {kl:.3f}, MSE {mse:.2f}), top-1 agreement "
            f"{record['validation_agreement']:.0%} on validation photos, "
            f"{record['held_out_agreement']:.0%} on held-out inputs"
        )
        score = record["validation_agreement"] + record["held_out_agreement"]
        if best is None or score > best[0]:
            best = (score, epoch, [layer.get_weights() for layer in student.layers])
        if epoch - best[1] >= args.patience:
            log(f"no improvement for {args.patience} epochs; stopping")
            break
        if record["minutes"] >= args.max_minutes:
            log(f"time limit of {args.max_minutes:g} minutes reached; stopping")
            break

    for layer, weights in zip(student.layers, best[2]):
        layer.set_weights(weights)
    best_record = history[best[1] - 1]
    description = (
        f"{args.arch} alpha {args.alpha:g} distilled from torchvision's ImageNet MobileNetV2 on "
        f"{args.images} augmented crops of {len(pool)} real photos by benchmarks/distil_v3.py "
        f"(seed {args.seed}, epoch {best[1]}); a test fixture, NOT an ImageNet classifier"
    )
    save_checkpoint(
        student,
        args.out,
        arch=args.arch,
        alpha=args.alpha,
        conventions=teacher_spec.conventions,
        description=description,
        dtype=np.float16,
    )
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) from epoch {best[1]}: {best_record}")

    summary = {
        "arch": args.arch,
        "alpha": args.alpha,
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "photos": names,
        "distinct_teacher_classes": distinct,
        "chosen_epoch": best[1],
        "history": history,
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
