"""16-bit images (issue 14, point 6): PIL's RGB conversion clips 16-bit grayscale to nearly all white; every data
path (training, evaluation, Hugging Face datasets) must scale it to 8 bits instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from timm_aa.consistency.dataset import ResizedImages
from timm_aa.data import open_image_folder, open_image_source
from timm_aa.training.data import TransformedImages


@pytest.fixture
def sixteen_bit_folder(tmp_path):
    """A real 16-bit grayscale PNG (a horizontal ramp 0..65535) in an ImageFolder, and the ramp itself."""
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (48, 1))
    (tmp_path / "cls").mkdir()
    Image.fromarray(ramp).save(tmp_path / "cls" / "ramp.png")
    with Image.open(tmp_path / "cls" / "ramp.png") as check:
        assert check.mode == "I;16"  # really a 16-bit file
    return tmp_path, ramp


def _expected(ramp):
    return np.rint(ramp / 257.0).astype(np.uint8)


def test_a_16_bit_png_is_scaled_not_clipped(sixteen_bit_folder):
    folder, ramp = sixteen_bit_folder
    image = np.asarray(open_image_folder(str(folder)).load(0))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], _expected(ramp))
    assert (image == 255).mean() < 0.05  # PIL's own conversion: 99% white


def test_the_training_and_evaluation_paths_see_the_scaled_image(sixteen_bit_folder):
    folder, ramp = sixteen_bit_folder
    source = open_image_folder(str(folder))
    tensor, _, _ = TransformedImages(source, lambda im: torch.from_numpy(np.asarray(im).copy()))[0]
    np.testing.assert_array_equal(tensor[..., 0].numpy(), _expected(ramp))
    images, _, _ = ResizedImages(source, 48, ["nearest"])[0]
    assert images["nearest"].dtype == torch.uint8 and 100 < images["nearest"].float().mean() < 155  # mid-grey


def test_a_16_bit_image_in_a_hugging_face_dataset(sixteen_bit_folder, tmp_path):
    datasets = pytest.importorskip("datasets")
    folder, ramp = sixteen_bit_folder
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a"])})
    ds = datasets.Dataset.from_dict({"image": [str(folder / "cls" / "ramp.png")], "label": [0]}, features=features)
    datasets.DatasetDict({"validation": ds}).save_to_disk(str(tmp_path / "hf"))
    image = np.asarray(open_image_source(str(tmp_path / "hf")).load(0))
    np.testing.assert_array_equal(image[..., 1], _expected(ramp))
