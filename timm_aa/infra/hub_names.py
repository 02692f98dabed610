"""The names the Hub gives meaning to, checked before they reach the Hub client, a path or a card: repository ids
and organisations (huggingface_hub's own validator, ``validate_repo_id``), and revisions (git's rules for a ref
name, ASCII only). A revision reaches the Hub cache as a path (``refs/<revision>``): one with a ``..`` segment, a
leading ``/`` or a backslash would write outside it.

Each ``*_problem`` function returns what the value must be (a rule, as :mod:`.rules` has them) or None.
"""

from __future__ import annotations

import re
from typing import Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..errors import TimmAAError

REPO_ID_FORM = ("a Hub repo id ('org/name'; letters, digits, '-', '_' and '.', at most 96 each; no '--' or '..', no "
                "leading or trailing '-' or '.')")
REVISION_FORM = ("a branch, tag or commit of the Hub (ASCII letters, digits and '-', '_', '.', '/'; no '..', '//', "
                 "'@{', leading or trailing '/', segment starting with '.' or ending with '.lock')")
_REVISION_CHARS = re.compile(r"[A-Za-z0-9._/+=,#%@-]{1,255}")
_SPEC_PREFIXES = ("hf-hub:", "hf_hub:")
_LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\"'<>`\\|\[\]{}^]*)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


def repo_id_problem(value: Any) -> str | None:
    """What ``value`` must be to be a Hub repo id, or None when it is one.

    Example:
        >>> repo_id_problem('me/resnet50_aa.ft_pets') is None, repo_id_problem('../../evil') is None
        (True, False)
    """
    if not isinstance(value, str):
        return f"must be {REPO_ID_FORM}"
    try:
        validate_repo_id(value)
    except HFValidationError:
        return f"must be {REPO_ID_FORM}"
    return None


def org_problem(value: Any) -> str | None:
    """What ``value`` must be to be a Hub organisation (or user) name, or None when it is one.

    Example:
        >>> org_problem('timm-aa') is None, org_problem('a/b') is None
        (True, False)
    """
    if isinstance(value, str) and "/" not in value and repo_id_problem(value) is None:
        return None
    return "must be a Hub organisation name (letters, digits, '-', '_' and '.'; no '/', '--' or '..')"


def revision_problem(value: Any) -> str | None:
    """What ``value`` must be to be a revision (branch, tag, commit) on the Hub, or None when it is one.

    Example:
        >>> revision_problem('main') is None, revision_problem('refs/pr/3') is None
        (True, True)
        >>> revision_problem('../../../../FILE') is None, revision_problem('/etc') is None
        (False, False)
    """
    if not isinstance(value, str) or not _REVISION_CHARS.fullmatch(value):
        return f"must be {REVISION_FORM}"
    segments = value.split("/")
    if (".." in value or "@{" in value or value == "@" or value.endswith(".") or "" in segments
            or any(s.startswith(".") or s.endswith(".lock") for s in segments)):
        return f"must be {REVISION_FORM}"
    return None


def check_name(name: str, value: Any, problem: Any) -> None:
    """Raise TimmAAError ``name=value must be ...`` (one line: the value is quoted) when ``problem(value)`` finds one.

    Example:
        >>> check_name('repo_id', 'org/na me<script>', repo_id_problem)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: repo_id='org/na me<script>' must be a Hub repo id ('org/name'; ...)
    """
    wrong = problem(value)
    if wrong:
        raise TimmAAError(f"{name}={value!r} {wrong}")


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``(repo_id, revision)`` of an ``hf-hub:ORG/NAME[@REVISION]`` spec, both checked (TimmAAError naming the spec).

    Example:
        >>> parse_hub_spec('hf-hub:me/resnet18_aa.pets@v1')
        ('me/resnet18_aa.pets', 'v1')
        >>> parse_hub_spec('hf-hub:org/model@../../../../FILE')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: 'hf-hub:org/model@../../../../FILE': its revision '../../../../FILE' must be a ...
    """
    body = spec[len(next((p for p in _SPEC_PREFIXES if spec.startswith(p)), "")):]
    repo_id, at, revision = body.partition("@")
    for what, value, problem in (("repo id", repo_id, repo_id_problem),
                                 ("revision", revision if at else None, revision_problem)):
        wrong = problem(value) if value is not None else None
        if wrong:
            raise TimmAAError(f"{spec!r}: its {what} {value!r} {wrong}")
    return repo_id, revision if at else None


def hub_name(text: str, default: str = "model") -> str:
    """``text`` made into a valid repository name (other characters become ``-``), to name a model by a folder.

    Example:
        >>> hub_name('resnet18_aa.my run<1>'), hub_name('..'), hub_name('a--b..c')
        ('resnet18_aa.my-run-1', 'model', 'a-b.c')
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    name = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", name))[:96].strip("-._")
    return name if repo_id_problem(name) is None else default


def license_id(value: Any) -> str | None:
    """A Hub license id: lower-case letters, digits, ``.``, ``+``, ``-`` (``apache-2.0``, ``cc-by-nc-sa-4.0``, ``mit``).

    Example:
        >>> license_id('cc-by-nc-sa-4.0') is None, license_id('<img onerror=x>')
        (True, "must be a Hub license id (lower-case letters, digits, '.', '+', '-', e.g. 'apache-2.0', 'mit')")
    """
    return _unless(_LICENSE, value, "a Hub license id (lower-case letters, digits, '.', '+', '-', e.g. 'apache-2.0', "
                                    "'mit')")


def http_url(value: Any) -> str | None:
    """An ``http(s)://`` URL without spaces, quotes, angle brackets, backslashes or backticks.

    Example:
        >>> http_url('https://github.com/adobe/antialiased-cnns') is None, http_url('javascript:alert(1)')
        (True, 'must be an http(s):// URL without spaces, quotes, brackets or backslashes')
    """
    return _unless(_URL, value, "an http(s):// URL without spaces, quotes, brackets or backslashes")


def name_form(value: Any) -> str | None:
    """A name (a tag, an architecture, an interpolation): letters, digits, ``_ . + -``, starting with one of the first
    two, at most 128 characters.

    Example:
        >>> name_form('zhang_lpf4_ft_in1k') is None, name_form('a b')
        (True, "must be a name (letters, digits, '_', '.', '+', '-')")
    """
    return _unless(_NAME, value, "a name (letters, digits, '_', '.', '+', '-')")


def _unless(form: re.Pattern[str], value: Any, what: str) -> str | None:
    """None when ``value`` is a string of ``form`` (at most 2000 characters), else ``must be <what>``."""
    return None if isinstance(value, str) and len(value) <= 2000 and form.fullmatch(value) else f"must be {what}"
