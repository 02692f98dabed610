"""Pushing a prepared folder to the Hugging Face Hub in one commit, failing fast and plainly when it cannot.

The repo id and revision are checked first (:mod:`timm_aa.infra.hub_names`). Before anything is sent, one request
without retries (:func:`~timm_aa.infra.hub_access.hub_unreachable`) checks that the Hub answers: offline, the Hub
client would otherwise retry for about a minute. Then every request of the push is bounded
(:func:`~timm_aa.infra.hub_client.bounded_hub_client`): ``timeout`` seconds without progress, two tries at most.
Each failure is one TimmAAError that says whose problem it is: the token's (401, 403), the repo id's (404), the
server's (5xx, 429: try again later), the network's (a timeout, a lost connection).
"""

from __future__ import annotations

import os

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError

from ..errors import TimmAAError, first_line
from ..infra import hub_client
from ..infra.hub_access import hub_unreachable, transport_errors
from ..infra.hub_client import HubGaveUp, bounded_hub_client
from ..infra.hub_names import check_name, repo_id_problem, revision_problem
from ..infra.layout import CARD, CONFIG, WEIGHTS
from ..infra.ownership import read_marker


def check_reachable(endpoint: str | None = None, timeout: float | None = None) -> None:
    """Raise TimmAAError unless the Hub at ``endpoint`` (default: huggingface_hub's, ``HF_ENDPOINT``) answers one
    request within ``timeout`` seconds (default: the probe's). Any HTTP status counts as an answer.

    Example:
        >>> check_reachable('http://127.0.0.1:9', timeout=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: cannot reach the Hugging Face Hub at http://127.0.0.1:9 (...)...
    """
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    if constants.HF_HUB_OFFLINE:
        raise TimmAAError("HF_HUB_OFFLINE is set, and pushing needs the Hub: unset it (the folder is ready to push)")
    reason = hub_unreachable(endpoint, timeout)
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
    timeout: float | None = None,
) -> CommitInfo:
    """Upload the files a publish wrote to ``folder`` (those its trusted marker lists) to ``repo_id`` in a single
    commit; each request gives up after ``timeout`` seconds without progress (default
    :data:`~timm_aa.infra.hub_client.PUSH_TIMEOUT_S`) and is tried twice at most.

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
    timeout = timeout or hub_client.PUSH_TIMEOUT_S
    api = HfApi(token=token)
    ready = f"{folder!r} is ready: push it again"
    try:
        with bounded_hub_client(timeout):
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if not force and not create_pr and api.file_exists(repo_id, WEIGHTS, revision=revision):
                raise TimmAAError(f"{repo_id} already has {WEIGHTS}: pass force=True to replace it, or "
                                  "create_pr=True to propose the change as a pull request")
            ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(folder, f)) for f in files]
            return api.create_commit(repo_id, ops, commit_message=commit_message or f"Upload {repo_id} with timm-aa",
                                     revision=revision, create_pr=create_pr, repo_type="model")
    except (HfHubHTTPError, HubGaveUp) as err:
        status = err.status if isinstance(err, HubGaveUp) else getattr(err.response, "status_code", None)
        raise TimmAAError(_refusal(repo_id, revision, status, first_line(err, type(err).__name__), timeout, ready)
                          ) from None
    except transport_errors() as err:
        if "Timeout" in type(err).__name__ or isinstance(err, TimeoutError):
            raise TimmAAError(f"the Hugging Face Hub did not answer within {timeout:g} s ({type(err).__name__}); "
                              f"{ready} later") from None
        raise TimmAAError(f"lost the connection to the Hugging Face Hub ({type(err).__name__}: {first_line(err)}); "
                          f"{ready} when the network is back") from None


def _refusal(repo_id: str, revision: str | None, status: int | None, detail: str, timeout: float, ready: str) -> str:
    """The one line for a push the Hub did not accept, by whose problem it is."""
    if status is None:
        return f"the Hugging Face Hub did not answer within {timeout:g} s, twice ({detail}); {ready} later"
    if status == 401:
        return f"the Hub refused the token (HTTP 401): check HF_TOKEN (or log in again with hf auth login); {ready}"
    if status == 403:
        return f"the token may not write to {repo_id} (HTTP 403): use a token with write access, or another repo id"
    if status == 404:
        return (f"the Hub has no {repo_id}{f' revision {revision!r}' if revision else ''} (HTTP 404): check the "
                "repo id and the revision")
    if status == 429 or status >= 500:
        kind = "too many requests" if status == 429 else "a server error"
        return f"the Hub answered {status} ({kind}): try again later; {ready}"
    return f"the Hub refused the push to {repo_id} (HTTP {status}: {detail}); {ready}"


def resolve_token(token: str | None) -> str | None:
    """The token to push with: the one given, else the one huggingface_hub finds (``HF_TOKEN`` or a login).

    Example:
        >>> resolve_token('hf_example')
        'hf_example'
    """
    return token or get_token()
