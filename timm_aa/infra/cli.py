"""What every command-line script shares: a user error (TimmAAError) becomes one line on stderr and exit status 2,
in the script's flag terms (``--epochs 0`` for the library's ``epochs=0``); the rule, with ``--debug`` and the
tracebacks of bugs: docs/reliability.md, "A user error is one line".

This module imports only the standard library, so that the scripts can parse their arguments (and answer
``--help``) before torch is imported (see ``scripts/_bootstrap.py``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import logging
import os
import re
import shlex
import sys
import traceback
from collections.abc import Callable
from typing import Any

DEBUG_ENV = "TIMM_AA_DEBUG"


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug`` to a script's parser.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_debug_flag(p)
        >>> p.parse_args(['--debug']).debug
        True
    """
    parser.add_argument("--debug", action="store_true", default=False,
                        help=f"on an error, show the full traceback (also: {DEBUG_ENV}=1)")


def defaults(settings: type) -> dict[str, Any]:
    """The field defaults of a settings dataclass, for the help texts of the options that fill it.

    Example:
        >>> @dataclasses.dataclass
        ... class Settings:
        ...     epochs: int = 10
        >>> defaults(Settings)
        {'epochs': 10}
    """
    return {f.name: f.default for f in dataclasses.fields(settings) if f.default is not dataclasses.MISSING}


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> tuple[dict[str, Any], bool]:
    """Parse ``argv`` (default: ``sys.argv[1:]``): the options (with the parser's defaults) and ``--debug``. A value
    argparse refuses (not an int, a missing option) is one ``error:`` line and exit status 2, as ours are.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument('--epochs', type=int)
        >>> add_debug_flag(p)
        >>> parse(p, ['--epochs', '0'])
        ({'epochs': 0}, False)
    """
    def one_line(message: str) -> None:  # argparse's own refusals are one line too, without the usage block
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)

    parser.error = one_line  # type: ignore[method-assign]
    given = vars(parser.parse_args(argv))
    return given, bool(given.pop("debug", False))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is logged (a redirect, pytest's capture)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(debug: bool = False) -> None:
    """Show the library's progress messages (logger ``timm_aa``, INFO; DEBUG with ``debug``) on stderr.

    Example:
        >>> configure_logging()
        >>> logging.getLogger('timm_aa').level == logging.INFO
        True
    """
    logger = logging.getLogger("timm_aa")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


_VALUE = r"""(\[[^\]]*\]|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,;:)]+)"""


def in_flag_terms(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Rewrite the ``name=value`` mentions of ``parser``'s options in a library message as flags.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument('--resume'); _ = p.add_argument('--force', action='store_true')
        >>> in_flag_terms("pass resume='latest' or force=True", p)
        'pass --resume latest or --force'
        >>> _ = p.add_argument('--label', dest='labels', action='append')
        >>> in_flag_terms("labels=['a', 'b c']: give one label per model", p)
        "--label a --label 'b c': give one label per model"
    """
    if parser is None:
        return message
    # argparse has no public accessor for its actions; _actions has been stable since Python 2.7
    flags = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    if not flags:
        return message

    def flag(match: re.Match[str]) -> str:
        action, text = flags[match.group(1)], match.group(2)
        option = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true and friends: the flag alone
            return option
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        values = value if isinstance(value, (list, tuple)) else [value]  # a repeatable option, once per value
        return " ".join(f"{option} {shlex.quote(str(v))}" for v in values)

    names = "|".join(re.escape(d) for d in sorted(flags, key=len, reverse=True))
    return re.sub(rf"(?<![\w.\-/])({names})={_VALUE}", flag, message)


def run_main(job: Callable[[], object], parser: argparse.ArgumentParser | None = None, debug: bool = False) -> int:
    """Run ``job``: return 0, or 2 after printing ``error: ...`` (one line, in ``parser``'s flag terms) for a
    TimmAAError. Other exceptions propagate: they are bugs, and their traceback is wanted.

    Example:
        >>> run_main(lambda: None)
        0
    """
    # Imported here, not at the top: importing the timm_aa package loads torch (seconds), which --help must not.
    from timm_aa.errors import TimmAAError

    debug = debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")  # --debug or TIMM_AA_DEBUG=1
    configure_logging(debug)
    try:
        job()
    except TimmAAError as err:
        if debug:
            traceback.print_exc()
        line = " ".join(part.strip() for part in str(err).splitlines())
        print(f"error: {in_flag_terms(line, parser)}", file=sys.stderr)
        return 2
    return 0
