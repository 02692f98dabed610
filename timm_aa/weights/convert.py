"""Convert Zhang's released ``.pth`` files into export folders (the input of the publishing tool)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass

import torch

from ..errors import TimmAAError
from ..hub import write_export
from .pretrained import ORIGIN_URL, WEIGHTS_LICENSE, zhang_tag
from .zhang import ZHANG_ARCHS, from_zhang, unwrap_state_dict

_NAME = re.compile(r"^(?P<arch>[a-z0-9_]+?)_lpf(?P<filt>\d)(?P<ft>_finetune)?(-[0-9a-f]+)?\.pth$")


@dataclass
class ZhangCheckpoint:
    path: str
    arch: str
    filt_size: int
    finetuned: bool

    @property
    def tag(self) -> str:
        return zhang_tag(self.filt_size, self.finetuned)


def parse_checkpoint_name(path: str) -> ZhangCheckpoint:
    """Read arch, filter size and fine-tuning from Zhang's file name.

    Example:
        >>> parse_checkpoint_name('weights/resnet50_lpf4_finetune-cad66808.pth').tag
        'zhang_lpf4_ft_in1k'
    """
    match = _NAME.match(os.path.basename(path))
    if not match or match.group("arch") not in ZHANG_ARCHS:
        raise TimmAAError(f"{os.path.basename(path)!r} is not named like Zhang's checkpoints "
                          "(ARCH_lpfK[_finetune].pth)")
    return ZhangCheckpoint(path, match.group("arch"), int(match.group("filt")), bool(match.group("ft")))


def verify_against_zhang(ckpt: ZhangCheckpoint, model: torch.nn.Module, atol: float = 1e-4) -> float:
    """Max abs logit difference between our converted model and his package's model on random input."""
    import antialiased_cnns

    ref = getattr(antialiased_cnns, ckpt.arch)(filter_size=ckpt.filt_size)
    sd = unwrap_state_dict(torch.load(ckpt.path, map_location="cpu", weights_only=True))
    ref.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = (ref.eval()(x) - model.eval()(x)).abs().max().item()
    if not diff <= atol:
        raise TimmAAError(f"{ckpt.path}: converted logits differ from antialiased_cnns by {diff:.3g} > {atol}")
    return diff


def convert_checkpoint(path: str, output_root: str, verify: bool | None = None) -> tuple[str, float | None]:
    """Convert one checkpoint into ``output_root/<model>.<tag>``; returns the folder and the verified difference.

    ``verify`` defaults to "when antialiased-cnns is installed".
    """
    ckpt = parse_checkpoint_name(path)
    model = from_zhang(path, ckpt.arch, filt_size=ckpt.filt_size)
    if verify is None:
        verify = importlib.util.find_spec("antialiased_cnns") is not None
    diff = verify_against_zhang(ckpt, model) if verify else None
    with open(path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    name = f"{ZHANG_ARCHS[ckpt.arch]}.{ckpt.tag}"
    provenance = {"source_file": os.path.basename(path), "source_sha256": sha256, "origin_url": ORIGIN_URL,
                  "license": WEIGHTS_LICENSE, "arch": ckpt.arch, "filt_size": ckpt.filt_size,
                  "finetuned": ckpt.finetuned, "verified_max_abs_logit_diff": diff}
    how = "fine-tuned from the torchvision baseline" if ckpt.finetuned else "trained from scratch"
    cfg_provenance = {"tag": ckpt.tag, "license": WEIGHTS_LICENSE, "origin_url": ORIGIN_URL,
                      "description": f"Zhang's ImageNet-1k {ckpt.arch}, filter size {ckpt.filt_size}, {how}; "
                                     "converted to timm-aa"}
    folder = write_export(model, os.path.join(output_root, name), metrics={"provenance": provenance},
                          provenance=cfg_provenance)
    return folder, diff


def find_checkpoints(path: str) -> list[str]:
    """``path`` itself, or the ``.pth`` files in the folder ``path``."""
    if os.path.isdir(path):
        found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".pth"))
        if not found:
            raise TimmAAError(f"no .pth files in {path!r}")
        return found
    if not os.path.isfile(path):
        raise TimmAAError(f"no checkpoint at {path!r}")
    return [path]
