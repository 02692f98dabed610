"""Reaching the Hugging Face Hub without hanging: one request without retries first tells whether there is a
network at all, so that a machine without one fails in seconds (and says ``HF_HUB_OFFLINE=1``) instead of after
the Hub client's retries, and then only the Hub's cache is used.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from ..errors import TimmAAError
from .hub_client import HubGaveUp, bounded_hub_client
from .hub_names import repo_id_problem, revision_problem

PROBE_TIMEOUT_S = 5.0  # the probe's limit (HF_HUB_ETAG_TIMEOUT when smaller): a Hub that needs longer is unusable


class DownloadFailed(TimmAAError):
    """The server could not be reached or did not answer 200; ``reason`` is the short form (``HTTP 403``)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not download {url}: {reason}")
        self.url, self.reason = url, reason


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, as read now or when the Hub client loaded.

    Example:
        >>> import unittest.mock
        >>> with unittest.mock.patch.dict(os.environ, {'HF_HUB_OFFLINE': 'yes'}):
        ...     is_offline()
        True
    """
    now = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper()
    return now in ("1", "ON", "YES", "TRUE") or bool(constants.HF_HUB_OFFLINE)


def unreachable(endpoint: str, timeout: float) -> str | None:
    """Why ``endpoint`` does not answer one request within ``timeout`` seconds, or None when it answers (any
    HTTP status counts as an answer). No retries.

    Example:
        >>> unreachable('http://127.0.0.1:9', timeout=1)
        'Connection refused'
    """
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint.rstrip("/") + "/", method="HEAD"),
                               timeout=timeout).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        return getattr(reason, "strerror", None) or str(reason)
    return None


def hub_unreachable(endpoint: str | None = None, timeout: float | None = None) -> str | None:
    """:func:`unreachable` for the Hub (default: huggingface_hub's endpoint, ``HF_ENDPOINT``), within ``timeout``
    seconds (default: :data:`PROBE_TIMEOUT_S`, or ``HF_HUB_ETAG_TIMEOUT`` when smaller).

    Example:
        >>> hub_unreachable('http://127.0.0.1:9')
        'Connection refused'
    """
    limit = timeout or min(PROBE_TIMEOUT_S, float(constants.HF_HUB_ETAG_TIMEOUT))
    return unreachable(endpoint or constants.ENDPOINT, limit)


@contextmanager
def hub_offline() -> Iterator[None]:
    """huggingface_hub in offline mode while the block runs (only its cache is read): after the probe found no
    network, so that it does not retry. Process-wide while it lasts, as ``HF_HUB_OFFLINE=1`` is.

    Example:
        >>> from huggingface_hub import constants
        >>> with hub_offline():
        ...     constants.HF_HUB_OFFLINE
        True
    """
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def hub_download(repo_id: str, filenames: list[str], revision: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> str:
    """Download ``filenames`` of the Hub repository ``repo_id`` (or take them from the Hub cache) and return the
    local folder holding them. ``HF_HUB_OFFLINE=1`` uses the cache only; otherwise one request without retries
    first checks that the Hub answers, and without a network only the cache is used. Every failure is one
    :class:`DownloadFailed` whose ``reason`` says what happened and the fix.

    Example:
        >>> import unittest.mock
        >>> with unittest.mock.patch.dict(os.environ, {'HF_HUB_OFFLINE': '1'}):
        ...     hub_download('nobody/nothing', ['config.json'])
        Traceback (most recent call last):
        ...
        timm_aa.infra.hub_access.DownloadFailed: could not download hf-hub:nobody/nothing: offline ... Hub cache
    """
    for what, value, problem in (("repo id", repo_id, repo_id_problem), ("revision", revision, revision_problem)):
        wrong = problem(value) if value is not None else None
        if wrong:  # a revision reaches the cache as a path: refs/<revision>
            raise DownloadFailed(f"hf-hub:{repo_id!r}", f"refused: its {what} {value!r} {wrong}")
    offline = is_offline()
    down = None if offline else hub_unreachable()
    paths = []
    try:
        with bounded_hub_client():  # two tries per request, not the Hub client's six
            for name in filenames:
                paths.append(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir,
                                             local_files_only=offline or bool(down)))
    except Exception as err:  # every Hub failure becomes one reason
        reason = (f"no network ({constants.ENDPOINT} did not answer: {down}; HF_HUB_OFFLINE=1 skips it), and not "
                  f"in the Hub cache" if down else hub_result(err, offline, filenames[len(paths)]))
        raise DownloadFailed(f"hf-hub:{repo_id}", reason) from None
    return os.path.dirname(paths[0])


def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of the HTTP client huggingface_hub uses: httpx (httpx2 in its newest releases), or
    requests in old ones; and its offline-mode refusal.

    Example:
        >>> ConnectionError in transport_errors()
        True
    """
    found: list[type[BaseException]] = [ConnectionError, TimeoutError, OfflineModeIsEnabled]
    for module, name in (("httpx", "TransportError"), ("httpx2", "TransportError"), ("requests", "ConnectionError"),
                         ("requests", "Timeout")):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def hub_result(err: Exception, offline: bool, filename: str) -> str:
    """The short reason for a failed Hub download (``404 (no such repository)``, ``HTTP 500 (a server error: try
    again later)``, ...).

    Example:
        >>> hub_result(TimeoutError('read'), False, 'config.json')
        'failed (TimeoutError: read)'
    """
    status = err.status if isinstance(err, HubGaveUp) else getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, HubGaveUp) and status is None:
        return "no answer, twice (check the network, or try again later)"
    if status and (status >= 500 or status == 429):
        return f"HTTP {status} ({'a server error' if status >= 500 else 'too many requests'}: try again later)"
    if isinstance(err, GatedRepoError):
        return f"{status or 403} (gated: accept its terms on the Hub and log in)"
    if isinstance(err, RepositoryNotFoundError):
        return f"{status or 404} (no such repository)"
    if isinstance(err, LocalEntryNotFoundError):
        if offline:
            return "offline (HF_HUB_OFFLINE=1) and not in the Hub cache"
        cause = err.__cause__ or err.__context__
        return f"unreachable ({type(cause).__name__ if cause else 'no connection'}; HF_HUB_OFFLINE=1 skips the network)"
    if isinstance(err, EntryNotFoundError) or status == 404:
        return f"404 (the repository has no {filename})"
    return f"HTTP {status}" if status else f"failed ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
