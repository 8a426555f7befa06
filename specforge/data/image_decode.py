"""Image files decoded with Pillow into the uint8 pixels of a model input's shape: converted to its channels,
resized to its height and width.  Image folders, a table's image column, prediction inputs and served uploads
all decode through here.

Pillow is imported when an image is read, so that commands which never read one start fast.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import read_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def image_mode(input_shape: tuple[int, ...]) -> tuple[str, tuple[int, int]]:
    """Pillow's mode and the (width, height) an image must have to fit ``input_shape``."""
    channels = input_shape[2] if len(input_shape) == 3 else 1
    if len(input_shape) not in (2, 3) or channels not in _MODES:
        raise DataError(
            f"images cannot be converted to model.input_shape {list(input_shape)}; "
            "use [height, width] or [height, width, channels] with 1, 3 or 4 channels",
            path="model.input_shape",
        )
    return _MODES[channels], (input_shape[1], input_shape[0])


class ImageTooLarge(DataError):
    """An image of more pixels than Pillow's decompression-bomb bound, refused before it is decoded."""


def decode_image(data: bytes, input_shape: tuple[int, ...], file: str) -> np.ndarray:
    """Encoded image bytes as uint8 of ``input_shape``: converted to its channels, resized to its size.

    An image of more pixels than Pillow's decompression-bomb bound (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485
    by default: about 9459 x 9459) is refused before it is decoded; Pillow's warning for it is an error here."""

    from PIL import Image, UnidentifiedImageError

    mode, size = image_mode(input_shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image = image.convert(mode)
                if image.size != size:
                    image = image.resize(size, Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(
            f"the image has more than {Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's guard against "
            f"decompression bombs); scale it down below that, e.g. to the model's "
            f"{size[0]}x{size[1]}",
            file=file,
        ) from None
    except UnidentifiedImageError as error:
        raise DataError("not an image file Pillow can read; use PNG or JPEG files", file=file) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot read the image ({error}); use PNG or JPEG files", file=file) from error
    return pixels.reshape(input_shape)


def read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image file as uint8 of ``input_shape`` (the same conversion as image folders)."""
    return decode_image(read_bytes(path), input_shape, str(path))
