"""Checking the values of a JSON file we did not write (an export's ``config.json``, a checkpoint's
``trainer_state.json``, a consistency report, a safetensors file's metadata) before anything uses them: each wrong
value is one :class:`~timm_aa.errors.TimmAAError` naming the file, the field, what it must be and the fix.

A rule is a function of the value (:data:`MISSING` when the field is absent) that returns what is wrong with it,
or None; :func:`check_fields` applies rules to dotted field names. The rule sets of each kind of file are here too.

Example:
    >>> check_fields('config.json', {'num_classes': -1}, {'num_classes': integer(0)}, 're-export the model')
    Traceback (most recent call last):
    ...
    timm_aa.errors.TimmAAError: config.json: num_classes must be an int >= 0, got -1; re-export the model
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TimmAAError

MISSING = object()
Rule = Callable[[Any], "str | None"]


def _got(value: Any) -> str:
    return "nothing" if value is MISSING else repr(value)[:80]


def optional(rule: Rule) -> Rule:
    """``rule``, or the field may be absent or null.

    Example:
        >>> optional(integer(1))(None) is None, optional(integer(1))(0)
        (True, 'must be an int >= 1, got 0')
    """
    return lambda v: None if v is MISSING or v is None else rule(v)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An int (not a bool) in ``[low, high]``.

    Example:
        >>> integer(1, 7)(9), integer(1, 7)(4)
        ('must be an int in 1..7, got 9', None)
    """
    want = f"an int in {low}..{high}" if high is not None else f"an int >= {low}" if low is not None else "an int"

    def rule(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) \
            and (high is None or v <= high)
        return None if ok else f"must be {want}, got {_got(v)}"

    return rule


def number(low: float, high: float, low_open: bool = False) -> Rule:
    """A finite int or float in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Example:
        >>> number(0, 1, low_open=True)(0)
        'must be a number in (0, 1], got 0'
    """
    def rule(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (v > low if low_open else v >= low) \
            and v <= high
        return None if ok else f"must be a number in {'(' if low_open else '['}{low}, {high}], got {_got(v)}"

    return rule


def text(choices: Sequence[str] | None = None) -> Rule:
    """A string, one of ``choices`` when given.

    Example:
        >>> text(['center', 'squash'])('middle')
        "must be one of 'center', 'squash', got 'middle'"
    """
    def rule(v: Any) -> str | None:
        if isinstance(v, str) and (choices is None or v in choices):
            return None
        return f"must be {'one of ' + ', '.join(map(repr, choices)) if choices else 'a string'}, got {_got(v)}"

    return rule


def boolean(v: Any) -> str | None:
    """A JSON ``true`` or ``false``.

    Example:
        >>> boolean('yes')
        "must be true or false, got 'yes'"
    """
    return None if isinstance(v, bool) else f"must be true or false, got {_got(v)}"


def mapping(v: Any) -> str | None:
    """A JSON object.

    Example:
        >>> mapping([1])
        'must be an object, got [1]'
    """
    return None if isinstance(v, dict) else f"must be an object, got {_got(v)}"


def items(rule: Rule, length: int | None = None) -> Rule:
    """A list whose every item passes ``rule`` (of ``length`` items, when given).

    Example:
        >>> items(integer(1), 3)([3, 224])
        'must be a list of 3 items, got [3, 224]'
    """
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or (length is not None and len(v) != length):
            return f"must be a list{f' of {length} items' if length else ''}, got {_got(v)}"
        for i, item in enumerate(v):
            wrong = rule(item)
            if wrong:
                return f"item {i} {wrong}"
        return None

    return check


def lookup(data: Any, field: str) -> Any:
    """The value at the dotted ``field`` of ``data``, or :data:`MISSING`.

    Example:
        >>> lookup({'a': {'b': 2}}, 'a.b'), lookup({'a': 1}, 'a.b') is MISSING
        (2, True)
    """
    for key in field.split("."):
        if not isinstance(data, dict) or key not in data:
            return MISSING
        data = data[key]
    return data


def check_fields(path: str, data: Any, rules: dict[str, Rule], fix: str) -> None:
    """Apply each rule to its dotted field of ``data``; the first wrong value is a TimmAAError naming ``path``,
    the field and ``fix``. A field whose parent is missing or not an object is not checked further."""
    if not isinstance(data, dict):
        raise TimmAAError(f"{path}: must hold a JSON object, got {_got(data)}; {fix}")
    for field, rule in rules.items():
        parent = lookup(data, field.rpartition(".")[0]) if "." in field else data
        if not isinstance(parent, dict):
            continue
        wrong = rule(lookup(data, field))
        if wrong:
            raise TimmAAError(f"{path}: {field} {wrong}; {fix}")
