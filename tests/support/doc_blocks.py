"""The literal blocks of an .rst document, as a reader sees them.

Two forms: ``.. code-block:: <language>`` directives, and ``::`` literal blocks
(a paragraph ending in ``::`` followed by an indented block). Each
:class:`Block` keeps its language (``text`` for ``::``), its text dedented, and
the line it starts on, so that a test can run every example of a document and
fail on one it does not know how to run.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import textwrap

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<language>\S+)\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One literal block of a document."""

    language: str
    text: str
    line: int
    document: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, parent_indent: int) -> tuple[str, int]:
    """The indented block after ``start`` (blank lines first skipped); returns it and
    the index after it."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    body = []
    while index < len(lines) and (not lines[index].strip()
                                  or _indent(lines[index]) > parent_indent):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    return textwrap.dedent("\n".join(body)) + "\n", index


def blocks(path: pathlib.Path) -> list[Block]:
    """Every literal block of the .rst file at ``path``, in order."""
    lines = path.read_text().splitlines()
    found = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        if directive:
            # Options of the directive (":linenos:") come first; none are used here.
            text, after = _body(lines, index + 1, len(directive["indent"]))
            found.append(Block(directive["language"], text, index + 2, path.name))
            index = after
            continue
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(".."):
            text, after = _body(lines, index + 1, _indent(line))
            if text.strip():
                found.append(Block("text", text, index + 2, path.name))
                index = after
                continue
        index += 1
    return found
