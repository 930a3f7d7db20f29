"""Photos and labels: decoding image files, the bundled sample photos, ImageNet class names."""

from mobile_export.data.images import (
    BUNDLED_SPLITS,
    IMAGE_SUFFIXES,
    ImageError,
    ImageFolderError,
    LoadedImages,
    bundled_photos,
    list_images,
    load_folder,
    load_rgb,
)
from mobile_export.data.labels import load_imagenet_labels, read_labels, write_labels

__all__ = [
    "BUNDLED_SPLITS",
    "IMAGE_SUFFIXES",
    "ImageError",
    "ImageFolderError",
    "LoadedImages",
    "bundled_photos",
    "list_images",
    "load_folder",
    "load_imagenet_labels",
    "load_rgb",
    "read_labels",
    "write_labels",
]
