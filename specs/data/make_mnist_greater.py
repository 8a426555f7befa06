"""Write the reference table of an image column: MNIST digits as PNG files beside a number per row.

Each row of ``mnist_greater.csv`` names a PNG of one of the first ``COUNT`` digits of the MNIST training set
embedded in specforge (``specforge/data/mnist``), holds a number ``n`` from 0 to 9 drawn with a fixed seed, and
the target ``greater``: ``yes`` when the digit is greater than ``n``, else ``no``.  Neither input alone tells
the answer, so a model needs both.  The script is deterministic; run it from anywhere:

    python specs/data/make_mnist_greater.py
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from specforge.data.mnist import MNIST_DIR, read_mnist

COUNT = 4000
SEED = 0
HERE = Path(__file__).resolve().parent
FOLDER = "mnist_greater"


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    arrays, _ = read_mnist(MNIST_DIR)
    images, digits = arrays["train_images"][:COUNT], arrays["train_labels"][:COUNT]
    numbers = np.random.default_rng(SEED).integers(0, 10, size=COUNT)
    (HERE / FOLDER).mkdir(exist_ok=True)
    with open(HERE / f"{FOLDER}.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["image", "n", "greater"])
        for index, (pixels, digit, number) in enumerate(zip(images, digits, numbers, strict=True)):
            name = f"{FOLDER}/{index:04d}.png"
            (HERE / name).write_bytes(png(pixels))
            writer.writerow([name, int(number), "yes" if digit > number else "no"])


if __name__ == "__main__":
    main()
