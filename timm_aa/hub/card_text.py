"""Text for a model card that we did not write (a source folder's ``config.json``, a consistency report, the
publisher's flags): free text is escaped, and what must have a form is checked against it.

:func:`card_text` makes any value one inert line of Markdown: control and format characters dropped, whitespace
(newlines included) collapsed, Markdown's special characters backslash-escaped, ``& < > " '`` written as HTML
entities, and the colon of a ``javascript:``-like scheme too; so it can form no HTML, link, image, table cell,
heading, list or front-matter line wherever the template puts it. A license, URL, tag or name is refused instead
(:mod:`timm_aa.infra.hub_names`' rules).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

MAX_TEXT = 1000  # characters of one free-text value in a card
_MARKDOWN = re.compile(r"[\\`*_{}\[\]()#!|~]")
_LINE_START = re.compile(r"^(?:(\d+)\.|([-+=]))")  # what starts a list item or a heading's underline
_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|file|livescript)\s*:")


def _visible(char: str) -> str:
    """A control character (newline, tab, NUL) as a space; other invisible ones (bidi overrides, zero-width) dropped."""
    kind = unicodedata.category(char)
    return " " if kind == "Cc" else "" if kind.startswith("C") else char


def card_text(value: Any, limit: int = MAX_TEXT) -> str:
    r"""``value`` as one line of inert Markdown (see the module docstring), at most ``limit`` characters of it.

    Example:
        >>> print(card_text('Fine-tuned on <b>pets</b> | see [x](javascript:alert(1))\n---'))
        Fine-tuned on &lt;b&gt;pets&lt;/b&gt; \| see \[x\]\(javascript&#58;alert\(1\)\) ---
        >>> print(card_text('---'), card_text('1. item'))
        \--- 1\. item
    """
    text = " ".join("".join(map(_visible, str(value))).split())  # one line: split() also splits \u2028, \x85
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _MARKDOWN.sub(r"\\\g<0>", text)
    text = _LINE_START.sub(lambda m: f"{m.group(1)}\\." if m.group(1) else f"\\{m.group(2)}", text)
    return _SCHEME.sub(lambda m: f"{m.group(1)}&#58;", html.escape(text, quote=True))
