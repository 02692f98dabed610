"""Decode each image once per pass and resize/center-crop it to R x R for every interpolation in use."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..data import ImageSource


def preprocess(image, resize: int, interpolation: str) -> torch.Tensor:
    """Resize the shorter side to ``resize`` (upscaling small images), center-crop ``resize``; uint8 (3, R, R).

    Example:
        >>> from PIL import Image
        >>> preprocess(Image.new('RGB', (40, 30)), 64, 'bilinear').shape
        torch.Size([3, 64, 64])
    """
    image = TF.resize(image, resize, interpolation=InterpolationMode(interpolation), antialias=True)
    return TF.pil_to_tensor(TF.center_crop(image, [resize, resize]))


class ResizedImages(Dataset):
    """Items ``(images, label, index)``: ``images`` maps each interpolation to its uint8 (3, R, R) tensor,
    or is ``None`` when the file could not be read."""

    def __init__(self, source: ImageSource, resize: int, interpolations: list[str]) -> None:
        self.source, self.resize, self.interpolations = source, resize, sorted(set(interpolations))

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor] | None, int, int]:
        try:
            image = self.source.load(index)
        except OSError:  # ImageSource.load: every unreadable image
            return None, self.source.labels[index], index
        images = {mode: preprocess(image, self.resize, mode) for mode in self.interpolations}
        return images, self.source.labels[index], index


def collate_resized(batch: list[tuple[Any, int, int]]) -> dict[str, Any]:
    """Stack the readable items; report the indices of the unreadable ones."""
    good = [item for item in batch if item[0] is not None]
    out: dict[str, Any] = {"bad": [index for images, _, index in batch if images is None]}
    out["images"] = {k: torch.stack([g[0][k] for g in good]) for k in good[0][0]} if good else {}
    out["labels"] = torch.tensor([g[1] for g in good], dtype=torch.long)
    out["indices"] = torch.tensor([g[2] for g in good], dtype=torch.long)
    return out
