"""Zhang's released files into export folders, the input of the publishing tool (``scripts/convert_zhang.py``).

One export folder ``<model>.<tag>`` per file, in a conversion folder held under the ownership rule
(:mod:`timm_aa.infra.ownership`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import TimmAAError
from ..infra.checkpoint import check_hash, read_zhang_checkpoint
from ..infra.ownership import Owner, claim
from ..models._zhang_releases import ORIGIN_URL, WEIGHTS_LICENSE, ZhangFile, parse_file_name, zhang_file
from .export import write_export
from .zhang import from_zhang, verify_against_zhang


class OutputExists(TimmAAError):
    """The export folder of a file exists already (it is not replaced unless asked)."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"{folder} exists; remove it, or pass overwrite=True to replace it")
        self.folder = folder


def convert_checkpoint(path: str, owner: Owner, verify: bool | None = None,
                       overwrite: bool = False) -> tuple[str, float | None]:
    """Convert one of his files into the export folder ``<model>.<tag>`` of the conversion folder ``owner`` holds;
    returns the folder and the verified logit difference (``verify`` defaults to "when antialiased-cnns is
    installed").

    A file whose SHA-256 does not match the hash prefix in its name, or that is not his format, is refused
    (``TimmAAError``); so is an export folder converted before, unless ``overwrite``, and a folder of that name
    timm-aa did not write, always.

    Example:
        >>> import tempfile
        >>> from timm_aa.infra.ownership import claim
        >>> with claim(tempfile.mkdtemp(), 'convert') as owner:
        ...     convert_checkpoint('resnet50_lpf4_finetune-cad66808.pth', owner)
        Traceback (most recent call last):
        ...
        timm_aa.infra.checkpoint.RefusedCheckpoint: resnet50_lpf4_finetune-cad66808.pth: not his format \
(torch.load(weights_only=True) cannot read it: FileNotFoundError); refused, nothing was loaded. His files are dicts \
with a 'state_dict' of tensors, saved by torch.save.
    """
    release, filt_size, finetuned, digest = parse_file_name(path)
    file = ZhangFile(release.arch, release.model, filt_size, finetuned, digest or "")  # its name's own hash prefix
    name = f"{file.model}.{file.tag}"
    if any(k.startswith(name + "/") for k in owner.marker.files) and not overwrite:
        raise OutputExists(owner.path(name))
    sha256 = check_hash(path) if os.path.isfile(path) else ""
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
    with owner.staging(name, f"the export of {os.path.basename(path)}") as staged:
        write_export(model, staged, metrics={"provenance": provenance}, provenance=cfg_provenance)
        return owner.install_dir(name, staged), diff


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
    """Convert each file into ``output_root`` (a new or empty folder, or one an earlier conversion wrote: see
    :mod:`timm_aa.infra.ownership`), yielding one :class:`Conversion` per file (user errors become its ``error``).

    Example:
        >>> import tempfile
        >>> result = next(convert_all(['/tmp/nope_lpf4.pth'], tempfile.mkdtemp() + '/out'))
        >>> result.folder, str(result.error)[:39]
        (None, "'nope_lpf4.pth' is not named like Zhang")
    """
    with claim(output_root, "convert", overwrite=overwrite) as owner:
        for path in paths:
            try:
                folder, diff = convert_checkpoint(path, owner, verify, overwrite)
                yield Conversion(path, folder, diff)
            except TimmAAError as err:
                yield Conversion(path, error=err)
