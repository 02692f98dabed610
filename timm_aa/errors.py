"""The one exception type for mistakes a user can fix: a bad argument, file, folder or model spec.

Library code raises :class:`TimmAAError` with a message in the library's own terms (argument names, file
paths); the command-line scripts catch it (and only it) and print one line, adding their flag names.
It subclasses ``ValueError``, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class TimmAAError(ValueError):
    """A user error: the message names the problem and the fix.

    Example:
        >>> try:
        ...     raise TimmAAError("filt_size must be in 1..7, got 9")
        ... except ValueError as err:
        ...     print(err)
        filt_size must be in 1..7, got 9
    """


def first_line(err: BaseException, default: str = "") -> str:
    r"""The first line of ``err``'s message (to quote inside a one-line error), or ``default`` when it is empty.

    Example:
        >>> first_line(RuntimeError("shape mismatch\nat layer 3")), first_line(RuntimeError(""), "RuntimeError")
        ('shape mismatch', 'RuntimeError')
    """
    text = str(err).strip()
    return text.splitlines()[0] if text else default
