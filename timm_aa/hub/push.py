"""Pushing a prepared folder to the Hugging Face Hub in one commit, failing fast and plainly when it cannot.

Before anything is sent, one request without retries (``HF_HUB_ETAG_TIMEOUT`` seconds at most, 10 by default)
checks that the Hub answers: offline, the Hub client would otherwise retry for about a minute. Refusals by the
Hub (a bad token, no write access) and connections lost mid-way become one TimmAAError each.
"""

from __future__ import annotations

import os
import sys

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from ..errors import TimmAAError, first_line
from ..infra.hub_access import unreachable
from ..infra.hub_names import check_name, repo_id_problem, revision_problem
from ..infra.layout import CARD, CONFIG, WEIGHTS
from ..infra.ownership import read_marker


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of the HTTP client huggingface_hub uses: httpx (httpx2 in its newest releases), or
    requests in old ones."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError, OfflineModeIsEnabled]
    for module, name in (("httpx", "TransportError"), ("httpx2", "TransportError"), ("requests", "ConnectionError"),
                         ("requests", "Timeout")):
        error = getattr(sys.modules.get(module), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def check_reachable(endpoint: str | None = None, timeout: float | None = None) -> None:
    """Raise TimmAAError unless the Hub at ``endpoint`` (default: huggingface_hub's, ``HF_ENDPOINT``) answers one
    request within ``timeout`` seconds (default ``HF_HUB_ETAG_TIMEOUT``). Any HTTP status counts as an answer.

    Example:
        >>> check_reachable('http://127.0.0.1:9', timeout=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: cannot reach the Hugging Face Hub at http://127.0.0.1:9 (...)...
    """
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    if constants.HF_HUB_OFFLINE:
        raise TimmAAError("HF_HUB_OFFLINE is set, and pushing needs the Hub: unset it (the folder is ready to push)")
    reason = unreachable(endpoint, timeout or constants.HF_HUB_ETAG_TIMEOUT)
    if reason:
        raise TimmAAError(f"cannot reach the Hugging Face Hub at {endpoint} ({reason}): check the network "
                          "connection (and HF_ENDPOINT, proxies); the folder is ready to push when it is back")


def push_folder(
    folder: str,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    force: bool = False,
    commit_message: str | None = None,
) -> CommitInfo:
    """Upload the files a publish wrote to ``folder`` (those its trusted marker lists) to ``repo_id`` in a single
    commit.

    Refuses (TimmAAError) a repo id or revision out of form, an incomplete folder, an unreachable Hub, and a
    repository that already has ``model.safetensors`` unless ``force`` (or ``create_pr``).

    Example:
        >>> import tempfile
        >>> push_folder(tempfile.mkdtemp(), 'me/resnet50_aa.ft_pets')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: '...' is not a complete publish folder (it lacks model.safetensors, config.json, \
README.md): build it with prepare_folder first
    """
    check_name("repo_id", repo_id, repo_id_problem)
    if revision is not None:
        check_name("revision", revision, revision_problem)
    marker, why = read_marker(folder, "publish")
    files = sorted(marker.files) if marker else []
    missing = [f for f in (WEIGHTS, CONFIG, CARD) if f not in files]
    if missing or marker.pending:  # no marker: no files, so all three are missing
        why = why or (f"it lacks {', '.join(missing)}" if missing else "its last publish was interrupted")
        raise TimmAAError(f"{folder!r} is not a complete publish folder ({why}): build it with prepare_folder first")
    check_reachable()
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if not force and not create_pr and api.file_exists(repo_id, WEIGHTS, revision=revision):
            raise TimmAAError(f"{repo_id} already has {WEIGHTS}: pass force=True to replace it, or "
                              "create_pr=True to propose the change as a pull request")
        ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(folder, f)) for f in files]
        return api.create_commit(repo_id, ops, commit_message=commit_message or f"Upload {repo_id} with timm-aa",
                                 revision=revision, create_pr=create_pr, repo_type="model")
    except HfHubHTTPError as err:
        detail = first_line(err, type(err).__name__)
        raise TimmAAError(f"the Hub refused the push to {repo_id} ({detail}): check that the token may write to "
                          "it and that the repo id is right") from None
    except _transport_errors() as err:
        raise TimmAAError(f"lost the connection to the Hugging Face Hub ({type(err).__name__}: {err}); "
                          f"{folder!r} is ready: push it again when the network is back") from None


def resolve_token(token: str | None) -> str | None:
    """The token to push with: the one given, else the one huggingface_hub finds (``HF_TOKEN`` or a login).

    Example:
        >>> resolve_token('hf_example')
        'hf_example'
    """
    return token or get_token()
