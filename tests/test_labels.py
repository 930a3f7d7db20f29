"""ImageNet class names and labels.txt files."""

from __future__ import annotations

import pytest

from mobile_export.data import load_imagenet_labels, read_labels, write_labels


def test_imagenet_labels_count_and_known_classes():
    labels = load_imagenet_labels()

    assert len(labels) == 1000
    assert labels[0] == "tench"
    assert labels[285] == "Egyptian cat"
    assert labels[457] == "bow tie"
    assert labels[812] == "space shuttle"
    assert labels[967] == "espresso"
    assert labels[999] == "toilet tissue"


def test_imagenet_labels_are_first_synonyms():
    labels = load_imagenet_labels()

    assert all(label == label.strip() and label for label in labels)
    assert not any("," in label for label in labels)


def test_labels_round_trip(tmp_path):
    path = tmp_path / "labels.txt"
    labels = ["Egyptian cat", "café au lait", "space shuttle"]

    write_labels(path, labels)

    assert path.read_bytes() == "Egyptian cat\ncafé au lait\nspace shuttle\n".encode()
    assert read_labels(path) == labels


def test_imagenet_labels_round_trip(tmp_path):
    path = tmp_path / "labels.txt"
    labels = load_imagenet_labels()

    write_labels(path, labels)

    assert read_labels(path) == labels
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1000


def test_read_labels_tolerates_windows_files(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"\xef\xbb\xbfcat\r\ndog\r\nfox")

    assert read_labels(path) == ["cat", "dog", "fox"]


def test_read_labels_keeps_unicode_line_separator(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a\u2028b\nc\n", encoding="utf-8")

    assert read_labels(path) == ["a\u2028b", "c"]


def test_read_labels_rejects_empty_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"")

    with pytest.raises(ValueError, match="is empty") as caught:
        read_labels(path)

    assert str(path) in str(caught.value)


def test_read_labels_rejects_blank_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\n  \ndog\n", encoding="utf-8")

    with pytest.raises(ValueError, match="blank line 2"):
        read_labels(path)


def test_read_labels_rejects_trailing_blank_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\n\n", encoding="utf-8")

    with pytest.raises(ValueError, match="blank line 3"):
        read_labels(path)


def test_write_labels_rejects_plain_string(tmp_path):
    with pytest.raises(TypeError, match="sequence of class names"):
        write_labels(tmp_path / "labels.txt", "cat")


def test_write_labels_rejects_empty_list(tmp_path):
    with pytest.raises(ValueError, match="No labels"):
        write_labels(tmp_path / "labels.txt", [])


@pytest.mark.parametrize("bad_label", ["", "   ", "two\nlines", "carriage\rreturn", "line\u2028separator", "end\n"])
def test_write_labels_rejects_bad_label(tmp_path, bad_label):
    path = tmp_path / "labels.txt"

    with pytest.raises(ValueError, match="Label 1"):
        write_labels(path, ["cat", bad_label])

    assert not path.exists()
