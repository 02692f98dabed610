"""Convert checkpoints of Zhang's ``antialiased-cnns`` package into our ``*_aa`` models, and his released files
into export folders (the input of the publishing tool, ``scripts/convert_zhang.py``).

His models and ours run the same layers in the same order; only the names differ (his BlurPools
are entries of ``nn.Sequential`` containers and shift their indices, ours are not) and his VGG
classifier is linear where timm's is convolutional. So the mapping pairs his tensors with ours in
registration order, checking each pair's kind (``weight``, ``bias``, ``running_mean``, ...) and
shape, and drops his blur filters (``*.filt``) after checking their size.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import timm
import torch
from torch import nn

from ..errors import TimmAAError
from ..ownership import Owner, claim
from .checkpoint import check_hash, read_zhang_checkpoint, unwrap_state_dict
from .releases import ORIGIN_URL, WEIGHTS_LICENSE, ZhangFile, parse_file_name, zhang_file, zhang_release

StateDict = Mapping[str, torch.Tensor]


def zhang_model_name(arch: str) -> str:
    """Our registered model name for Zhang's architecture name.

    Example:
        >>> zhang_model_name('mobilenet_v2')
        'mobilenetv2_100_aa'
    """
    return zhang_release(arch).model


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _check_filters(sd: StateDict, filt_size: int) -> None:
    for key, value in sd.items():
        if _kind(key) == "filt" and tuple(value.shape[-2:]) != (filt_size, filt_size):
            raise TimmAAError(
                f"checkpoint key {key!r} holds a {value.shape[-2]}x{value.shape[-1]} blur filter, "
                f"but filt_size={filt_size} was requested"
            )


def _fit(sd: StateDict, arch: str, filt_size: int,
         model_kwargs: dict[str, Any]) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The key map of an unwrapped state dict onto our model, and our model's state (built once, on meta)."""
    _check_filters(sd, filt_size)
    with torch.device("meta"):
        model = timm.create_model(zhang_model_name(arch), filt_size=filt_size, **model_kwargs)
    ours = model.state_dict()
    theirs_keys = [k for k in sd if _kind(k) not in ("filt", "num_batches_tracked")]
    our_keys = [k for k in ours if _kind(k) != "num_batches_tracked"]
    mapping = {}
    for theirs, mine in zip(theirs_keys, our_keys, strict=False):  # a length mismatch is reported below
        a, b = sd[theirs], ours[mine]
        if _kind(theirs) != _kind(mine) or a.numel() != b.numel() or (a.dim() == b.dim() and a.shape != b.shape):
            raise TimmAAError(
                f"checkpoint does not fit {arch} (filt_size={filt_size}): its key {theirs!r} "
                f"{tuple(a.shape)} meets {mine!r} {tuple(b.shape)} of {zhang_model_name(arch)}"
            )
        mapping[theirs] = mine
    if len(theirs_keys) != len(our_keys):
        what = (f"has an extra key {theirs_keys[len(our_keys)]!r}" if len(theirs_keys) > len(our_keys) else
                f"lacks the tensor for our key {our_keys[len(theirs_keys)]!r}")
        raise TimmAAError(f"checkpoint does not fit {arch} (filt_size={filt_size}): it {what}")
    return mapping, ours


def zhang_key_map(
    state_dict: StateDict, arch: str, filt_size: int = 4, **model_kwargs: Any
) -> dict[str, str]:
    """Map each tensor key of Zhang's checkpoint to our model's key (blur filters and counters left out).

    ``model_kwargs`` (e.g. ``num_classes``) are those of the target model.
    Raises ``TimmAAError`` naming the first key that does not fit.

    Example:
        >>> import antialiased_cnns
        >>> sd = antialiased_cnns.resnet18(filter_size=4).state_dict()
        >>> zhang_key_map(sd, 'resnet18')['layer2.0.conv2.1.weight']
        'layer2.0.conv2.weight'
    """
    return _fit(unwrap_state_dict(state_dict), arch, filt_size, model_kwargs)[0]


def convert_zhang_state_dict(
    state_dict: StateDict, arch: str, filt_size: int = 4, **model_kwargs: Any
) -> dict[str, torch.Tensor]:
    """Zhang's state dict renamed (and reshaped where needed) to our model's keys, ready for a strict load.

    Example:
        >>> import antialiased_cnns
        >>> sd = convert_zhang_state_dict(antialiased_cnns.resnet18().state_dict(), 'resnet18')
        >>> 'maxpool.1.filt' in sd, 'layer2.0.conv2.weight' in sd
        (False, True)
    """
    sd = unwrap_state_dict(state_dict)
    mapping, ours = _fit(sd, arch, filt_size, model_kwargs)
    out = {mine: sd[theirs].reshape(ours[mine].shape) for theirs, mine in mapping.items()}
    inverse = {mine: theirs for theirs, mine in mapping.items()}
    for key, value in ours.items():  # BN step counters: his where present, else zero
        if _kind(key) == "num_batches_tracked":
            sibling = inverse.get(key[: -len("num_batches_tracked")] + "running_mean")
            theirs = sibling[: -len("running_mean")] + "num_batches_tracked" if sibling else None
            out[key] = sd[theirs].clone() if theirs in sd else torch.zeros((), dtype=value.dtype)
    return out


def from_zhang(
    checkpoint: str | os.PathLike | StateDict, arch: str, filt_size: int = 4, **kwargs: Any
) -> nn.Module:
    """Our ``*_aa`` model with the weights of one of Zhang's checkpoints, loaded strictly.

    ``checkpoint`` is a path to his ``.pth`` or a state dict, bare or wrapped in ``{'state_dict': ...}``. A
    file is read with ``weights_only=True`` and refused when its SHA-256 does not start with the hash prefix
    in its name (``...-cad66808.pth``). ``kwargs`` go to ``timm.create_model``.

    Example:
        >>> import antialiased_cnns
        >>> model = from_zhang(antialiased_cnns.resnet18(filter_size=3).state_dict(), 'resnet18', filt_size=3)
    """
    name = zhang_model_name(arch)
    if isinstance(checkpoint, (str, os.PathLike)):
        if not os.path.isfile(checkpoint):
            raise TimmAAError(f"no checkpoint file at {os.fspath(checkpoint)!r}")
        check_hash(checkpoint)
        checkpoint = read_zhang_checkpoint(checkpoint, wrapped=False)
    sd = unwrap_state_dict(checkpoint)
    weights = [v for k, v in sd.items() if _kind(k) == "weight"]
    if not weights:
        raise TimmAAError(f"checkpoint has no weight tensors (keys: {list(sd)[:5]})")
    kwargs.setdefault("num_classes", weights[-1].shape[0])  # the classifier comes last in every arch
    converted = convert_zhang_state_dict(sd, arch, filt_size, **kwargs)
    model = timm.create_model(name, filt_size=filt_size, **kwargs)
    model.load_state_dict(converted, strict=True)
    return model.eval()


class OutputExists(TimmAAError):
    """The export folder of a file exists already (it is not replaced unless asked)."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"{folder} exists; remove it, or pass overwrite=True to replace it")
        self.folder = folder


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
        >>> from timm_aa.ownership import claim
        >>> with claim(tempfile.mkdtemp(), 'convert') as owner:
        ...     convert_checkpoint('resnet50_lpf4_finetune-cad66808.pth', owner)
        Traceback (most recent call last):
        ...
        timm_aa.weights.checkpoint.RefusedCheckpoint: resnet50_lpf4_finetune-cad66808.pth: not his format \
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
    from ..hub import write_export  # the hub package builds on this one

    staged = owner.stage_dir()
    try:
        write_export(model, staged, metrics={"provenance": provenance}, provenance=cfg_provenance)
        return owner.install_dir(name, staged), diff
    finally:
        shutil.rmtree(staged, ignore_errors=True)


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
    :mod:`timm_aa.ownership`), yielding one :class:`Conversion` per file (user errors become its ``error``).

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
