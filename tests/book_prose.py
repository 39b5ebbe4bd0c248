"""Reading the chapters' prose for the book-wide teaching tests: markdown cells only, with code
fences, directive options, inline code, math and MyST roles told apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
CODE = re.compile(r"`[^`]*`")
MATH = re.compile(r"\$[^$\n]+\$")
LINK_TARGET = re.compile(r"\]\([^)]*\)|https?://\S+")


@dataclass
class ProseLine:
    """One line of chapter prose, its chapter, and whether it is a heading."""

    chapter: str
    text: str
    heading: bool


def chapters() -> list[Path]:
    """Every chapter source (``notebooks/*.md``)."""
    return sorted(NOTEBOOKS.glob("*.md"))


def prose_lines(path: Path) -> list[ProseLine]:
    """The markdown lines of a chapter outside code fences and directive option lines."""
    lines = []
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "markdown":
            continue
        fence = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("```"):
                fence = not fence
                continue
            if fence or stripped.startswith(":") or stripped.startswith("|"):
                continue
            lines.append(ProseLine(path.stem, line, stripped.startswith("#")))
    return lines


def without_code(text: str) -> str:
    """The line with inline code, math and link targets blanked (roles are kept)."""
    masked = ROLE.sub(lambda m: "R" * len(m.group(0)), text)
    for pattern in (CODE, MATH, LINK_TARGET):
        for m in pattern.finditer(masked):
            text = text[:m.start()] + " " * len(m.group(0)) + text[m.end():]
    return text
