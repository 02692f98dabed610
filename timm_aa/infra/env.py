"""Our environment variables, each with its rule (the bounds table's part the layers read too: this module
imports no layer, so that the CPU kernel's builder can use it), and the one reader of them.

Example:
    >>> read_env('TIMM_AA_BUILD_TIMEOUT', 30.0, float)
    30.0
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import TimmAAError
from .hub_names import org_problem
from .rules import Rule, number, shown, text

#: our environment variables (read through :func:`read_env`)
ENV_BOUNDS: dict[str, Rule] = {
    "TIMM_AA_BUILD_TIMEOUT": number(1, 3600),
    "TIMM_AA_BACKEND": text(("reference", "native", "triton")),
    "TIMM_AA_DEBUG": text(max_len=16),  # any value but 0 shows tracebacks (scripts read it before importing us)
    "TIMM_AA_HUB_ORG": org_problem,
    "TIMM_AA_CACHE": text(),
    "TIMM_AA_ZHANG_DIR": text(),
    "TIMM_AA_ZHANG_URL": text(),
}


def read_env(name: str, default: Any = None, convert: type = str) -> Any:
    """The environment variable ``name`` converted by ``convert`` and checked by :data:`ENV_BOUNDS`, or
    ``default`` when it is unset or empty; a wrong value is one line naming the variable.

    Example:
        >>> import unittest.mock
        >>> with unittest.mock.patch.dict(os.environ, {'TIMM_AA_BUILD_TIMEOUT': 'nan'}):
        ...     read_env('TIMM_AA_BUILD_TIMEOUT', 30.0, float)
        Traceback (most recent call last):
        ...
        timm_aa.errors.TimmAAError: TIMM_AA_BUILD_TIMEOUT='nan': must be a finite number in [1, 3600]; set it to \
such a value, or unset it
    """
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = convert(raw.strip())
    except ValueError:
        value = raw
    wrong = ENV_BOUNDS[name](value)
    if wrong:
        raise TimmAAError(f"{name}={shown(raw)}: {wrong}; set it to such a value, or unset it")
    return value
