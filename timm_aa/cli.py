"""What every command-line script shares: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, ImportError)


def run_main(job: Callable[[], object], extra_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``job``; return 0, or print ``error: ...`` for a user error and return 2 (no stack trace).

    Example:
        >>> run_main(lambda: None)
        0
    """
    try:
        job()
    except USER_ERRORS + extra_errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
