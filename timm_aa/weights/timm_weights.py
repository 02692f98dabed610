"""timm's own pretrained weights (``resnet50``, ``init_from='resnet18'``, an ``*_afc`` model's base) reached without
hanging: :func:`timm_weights_access` wraps ``timm.create_model(name, pretrained=True)``.

Before timm asks the Hub client (which, without a network, retries for about a minute and then raises
``LocalEntryNotFoundError``), one request without retries (:func:`~timm_aa.infra.hub_access.hub_unreachable`)
tells whether the Hub answers. Without a network (or with ``HF_HUB_OFFLINE=1``) weights in the Hub cache load
from it at once, with the Hub client in offline mode; weights that are not there are one TimmAAError naming
``HF_HUB_OFFLINE=1`` and the cache. Weights timm fetches from a URL (torch hub's folder) get the same probe. Zhang's
tags have their own search (:mod:`timm_aa.models._zhang_sources`) and are left to it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from timm.models import get_pretrained_cfg

from ..errors import TimmAAError
from ..infra.hub_access import hub_offline, hub_result, hub_unreachable, is_offline, transport_errors
from ..infra.hub_client import HubGaveUp, bounded_hub_client
from ..infra.layout import TIMM_HUB_WEIGHTS, TORCH_HUB_CHECKPOINTS
from ..models._zhang_releases import zhang_file


@dataclass(frozen=True)
class _Place:
    """Where timm would fetch ``name``'s weights: a Hub repo (with revision and files) or a URL."""

    name: str
    repo_id: str | None = None
    revision: str | None = None
    files: tuple[str, ...] = ()
    url: str | None = None

    def cached(self) -> bool:
        if self.url:
            return os.path.isfile(self.torch_path())
        return any(isinstance(try_to_load_from_cache(self.repo_id, f, revision=self.revision), str) for f in self.files)

    def torch_path(self) -> str:
        name = os.path.basename(urllib.parse.urlparse(self.url).path)
        return os.path.join(torch.hub.get_dir(), TORCH_HUB_CHECKPOINTS, name)

    def missing(self, offline: bool, down: str | None) -> str:
        where = (f"{self.url}, not in torch hub's folder {os.path.dirname(self.torch_path())}" if self.url else
                 f"{self.repo_id} on the Hugging Face Hub, not in the Hub cache {constants.HF_HUB_CACHE}")
        why = "HF_HUB_OFFLINE=1 is set" if offline else f"no network ({self.endpoint()} did not answer: {down})"
        return (f"no pretrained weights for {self.name} ({where}): {why}; download them once with a network (or copy "
                "them into that cache); HF_HUB_OFFLINE=1 then skips the network")

    def endpoint(self) -> str:
        if self.url:
            parts = urllib.parse.urlparse(self.url)
            return f"{parts.scheme}://{parts.netloc}"
        return constants.ENDPOINT


def _place(name: str) -> _Place | None:
    """Where ``name``'s weights come from when timm loads them, or None when nothing is fetched from a network
    (a file, a state dict, a Zhang tag, no weights) or timm does not know the name (timm says why)."""
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError:  # an unknown tag: timm.create_model says so
        return None
    if cfg is None or cfg.file or cfg.state_dict or cfg.source == "local-dir":
        return None
    if zhang_file(cfg.architecture, cfg.tag):  # Zhang's tags: their own search
        return None
    if cfg.hf_hub_id:
        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else TIMM_HUB_WEIGHTS
        return _Place(name, repo_id, revision or None, files)
    return _Place(name, url=cfg.url) if cfg.url else None


@contextmanager
def timm_weights_access(name: str) -> Iterator[None]:
    """Run the block (``timm.create_model(name, pretrained=True)``) with ``name``'s weights reachable, or raise one
    TimmAAError before it (module docstring); Hub failures inside it become one TimmAAError too.

    Example:
        >>> import timm, unittest.mock
        >>> with unittest.mock.patch.object(constants, 'HF_HUB_OFFLINE', True), \\
        ...         unittest.mock.patch.object(constants, 'HF_HUB_CACHE', '/nonexistent'):
        ...     with timm_weights_access('resnet50'):
        ...         pass
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: no pretrained weights for resnet50 (timm/resnet50.a1_in1k on the Hugging Face \
Hub, not in the Hub cache /nonexistent): HF_HUB_OFFLINE=1 is set; download them once with a network (or copy them \
into that cache); HF_HUB_OFFLINE=1 then skips the network
    """
    place = _place(name)
    if place is None:
        yield
        return
    offline = is_offline() and not place.url
    down = None if offline else hub_unreachable(place.endpoint())
    local = offline or bool(down)
    if local and not place.cached():
        raise TimmAAError(place.missing(offline, down))
    try:
        with hub_offline() if local and not place.url else bounded_hub_client():
            yield
    except (HfHubHTTPError, EntryNotFoundError, HubGaveUp, *transport_errors()) as err:
        reason = hub_result(err, local, place.files[0] if place.files else "the weights")
        raise TimmAAError(f"no pretrained weights for {name} ({place.repo_id or place.url}): {reason}") from None

