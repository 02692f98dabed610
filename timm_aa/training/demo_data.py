"""The demo dataset: scikit-learn's handwritten digits (real scans shipped with the package, no download).

Each 8x8 digit is upscaled to 32x32 and pasted in the middle of a 48x48 black canvas, so that a
40x40 crop can move by up to 8 pixels and still hold the whole digit: the shift-consistency protocol
then has room to shift, and a ResNet's five downsamplings still leave signal.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..data import ImageSource
from .data import DataSplits
from .demo_recipe import CANVAS, DIGIT


def _digit_image(pixels: np.ndarray) -> Image.Image:
    small = Image.fromarray((pixels * (255.0 / 16.0)).astype(np.uint8))
    canvas = Image.new("L", (CANVAS, CANVAS))
    offset = (CANVAS - DIGIT) // 2
    canvas.paste(small.resize((DIGIT, DIGIT), Image.BILINEAR), (offset, offset))
    return canvas.convert("RGB")


def save_image_folder(source: ImageSource, root: str) -> str:
    """Write a labelled source as an ImageFolder (``root/<class>/<id>.png``), e.g. for ``scripts/evaluate.py``."""
    for i, label in enumerate(source.labels):
        folder = os.path.join(root, source.classes[label])
        os.makedirs(folder, exist_ok=True)
        source.load(i).save(os.path.join(folder, f"{i:05d}.png"))
    return root


def digits_splits(val_fraction: float = 0.25, seed: int = 0) -> DataSplits:
    """Train/val splits of the digits (stratified, fixed by ``seed``), as in-memory image sources.

    Example:
        >>> splits = digits_splits()
        >>> len(splits.train), len(splits.val), splits.classes[:3]
        (1347, 450, ['0', '1', '2'])
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train_idx, val_idx = train_test_split(index, test_size=val_fraction, stratify=digits.target, random_state=seed)
    classes = [str(c) for c in range(10)]

    def source(name: str, idx: np.ndarray) -> ImageSource:
        images = [digits.images[i] for i in idx]
        return ImageSource(f"sklearn-digits/{name}", [f"digits[{i}]" for i in idx],
                           [int(digits.target[i]) for i in idx], classes, lambda i: _digit_image(images[i]))

    return DataSplits(source("train", train_idx), source("val", val_idx), classes)
