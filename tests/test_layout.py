"""The package's architecture, checked on the import statements: science never imports the book
machinery, the data layer imports no science, shared science imports neither paper, and the two
papers' pipelines do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
SUBPACKAGES = ("data", "common", "precious1gpt", "hallmarkage", "book")
# subpackage -> subpackages it must never import
FORBIDDEN = {
    "data": {"common", "precious1gpt", "hallmarkage", "book"},
    "common": {"precious1gpt", "hallmarkage", "book"},
    "precious1gpt": {"hallmarkage", "book"},
    "hallmarkage": {"precious1gpt", "book"},
    "book": set(),
}


def imported_modules(path: Path) -> set[str]:
    """Every ``helpers...`` module a file imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("helpers")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("helpers"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def violations(root: Path = HELPERS) -> list[str]:
    """``file imports module`` for every import that goes against :data:`FORBIDDEN`."""
    bad = []
    for sub, banned in FORBIDDEN.items():
        for path in sorted((root / sub).rglob("*.py")):
            for module in sorted(imported_modules(path)):
                parts = module.split(".")
                if len(parts) > 1 and parts[1] in banned:
                    bad.append(f"{path.relative_to(root.parent)} imports {module}")
    return bad


def test_every_module_lives_in_a_subpackage():
    loose = sorted(p.name for p in HELPERS.glob("*.py") if p.name not in ("__init__.py",
                                                                          "paths.py"))
    assert not loose, f"modules outside the subpackages: {loose}"
    assert sorted(p.name for p in HELPERS.iterdir() if (p / "__init__.py").is_file()) == sorted(
        SUBPACKAGES)


def test_no_module_imports_against_the_layering():
    assert violations() == []


def test_the_layering_check_catches_an_upward_import(tmp_path):
    for sub in SUBPACKAGES:
        (tmp_path / "helpers" / sub).mkdir(parents=True)
    (tmp_path / "helpers" / "data" / "bad.py").write_text(
        "def f():\n    from helpers.book import results\n")
    (tmp_path / "helpers" / "hallmarkage" / "worse.py").write_text(
        "import helpers.book.run\nfrom helpers.precious1gpt.simulator import simulate\n")
    found = violations(tmp_path / "helpers")
    assert found == ["helpers/data/bad.py imports helpers.book",
                     "helpers/data/bad.py imports helpers.book.results",
                     "helpers/hallmarkage/worse.py imports helpers.book.run",
                     "helpers/hallmarkage/worse.py imports helpers.precious1gpt.simulator",
                     "helpers/hallmarkage/worse.py imports "
                     "helpers.precious1gpt.simulator.simulate"]


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_each_subpackage_says_what_it_is_for(sub):
    module = ast.parse((HELPERS / sub / "__init__.py").read_text())
    assert len(ast.get_docstring(module) or "") > 80
