"""Markdown text for the generated reference pages: escaping, code spans, paragraphs and tables.

Shared by the command-line page (``cli.docs``) and the configuration page (``cli.docs_config``),
so it sits apart from both; it also holds the header that marks every page as generated.
"""

from __future__ import annotations

import re
import textwrap

#: The command that rewrites the pages; every page's header names it.
REGENERATE = "python -m mouse_facial_expressions.cli.docs --write"

_GENERATED = (
    "<!-- Generated from the code by `{cmd}` (make docs-ref); do not edit by hand: "
    "tests/test_docs.py fails when this page is stale. -->\n"
)

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def _escape_plain(text: str) -> str:
    """Escape Markdown/HTML syntax in text that is not a code span."""
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("|", "&#124;")
    for ch in "*_[]":
        text = text.replace(ch, "\\" + ch)
    return text


def _inline(text: str) -> str:
    """One line of prose for Markdown: code spans (`x`, ``x``) kept, everything else escaped."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos:m.start()]))
        out.append(_code(m.group(2).strip()))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    line = " ".join("".join(out).split())
    if re.match(r"(#|[-+] |\d+\. )", line):  # would start a heading or a list
        line = "\\" + line if not line[0].isdigit() else re.sub(r"^(\d+)\.", r"\1\\.", line)
    return line


def _code(text: str) -> str:
    """A code span (HTML when it holds a pipe, which would split a table cell)."""
    if "|" in text or "`" in text:
        return "<code>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;") + "</code>"
    return f"`{text}`"


def _blocks(text: str | None) -> str:
    """Description or epilog (written for a terminal) -> Markdown: prose paragraphs are joined and
    escaped; a paragraph with indented lines (a table, an example) is kept as written, in a code block."""
    if not text:
        return ""
    text = textwrap.dedent(text).strip("\n")
    out = []
    for para in re.split(r"\n\s*\n", text):
        lines = para.rstrip().splitlines()
        if any(line[:1].isspace() for line in lines):
            out.append("```text\n" + "\n".join(line.rstrip() for line in lines) + "\n```")
        else:
            out.append(_inline(" ".join(line.strip() for line in lines)))
    return "\n\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
