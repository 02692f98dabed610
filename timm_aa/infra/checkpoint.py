"""Reading checkpoint files we did not write: one of Zhang's ``.pth`` files (hash checked against its name,
unpickled with ``weights_only=True`` so no code from the file runs, refused unless it holds what his files hold),
and the header of a safetensors file (checked to be one, before anything trusts its metadata).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import safe_open

from ..errors import TimmAAError
from .fs import sha256_file

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


class RefusedCheckpoint(TimmAAError):
    """A file that is not loaded: its hash does not match its name, or it is not in Zhang's format.

    ``reason`` is the short form (``hash mismatch (...)``, ``not his format (...)``).
    """

    def __init__(self, path: str, reason: str, fix: str) -> None:
        super().__init__(f"{path}: {reason}; refused, nothing was loaded. {fix}")
        self.path, self.reason = path, reason


def check_hash(path: str | os.PathLike, prefix: str | None = None) -> str:
    """The file's SHA-256; ``RefusedCheckpoint`` when it does not start with ``prefix`` (default: the hash
    prefix in the file's name, ``...-cad66808.pth`` as torch.hub names them; no check when the name has none).

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'hello-2cf24dba.pth')
        >>> _ = open(path, 'w').write('hello')
        >>> check_hash(path)[:12]
        '2cf24dba5fb0'
    """
    path = os.fspath(path)
    match = _HASH_IN_NAME.search(os.path.basename(path))
    prefix = prefix or (match.group(1) if match else None)
    digest = sha256_file(path)
    if prefix and not digest.startswith(prefix):
        raise RefusedCheckpoint(path, f"hash mismatch (its SHA-256 begins {digest[:len(prefix)]}, its name says "
                                      f"{prefix})", "The file is damaged or not the released one: get it again.")
    return digest


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {sorted(map(str, obj))[:4]}"
    return f"a {type(obj).__name__}"


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return the bare state dict of a checkpoint (``{'state_dict': ...}`` unwrapped, ``module.`` stripped).

    Example:
        >>> unwrap_state_dict({'state_dict': {'module.fc.bias': torch.zeros(2)}})
        {'fc.bias': tensor([0., 0.])}
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(checkpoint).__name__}")
    sd = checkpoint.get("state_dict", checkpoint)
    out = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key.removeprefix("module.")] = value
    return out


def read_zhang_checkpoint(path: str | os.PathLike, wrapped: bool = True) -> dict[str, torch.Tensor]:
    """The state dict inside one of Zhang's files: ``{'state_dict': {name: tensor}}`` (with ``wrapped=False``
    a bare ``{name: tensor}`` is accepted too). Anything else is refused with ``RefusedCheckpoint``.

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'resnet18_lpf4.pth')
        >>> torch.save({'state_dict': {'module.fc.bias': torch.zeros(2)}}, path)
        >>> read_zhang_checkpoint(path)
        {'fc.bias': tensor([0., 0.])}
    """
    path = os.fspath(path)
    fix = "His files are dicts with a 'state_dict' of tensors, saved by torch.save."
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read gets the same verdict: not his file
        what = "it holds pickled Python objects, not only tensors" if "Unsupported global" in str(err) \
            else f"torch.load(weights_only=True) cannot read it: {type(err).__name__}"
        raise RefusedCheckpoint(path, f"not his format ({what})", fix) from None
    sd = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if sd is None and not wrapped and isinstance(checkpoint, Mapping):
        sd = checkpoint
    if not isinstance(sd, Mapping) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        found = _describe(checkpoint) if sd is None else f"a 'state_dict' that is {_describe(sd)}"
        raise RefusedCheckpoint(path, f"not his format (expected a dict with a 'state_dict' of tensors, found "
                                      f"{found})", fix)
    return unwrap_state_dict(sd)


def read_safetensors_header(path: str) -> dict[str, str]:
    """The metadata of the safetensors file ``path``, after checking it is one; ``TimmAAError`` naming the file
    and the fix when it is missing, empty, truncated or not safetensors.

    Example:
        >>> read_safetensors_header('/nonexistent.safetensors')
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no checkpoint file at '/nonexistent.safetensors'
    """
    if not os.path.isfile(path):
        raise TimmAAError(f"no checkpoint file at {path!r}")
    if not path.endswith(".safetensors"):
        raise TimmAAError(f"checkpoints must be .safetensors files, got {path!r} (a .pth of Zhang's: convert it "
                          "with timm_aa.from_zhang(path, arch) and save that model)")
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises one error type for every broken file
        reason = str(err).split(": ", 1)[-1]
        raise TimmAAError(
            f"{path!r} is not a readable safetensors file ({reason}; {os.path.getsize(path)} bytes): it is empty, "
            "truncated or not safetensors. Write it again, e.g. with timm_aa.hub.save_weights(model, path)"
        ) from None
