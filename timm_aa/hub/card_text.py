"""Text for a model card that we did not write (a source folder's ``config.json``, a consistency report, the
publisher's flags): free text is escaped, and what must have a form is checked against it.

:func:`card_text` makes any value one inert line of Markdown: control and format characters dropped, whitespace
(newlines included) collapsed, Markdown's special characters backslash-escaped, ``& < > " '`` written as HTML
entities, and the colon of a ``javascript:``-like scheme too; so it can form no HTML, link, image, table cell,
heading, list or front-matter line wherever the template puts it. A license, URL, tag or name is refused instead
(the rules below, as :mod:`timm_aa.infra.rules` has them: each returns what the value must be, or None).
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
_LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\"'<>`\\|\[\]{}^]*)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


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

