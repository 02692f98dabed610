"""Where the weights of a Zhang tag (``resnet50_aa.zhang_lpf4_ft_in1k``) come from, first that works: our converted
copy in the cache, the Hub repository of the tag's pretrained config, his file on disk, his URL. What each place
is and how its file is checked: docs/pretrained.md, "Where the weights come from". The Hub is reached through
``hub_access.py``, so a machine without a network fails in seconds; when every place fails, one
:class:`~timm_aa.errors.TimmAAError` lists each with its result and the fix.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..errors import TimmAAError
from ..infra.checkpoint import RefusedCheckpoint, check_hash, read_zhang_checkpoint
from ..infra.env import read_env
from ..infra.fs import atomic_path
from ..infra.hub_access import DownloadFailed, hub_download, is_offline
from ..infra.layout import TORCH_HUB_CHECKPOINTS, WEIGHTS
from ._zhang_keys import convert_zhang_state_dict
from ._zhang_releases import ZhangFile, hub_org

ZHANG_DIR_ENV = "TIMM_AA_ZHANG_DIR"
DOWNLOAD_TIMEOUT_S = 10.0
_log = logging.getLogger(__name__)


def download_to_temp(url: str, folder: str, timeout: float = DOWNLOAD_TIMEOUT_S, progress: bool = True) -> str:
    """Download ``url`` into a new temporary file in ``folder`` and return its path (the caller removes it).

    ``timeout`` bounds the connection and each read. Raises :class:`DownloadFailed`.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile('wb', suffix='.pth', delete=False) as src:
        ...     _ = src.write(b'weights')
        >>> path = download_to_temp('file://' + src.name, tempfile.mkdtemp(), progress=False)
        >>> open(path, 'rb').read()
        b'weights'
    """
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-download-", suffix=".pth")
    reason = "interrupted"
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "timm-aa"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), disable=not progress,
                      leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        reason = ""
        return tmp
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code}"
    except (urllib.error.URLError, TimeoutError) as err:  # a timeout comes bare, or as the reason of a URLError
        cause = getattr(err, "reason", err)
        reason = f"timed out after {timeout:g} s" if isinstance(cause, TimeoutError) else f"unreachable ({cause})"
    except OSError as err:
        reason = f"failed ({err})"
    finally:
        if reason:
            os.unlink(tmp)
    raise DownloadFailed(url, reason)


def checkpoint_dir(cache_dir: str | os.PathLike | None = None) -> str:
    """The folder torch.hub keeps checkpoints in (``cache_dir`` when given), where his package put his files.

    Example:
        >>> checkpoint_dir('/data/cache')
        '/data/cache'
    """
    return os.fspath(cache_dir) if cache_dir else os.path.join(torch.hub.get_dir(), TORCH_HUB_CHECKPOINTS)


def converted_path(file: ZhangFile, cache_dir: str | os.PathLike | None = None) -> str:
    """Where our safetensors conversion of his ``file`` is cached.

    Example:
        >>> from timm_aa.models._zhang_releases import zhang_file
        >>> os.path.basename(converted_path(zhang_file('resnet18_aa', 'zhang_lpf3_in1k')))
        'resnet18_aa.zhang_lpf3_in1k-449351b9.safetensors'
    """
    name = f"{file.model}.{file.tag}-{file.sha256_prefix}.safetensors"
    return os.path.join(checkpoint_dir(cache_dir), "timm_aa", name)


@dataclass
class _Search:
    file: ZhangFile
    cache_dir: str | os.PathLike | None
    tried: list[tuple[str, str]] = field(default_factory=list)  # (place, result)
    no_network: bool = False  # the Hub did not answer: his URL is not tried either

    def convert(self, path: str, source: str) -> str:
        """Check, read and convert his file at ``path``; cache and return the safetensors path."""
        digest = check_hash(path, self.file.sha256_prefix)
        state = read_zhang_checkpoint(path)
        try:
            converted = convert_zhang_state_dict(state, self.file.arch, self.file.filt_size)
        except TimmAAError as err:
            raise RefusedCheckpoint(path, f"not his format ({err})", "") from None
        target = converted_path(self.file, self.cache_dir)
        metadata = {"format": "pt", "architecture": self.file.model, "tag": self.file.tag,
                    "source_file": self.file.name, "source_sha256": digest, "source": source}
        with atomic_path(target) as tmp:
            save_file({k: v.contiguous() for k, v in converted.items()}, tmp, metadata=metadata)
        _log.info("converted %s (%s) into %s", self.file.name, source, target)
        return target

    def cached(self) -> str | None:
        path = converted_path(self.file, self.cache_dir)
        if not os.path.isfile(path):
            return None
        try:
            with safe_open(path, framework="pt") as f:
                digest = (f.metadata() or {}).get("source_sha256", "")
            result = "not converted from his file"
        except Exception as err:  # a damaged cache entry is converted again, and overwritten
            digest, result = "", f"unreadable ({type(err).__name__})"
        if digest.startswith(self.file.sha256_prefix):
            return path
        self.tried.append((f"converted copy {path}", f"{result}, ignored"))
        return None

    def hub(self, repo_id: str | None) -> str | None:
        if not repo_id:
            return None
        try:
            return os.path.join(hub_download(repo_id, [WEIGHTS], cache_dir=self.cache_dir), WEIGHTS)
        except DownloadFailed as err:
            self.tried.append((f"Hugging Face Hub {repo_id}", err.reason))
            self.no_network = err.reason.startswith("no network")
        return None

    def local(self) -> str | None:
        folders = [read_env(ZHANG_DIR_ENV)] if read_env(ZHANG_DIR_ENV) else []
        for folder in dict.fromkeys([*folders, checkpoint_dir(self.cache_dir)]):
            path = os.path.join(folder, self.file.name)
            if not os.path.isfile(path):
                self.tried.append((path, "not found"))
                continue
            try:
                return self.convert(path, path)
            except RefusedCheckpoint as err:
                self.tried.append((path, err.reason + ", refused"))
        return None

    def url(self, progress: bool) -> str | None:
        url = self.file.url
        if is_offline() or self.no_network:
            self.tried.append((url, f"skipped: {'no network' if self.no_network else 'offline (HF_HUB_OFFLINE=1)'}"))
            return None
        try:
            tmp = download_to_temp(url, os.path.dirname(converted_path(self.file, self.cache_dir)), progress=progress)
        except DownloadFailed as err:
            self.tried.append((url, err.reason))
            return None
        try:
            return self.convert(tmp, url)
        except RefusedCheckpoint as err:
            self.tried.append((url, err.reason + ", refused"))
            return None
        finally:
            os.unlink(tmp)

    def error(self) -> TimmAAError:
        places = "\n".join(f"  {i}. {place}: {result}" for i, (place, result) in enumerate(self.tried, 1))
        f = self.file
        return TimmAAError(
            f"no pretrained weights for {f.model}.{f.tag} (Zhang's {f.name}). Tried, in order:\n{places}\n"
            f"Fix: put his file {f.name} into {checkpoint_dir(self.cache_dir)} (or into the folder named by "
            f"{ZHANG_DIR_ENV}), or convert a copy under any name with "
            f"timm_aa.from_zhang(path, {f.arch!r}, filt_size={f.filt_size})."
        )


def zhang_weights(
    file: ZhangFile,
    hub_id: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> str:
    """Path of a safetensors file with our model's weights for Zhang's ``file``, found in the order of the
    module docstring; ``TimmAAError`` naming every place tried when none works.

    Example:
        >>> import tempfile, unittest.mock
        >>> from timm_aa.models._zhang_releases import zhang_file
        >>> with unittest.mock.patch.dict(os.environ, {'HF_HUB_OFFLINE': '1'}):  # doctest: +ELLIPSIS
        ...     zhang_weights(zhang_file('resnet50_aa', 'zhang_lpf4_ft_in1k'), cache_dir=tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no pretrained weights for resnet50_aa.zhang_lpf4_ft_in1k (Zhang's \
resnet50_lpf4_finetune-cad66808.pth). Tried, in order:
          1. .../resnet50_lpf4_finetune-cad66808.pth: not found
          2. https://...: skipped: offline (HF_HUB_OFFLINE=1)
        Fix: put his file resnet50_lpf4_finetune-cad66808.pth into ... or convert a copy under any name with \
timm_aa.from_zhang(path, 'resnet50', filt_size=4).
    """
    hub_org()  # TIMM_AA_HUB_ORG out of form: one line, before any search
    search = _Search(file, cache_dir)
    path = search.cached() or search.hub(hub_id) or search.local() or search.url(progress)
    if path is None:
        raise search.error()
    return path
