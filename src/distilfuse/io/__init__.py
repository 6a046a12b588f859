"""Image I/O: decoding, scaling, colour handling, pairing by stem, atomic writing."""

from distilfuse.io.atomic import atomic_write, describe_os_error, remove_stale_partials
from distilfuse.io.colour import luma, rgb_to_ycbcr, ycbcr_to_rgb
from distilfuse.io.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageReadError,
    ImageWriteError,
    from_unit,
    is_gray,
    read_image,
    to_unit,
    write_image,
)
from distilfuse.io.pairing import find_modality_dirs, list_images, pair_by_stem

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "ImageWriteError",
    "atomic_write",
    "describe_os_error",
    "find_modality_dirs",
    "from_unit",
    "is_gray",
    "list_images",
    "luma",
    "pair_by_stem",
    "read_image",
    "remove_stale_partials",
    "rgb_to_ycbcr",
    "to_unit",
    "write_image",
    "ycbcr_to_rgb",
]
