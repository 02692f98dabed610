"""Convert Zhang's released ``.pth`` files into export folders (the input of the publishing tool)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import TimmAAError
from ..hub import write_export
from .checkpoint import check_hash, read_zhang_checkpoint
from .releases import ORIGIN_URL, WEIGHTS_LICENSE, ZhangFile, parse_file_name, zhang_file
from .zhang import from_zhang


class OutputExists(TimmAAError):
    """The export folder of a file exists already (it is not replaced unless asked)."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"{folder} exists; remove it, or pass overwrite=True to replace it")
        self.folder = folder


def checkpoint_of(path: str) -> ZhangFile:
    """The release entry a file named like his describes (its own hash prefix, or ``''`` when its name has none).

    Example:
        >>> checkpoint_of('weights/resnet50_lpf4_finetune-cad66808.pth').tag
        'zhang_lpf4_ft_in1k'
    """
    release, filt_size, finetuned, digest = parse_file_name(path)
    return ZhangFile(release.arch, release.model, filt_size, finetuned, digest or "")


def verify_against_zhang(file: ZhangFile, state: dict[str, torch.Tensor], model: nn.Module,
                         atol: float = 1e-4) -> float:
    """Max abs logit difference between our converted model and his package's model with the same weights."""
    import antialiased_cnns

    ref = getattr(antialiased_cnns, file.arch)(filter_size=file.filt_size)
    ref.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = (ref.eval()(x) - model.eval()(x)).abs().max().item()
    if not diff <= atol:
        raise TimmAAError(f"converted logits differ from antialiased_cnns by {diff:.3g} > {atol}")
    return diff


def convert_checkpoint(path: str, output_root: str, verify: bool | None = None,
                       overwrite: bool = False) -> tuple[str, float | None]:
    """Convert one of his files into ``output_root/<model>.<tag>``; returns the folder and the verified logit
    difference (``verify`` defaults to "when antialiased-cnns is installed").

    A file whose SHA-256 does not match the hash prefix in its name, or that is not his format, is refused
    (``TimmAAError``); so is an existing output folder unless ``overwrite``.

    Example:
        >>> # convert_checkpoint('weights/resnet50_lpf4_finetune-cad66808.pth', 'converted/')
    """
    file = checkpoint_of(path)
    folder = os.path.join(output_root, f"{file.model}.{file.tag}")
    if os.path.exists(folder) and not overwrite:
        raise OutputExists(folder)
    sha256 = check_hash(path)
    state = read_zhang_checkpoint(path)
    model = from_zhang(state, file.arch, filt_size=file.filt_size)
    if verify is None:
        verify = importlib.util.find_spec("antialiased_cnns") is not None
    diff = verify_against_zhang(file, state, model) if verify else None
    release_file = zhang_file(file.model, file.tag)  # what he released for this architecture, filter, training
    released = release_file is not None and sha256.startswith(release_file.sha256_prefix)
    provenance = {"source_file": os.path.basename(path), "source_sha256": sha256, "released_file": released,
                  "origin_url": ORIGIN_URL, "license": WEIGHTS_LICENSE, "arch": file.arch,
                  "filt_size": file.filt_size, "finetuned": file.finetuned, "verified_max_abs_logit_diff": diff}
    how = "fine-tuned from the torchvision baseline" if file.finetuned else "trained from scratch"
    which = "his released file" if released else "a file not in his release table"
    cfg_provenance = {"tag": file.tag, "license": WEIGHTS_LICENSE, "origin_url": ORIGIN_URL,
                      "description": f"Zhang's ImageNet-1k {file.arch}, filter size {file.filt_size}, {how}; "
                                     f"converted to timm-aa from {which} {os.path.basename(path)}"}
    write_export(model, folder, metrics={"provenance": provenance}, provenance=cfg_provenance)
    return folder, diff


def find_checkpoints(path: str) -> list[str]:
    """``path`` itself, or the ``.pth`` files in the folder ``path`` (sorted).

    Example:
        >>> find_checkpoints('/nonexistent')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no checkpoint file or folder at '/nonexistent'
    """
    if os.path.isdir(path):
        found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".pth"))
        if not found:
            raise TimmAAError(f"no .pth files in {path!r}")
        return found
    if not os.path.isfile(path):
        raise TimmAAError(f"no checkpoint file or folder at {path!r}")
    return [path]


@dataclass
class Conversion:
    """The result for one file: the folder written, or the user error that stopped it."""

    path: str
    folder: str | None = None
    diff: float | None = None
    error: TimmAAError | None = None


def convert_all(paths: list[str], output_root: str, verify: bool | None = None,
                overwrite: bool = False) -> Iterator[Conversion]:
    """Convert each file, yielding one :class:`Conversion` per file (user errors become its ``error``).

    Example:
        >>> result = next(convert_all(['/tmp/nope_lpf4.pth'], '/tmp/out'))
        >>> result.folder is None, 'not named like' in str(result.error)
        (True, True)
    """
    for path in paths:
        try:
            folder, diff = convert_checkpoint(path, output_root, verify, overwrite)
            yield Conversion(path, folder, diff)
        except TimmAAError as err:
            yield Conversion(path, error=err)
