"""Where the repository's own files live (data registry, designs, published values, chapters):
one place, so that modules in every subpackage find them the same way."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
