"""Names and spellings of timm-aa 0.1 that still work for one release, each with a ``DeprecationWarning``.

One spelling of the warning (:func:`warn_deprecated`) and one module ``__getattr__`` for moved names
(:func:`moved_names`), used by the packages whose public surface changed.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

REMOVED_IN = "timm-aa 0.3"


def warn_deprecated(what: str, instead: str, stacklevel: int = 3) -> None:
    """Warn that ``what`` is deprecated and say what to use ``instead``.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_deprecated("f(x, filt)", "f(x, filt_size=K)")
        >>> str(caught[0].message)
        'f(x, filt) is deprecated and will be removed in timm-aa 0.3; use f(x, filt_size=K)'
    """
    warnings.warn(f"{what} is deprecated and will be removed in {REMOVED_IN}; use {instead}", DeprecationWarning,
                  stacklevel=stacklevel)


def moved_names(package: str, table: dict[str, tuple[str, str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that serves each old name of ``table`` (``name: (module,
    attribute, what to use instead)``) from where it lives now, with a ``DeprecationWarning``.

    Example:
        >>> getattr_ = moved_names('pkg', {'old': ('math', 'pi', 'math.pi')})
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     round(getattr_('old'), 2)
        3.14
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr, instead = table[name]
        warn_deprecated(f"{package}.{name}", instead)
        return getattr(importlib.import_module(module), attr)

    return __getattr__
