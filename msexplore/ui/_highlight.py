"""Code to HTML for ``CodeView``: one ``<div class="msx-line">`` per line, tokens as pygments' classed spans.

pygments' ``HtmlFormatter`` does the tokens: CSS classes with the ``msx-t-`` prefix (``msx-t-k`` for a keyword,
``msx-t-s2`` for a string...), never inline colours, and every line closes its own spans. ``code_view.css``
colours the classes with JupyterLab's ``--jp-mirror-editor-*`` variables, so the code follows the light and dark
themes. This module only wraps each line in a numbered div, so the browser can mark lines by number.
"""

from __future__ import annotations

import functools
import html

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = ["code_html", "static_code_html", "lexer_for", "diff_kind", "PREFIX"]

PREFIX = "msx-t-"
_FORMATTER = HtmlFormatter(nowrap=True, classprefix=PREFIX)  # bare spans, one line of HTML per line of code
# A saved notebook's static copy has no stylesheet: pygments' own colours, inline.
_INLINE = HtmlFormatter(nowrap=True, noclasses=True, style="default")


@functools.lru_cache(maxsize=16)
def lexer_for(language: str) -> Lexer:
    """The pygments lexer for ``language`` (``"python"``, ``"text"``...); ValueError naming it if unknown."""
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        raise ValueError(
            f"language {language!r} is not a pygments lexer name; use 'python' (TVMScript, traces) or 'text'"
        ) from None


def _token_lines(text: str, language: str) -> list[str]:
    """The HTML of each line of ``text``: exactly as many lines as ``text`` has (the formatter ends with one more)."""
    n = text.count("\n") + 1
    return (highlight(text, lexer_for(language), _FORMATTER).split("\n") + [""] * n)[:n]


def diff_kind(line: str) -> str:
    """``header`` (---/+++), ``hunk`` (@@), ``add`` (+), ``del`` (-) or ``context``."""
    if line.startswith(("--- ", "+++ ")) or line in ("---", "+++"):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "context"


def _line_div(number: int, inner: str, extra_class: str = "") -> str:
    cls = f"msx-line {extra_class}".strip()
    return (
        f'<div class="{cls}" data-line="{number}"><span class="msx-ln">{number}</span>'
        f'<span class="msx-src">{inner}</span></div>'
    )


def code_html(code: str, language: str = "python", mode: str = "code") -> str:
    """The HTML lines of ``code``: highlighted as ``language``; in ``"diff"`` mode a unified diff, lines classed
    ``msx-diff-add`` / ``msx-diff-del`` / ``msx-diff-hunk`` / ``msx-diff-header`` and their text highlighted."""
    if not code:
        return ""
    if mode == "code":
        return "".join(_line_div(n, inner) for n, inner in enumerate(_token_lines(code, language), start=1))
    if mode != "diff":
        raise ValueError(f"mode must be 'code' or 'diff', got {mode!r}")
    rows = []
    for n, line in enumerate(code.split("\n"), start=1):
        kind = diff_kind(line)
        if kind in ("header", "hunk"):
            inner = html.escape(line, quote=False)
        else:
            sign, rest = (line[:1], line[1:]) if line[:1] in ("+", "-", " ") else ("", line)
            body = _token_lines(rest, language)[0] if rest else ""
            inner = f'<span class="msx-diff-sign">{html.escape(sign or " ")}</span>{body}'
        rows.append(_line_div(n, inner, f"msx-diff-{kind}"))
    return "".join(rows)


def static_code_html(text: str, language: str = "python", mode: str = "code", *, max_lines: int = 400) -> str:
    """``text`` as a ``<pre>`` with inline colours (a diff coloured as a diff), cut at ``max_lines`` lines."""
    lines = text.split("\n")
    cut = len(lines) > max_lines
    text = "\n".join(lines[:max_lines])
    lexer = get_lexer_by_name("diff") if mode == "diff" else lexer_for(language)
    more = f"\n# … {len(lines) - max_lines} more lines" if cut else ""
    return f'<pre class="msx-pre">{highlight(text, lexer, _INLINE)}{html.escape(more)}</pre>'
