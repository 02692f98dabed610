"""Rules for values we did not choose (a flag, a field of a file we did not write, an environment variable): a
rule is a function of the value (:data:`MISSING` when a field is absent) that returns what the value must be when
it is wrong, or None. :func:`check_fields` applies rules to dotted fields of a JSON object; :mod:`.bounds` holds the
one table of every value's rule.

Standard library only: the scripts check their flags with it before torch is imported.

Example:
    >>> check_fields('config.json', {'num_classes': -1}, {'num_classes': integer(0)}, 're-export the model')
    Traceback (most recent call last):
    ...
    timm_aa.errors.TimmAAError: config.json: num_classes must be an int >= 0, got -1; re-export the model
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TimmAAError

MISSING = object()
Rule = Callable[[Any], "str | None"]
MAX_TEXT = 4096  # characters of a name, a path or a description: more is not a value we take


def shown(value: Any) -> str:
    """``value`` for a message: its repr, cut at 80 characters; ``nothing`` for a missing field.

    Example:
        >>> shown('x' * 100)[-4:], shown(MISSING)
        ('xxx…', 'nothing')
    """
    text = "nothing" if value is MISSING else repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


def optional(rule: Rule) -> Rule:
    """``rule``, or the value may be absent or null.

    Example:
        >>> optional(integer(1))(None) is None, optional(integer(1))(0)
        (True, 'must be an int >= 1')
    """
    return lambda v: None if v is MISSING or v is None else rule(v)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An int (not a bool) in ``[low, high]``.

    Example:
        >>> integer(1, 7)(9), integer(1, 7)(4), integer(1, 7)(True)
        ('must be an int in 1..7', None, 'must be an int in 1..7')
    """
    want = f"an int in {low}..{high}" if high is not None else f"an int >= {low}" if low is not None else "an int"

    def rule(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) \
            and (high is None or v <= high)
        return None if ok else f"must be {want}"

    return rule


def number(low: float, high: float, low_open: bool = False) -> Rule:
    """A finite int or float in ``[low, high]`` (``(low, high]`` with ``low_open``); nan and infinities never pass.

    Example:
        >>> number(0, 1, low_open=True)(0), number(0, 10)(float('inf')) == number(0, 10)(float('nan'))
        ('must be a finite number in (0, 1]', True)
    """
    def rule(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and \
            (v > low if low_open else v >= low) and v <= high
        return None if ok else f"must be a finite number in {'(' if low_open else '['}{low:g}, {high:g}]"

    return rule


def text(choices: Sequence[str] | None = None, max_len: int = MAX_TEXT) -> Rule:
    """A string of printable characters (no newline or other control character), 1 to ``max_len`` long, one of
    ``choices`` when given.

    Example:
        >>> text(['center', 'squash'])('middle'), text()('a\\nb'), text()('')
        ("must be one of 'center', 'squash'", 'must be one line of printable text, 1 to 4096 characters', \
'must be one line of printable text, 1 to 4096 characters')
    """
    def rule(v: Any) -> str | None:
        if choices is not None:
            return None if isinstance(v, str) and v in choices else f"must be one of {', '.join(map(repr, choices))}"
        ok = isinstance(v, str) and 0 < len(v) <= max_len and v.isprintable()
        return None if ok else f"must be one line of printable text, 1 to {max_len} characters"

    return rule


def free_text(max_len: int = MAX_TEXT) -> Rule:
    r"""Any string of at most ``max_len`` characters: free text (a description), escaped wherever it is shown.

    Example:
        >>> free_text()('two\nlines') is None, free_text(3)('four')
        (True, 'must be a string of at most 3 characters')
    """
    return lambda v: None if isinstance(v, str) and len(v) <= max_len else \
        f"must be a string of at most {max_len} characters"


def boolean(v: Any) -> str | None:
    """A JSON ``true`` or ``false``.

    Example:
        >>> boolean('yes')
        'must be true or false'
    """
    return None if isinstance(v, bool) else "must be true or false"


def mapping(v: Any) -> str | None:
    """A JSON object.

    Example:
        >>> mapping([1])
        'must be an object'
    """
    return None if isinstance(v, dict) else "must be an object"


def items(rule: Rule, length: int | None = None, max_items: int = 4096) -> Rule:
    """A list whose every item passes ``rule`` (of ``length`` items, when given; at most ``max_items``).

    Example:
        >>> items(integer(1), 3)([3, 224]), items(integer(1, 9), 2)([3, 10])
        ('must be a list of 3 items', 'item 1 must be an int in 1..9')
    """
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or (length is not None and len(v) != length) or len(v) > max_items:
            return f"must be a list{f' of {length} items' if length else f' of at most {max_items} items'}"
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
    the field, what it must be, the value and ``fix``. A field whose parent is missing or not an object is not
    checked further."""
    if not isinstance(data, dict):
        raise TimmAAError(f"{path}: must hold a JSON object, got {shown(data)}; {fix}")
    for field, rule in rules.items():
        parent = lookup(data, field.rpartition(".")[0]) if "." in field else data
        if not isinstance(parent, dict):
            continue
        value = lookup(data, field)
        wrong = rule(value)
        if wrong:
            raise TimmAAError(f"{path}: {field} {wrong}, got {shown(value)}; {fix}")
