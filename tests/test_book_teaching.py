"""The book's teaching apparatus, checked on the chapter sources: objectives, takeaways, a rerun
box naming every parameter, exercises of three kinds with collapsed, runnable solutions, valid
commands, glossary terms linked on first use, numbered figures referenced, numbers in prose glued
or justified (tests/prose_numbers.yml), and an API page covering every helpers module."""

from __future__ import annotations

import ast
import re

import jupytext
import pytest
import yaml

from helpers.book.run import declared_parameters
from tests.book_prose import ROLE, ROOT, chapters, prose_lines, without_code

CHAPTERS = chapters()
IDS = [p.stem for p in CHAPTERS]
# Glossary terms (book/glossary.md) and how a plain mention of each is spelled.
TERMS = {
    "TSS200": r"\bTSS200\b", "Beta value": r"\bbeta values?\b", "TPM": r"\bTPM\b",
    "ComBat": r"\bComBat\b", "SHAP value": r"\bSHAP\b",
    "Transfer learning": r"\btransfer learning\b", "Pseudobulk": r"\bpseudobulk\b",
    "Metacell": r"\bmetacells?\b", "Donor-level split": r"\bdonor-level splits?\b",
    "Hallmark state": r"\bhallmark states?\b", "Age residual": r"\bresiduals?\b",
    "Highly variable genes": r"\bhighly variable genes\b",
    "Spearman correlation": r"\bSpearman\b", "Planted truth": r"\bplanted truth\b",
    "Hold-out": r"\bhold-out\b", "TabTransformer": r"\bTabTransformer\b",
    "Quantile normalisation": r"\bquantile[- ]normali[sz]\w*", "MAE": r"\bMAE\b",
    "Hallmark score": r"\bhallmark scores?\b", "Hallmark space": r"\bhallmark space\b",
}
LABEL = re.compile(r"\b(?:Supplementary\s+)?(?:Tables?|Figures?|Figs?\.|Appendix|Appendices|"
                   r"Sections?)\s+[A-Z]?\d+(?:\.\d+)*(?:\s*(?:,|and|-|–|to)\s*[A-Z]?\d+"
                   r"(?:\.\d+)*)*", re.I)
NUMBER = re.compile(r"(?<![\w.\-/])[-+−]?\d[\d,]*(?:\.\d+)?(?![\w])%?")
YEAR = re.compile(r"(19|20)\d\d")


def source(path) -> str:
    return path.read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_objectives_takeaways_and_rerun_box(path):
    text = source(path)
    assert ":::{admonition} Learning objectives" in text, f"{path.name}: no learning objectives"
    assert ":::{admonition} Key takeaways" in text, f"{path.name}: no key takeaways"
    assert text.index("Learning objectives") < text.index("Key takeaways")
    assert ":::{admonition} Rerun this chapter" in text, f"{path.name}: no rerun box"
    assert f"--chapter {path.stem}" in text, f"{path.name}: the rerun command must name it"


EXERCISE = re.compile(r"^:{3,}\{exercise\} ?([^\n]*)\n:label: ([\w-]+)\n", re.M)
KINDS = ("Pen and paper", "Implementation", "Interpretation")


def exercises(text: str) -> list[tuple[str, str]]:
    """(kind, label) of every exercise: the kind is the title up to its first colon."""
    return [(title.split(":", 1)[0].strip(), label) for title, label in EXERCISE.findall(text)]


def solution_of(text: str, label: str) -> str:
    """The body of an exercise's gated solution (solution-start ... solution-end)."""
    start = re.search(rf"```\{{solution-start\}} {label}\n:class: dropdown\n```\n", text)
    assert start, f"exercise {label} has no collapsed, gated solution"
    end = text.find("```{solution-end}", start.end())
    assert end > 0, f"exercise {label}: solution-start without solution-end"
    return text[start.end():end]


def test_exercise_parser_reads_kinds_and_solutions():
    text = ("::::{exercise} Pen and paper: a sum\n:label: toy-sum\n\nAdd.\n::::\n\n"
            "```{solution-start} toy-sum\n:class: dropdown\n```\n\n"
            "```{code-cell} ipython3\n1 + 1\n```\n\n```{solution-end}\n```\n"
            ":::{exercise}\n:label: toy-bare\n:::\n")
    assert exercises(text) == [("Pen and paper", "toy-sum"), ("", "toy-bare")]
    assert "```{code-cell}" in solution_of(text, "toy-sum")
    with pytest.raises(AssertionError, match="toy-bare"):
        solution_of(text, "toy-bare")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_exercises_of_three_kinds_with_runnable_solutions(path):
    """Every chapter: a pen-and-paper, an implementation and an interpretation exercise, each
    with a collapsed solution holding a code cell that the chapter run executes (so the page
    shows its output and a broken solution fails the run)."""
    text = source(path)
    found = exercises(text)
    kinds = [kind for kind, _ in found]
    assert sorted(kinds) == sorted(KINDS), f"{path.name}: exercise kinds {kinds}, want {KINDS}"
    for _, label in found:
        body = solution_of(text, label)
        assert "```{code-cell} ipython3" in body, f"{path.name}: {label}'s solution runs no code"
        assert "remove-input" not in body, f"{path.name}: {label}'s solution hides its code"


@pytest.mark.parametrize("path", [p for p in CHAPTERS if not p.stem.startswith("appendix")],
                         ids=[i for i in IDS if not i.startswith("appendix")])
def test_rerun_box_lists_every_parameter(path):
    declared = declared_parameters(jupytext.read(path))
    box = source(path).split(":::{admonition} Rerun this chapter", 1)[1].split("\n:::", 1)[0]
    missing = [name for name in declared if f"| `{name}` |" not in box]
    assert not missing, f"{path.name}: the rerun box omits parameter(s) {missing}"
    rows = {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\| `(\w+)` \| `[^`]*` \|(.*)\|$", box, re.M)}
    blank = [name for name in declared if not rows.get(name)]
    assert not blank, f"{path.name}: the rerun box gives no meaning for {blank}"


def test_commands_in_the_book_override_declared_parameters_only():
    declared = {p.stem: set(declared_parameters(jupytext.read(p))) for p in CHAPTERS}
    command = re.compile(r"--chapter (\w+)((?:\s+--profile \w+)?(?:\s*\\?\s*-p \w+ \S+)+)")
    seen = 0
    for path in CHAPTERS:
        for chapter, overrides in command.findall(source(path)):
            assert chapter in declared, f"{path.name}: no chapter {chapter!r}"
            for key in re.findall(r"-p (\w+)", overrides):
                seen += 1
                assert key in declared[chapter], (f"{path.name}: -p {key} is not a parameter "
                                                  f"of {chapter}")
    assert seen >= len(CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_glossary_terms_linked_on_first_use(path):
    lines = [line for line in prose_lines(path) if not line.heading]
    glossary = (ROOT / "book" / "glossary.md").read_text()
    for term, pattern in TERMS.items():
        assert f"\n{term}\n" in glossary, f"glossary has no entry {term!r}"
        regex = re.compile(pattern, re.I)
        for line in lines:
            text = without_code(line.text)
            match = next((m for m in regex.finditer(text)
                          if not any(r.start() <= m.start() < r.end()
                                     and r.group("name") != "term"
                                     for r in ROLE.finditer(text))), None)
            if match is None:
                continue
            linked = any(r.start() <= match.start() < r.end() and r.group("name") == "term"
                         for r in ROLE.finditer(text))
            assert linked, (f"{path.name}: first use of {term!r} is not a glossary link: "
                            f"{line.text.strip()[:90]!r}")
            break


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_glued_figures_are_numbered_and_referenced(path):
    text = source(path)
    names = re.findall(r"```\{glue:figure\} \w+\n(?::[\w-]+:.*\n)*?:name: ([\w-]+)", text)
    figures = re.findall(r"```\{glue:figure\}", text)
    assert len(names) == len(figures), f"{path.name}: a glued figure has no :name:"
    for name in names:
        assert f"<{name}>`" in text or f"{{numref}}`{name}`" in text, (
            f"{path.name}: figure {name} is never cross-referenced")


def _published_numbers() -> set[float]:
    texts = [p.read_text() for p in (ROOT / "data" / "published").glob("*.csv")]
    papers = ROOT.parent / "shared" / "papers"
    texts += [p.read_text() for p in papers.glob("*.txt")] if papers.is_dir() else []
    found = set()
    for text in texts:
        for token in re.findall(r"[-+]?\d[\d,]*\.?\d*", text):
            try:
                found.add(float(token.replace(",", "").rstrip(".")))
            except ValueError:
                continue
    return found


def _value(token: str) -> float:
    return float(token.replace(",", "").replace("−", "-").rstrip("%"))


def _typed_numbers(path) -> list[tuple[str, str]]:
    found = []
    for line in prose_lines(path):
        text = ROLE.sub(lambda m: " " * len(m.group(0)), without_code(line.text))
        text = LABEL.sub(lambda m: " " * len(m.group(0)), text)
        for match in NUMBER.finditer(text):
            token = match.group(0).rstrip(",")
            if not YEAR.fullmatch(token):
                found.append((token, line.text.strip()))
    return found


def test_numbers_in_prose_are_glued_or_justified():
    allowed = yaml.safe_load((ROOT / "tests" / "prose_numbers.yml").read_text())
    published = _published_numbers()
    for path in CHAPTERS:
        listed = allowed.get(path.stem, {})
        unknown = set(listed) - {"published", "design", "fixed", "exercise"}
        assert not unknown, f"prose_numbers.yml, {path.stem}: unknown reason(s) {unknown}"
        ok = {token for tokens in listed.values() for token in tokens}
        typed = _typed_numbers(path)
        for token, line in typed:
            assert token in ok, (f"{path.name}: the number {token} is typed in prose; glue it "
                                 f"from the computation or justify it in "
                                 f"tests/prose_numbers.yml: {line[:90]!r}")
        stale = ok - {token for token, _ in typed}
        assert not stale, f"prose_numbers.yml, {path.stem}: no longer in the prose: {stale}"
        for token in listed.get("published", []):
            decimals = len(token.split(".")[1]) if "." in token else 0
            value = _value(token)
            assert any(round(p, decimals) == value for p in published), (
                f"{path.stem}: {token} is listed as published but is not a published value")


def test_number_rule_catches_a_typed_result(tmp_path):
    chapter = tmp_path / "demo.md"
    chapter.write_text("# Demo\n\nThe clock reaches an MAE of 4.7 years (Table 1) in 2023, "
                       "{glue:text}`mae` here and `3.2` in code.\n")
    assert [t for t, _ in _typed_numbers(chapter)] == ["4.7"]


def test_api_page_documents_every_helpers_module():
    page = (ROOT / "book" / "api.md").read_text()
    helpers = ROOT / "helpers"
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                     for p in helpers.glob("*/*.py") if p.stem != "__init__")
    missing = [m for m in modules if f".. automodule:: {m}\n" not in page]
    assert not missing, f"book/api.md does not document {missing}"
    for package in sorted(p.parent.name for p in helpers.glob("*/__init__.py")):
        assert re.search(rf"^## .*`helpers\.{package}`$", page, re.M), (
            f"book/api.md has no section for helpers.{package}")


def _glue_calls(code: str) -> list[str]:
    """Each ``glue(...)`` call in ``code``, parentheses matched."""
    calls = []
    for match in re.finditer(r"\bglue\(", code):
        depth = 0
        for end in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            if depth == 0:
                calls.append(code[match.start():end + 1])
                break
    return calls


def _code_cells(path):
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code":
            yield cell, set(cell.metadata.get("tags", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_glued_values_are_never_shown_bare(path):
    # a glue() that displays its value renders it as a grey box where the cell stood
    for cell, tags in _code_cells(path):
        if tags & {"remove-output", "remove-cell"}:
            continue
        for call in _glue_calls(cell.source):
            assert "display=False" in call, f"{path.name}: {call[:60]!r} shows its value bare"


def _plumbing(statement) -> bool:
    """Imports, and calls of glue, display, Markdown, print or the results recorder."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return True
    call = getattr(statement, "value", None)
    if not isinstance(statement, (ast.Expr, ast.Assign)) or not isinstance(call, ast.Call):
        return False
    name = ast.unparse(call.func)
    return name in {"glue", "display", "Markdown", "print", "recorder", "use_for_dataframes",
                    "use_for_figures"} or \
        name.split(".")[0] in {"rec", "logging", "warnings", "tables"}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_plumbing_cells_have_their_input_removed(path):
    for cell, tags in _code_cells(path):
        if tags & {"parameters", "remove-input", "remove-cell"}:
            continue
        body = ast.parse(cell.source).body
        plumbing = body and all(_plumbing(s) for s in body)
        assert not plumbing and "Markdown(" not in cell.source, (
            f"{path.name}: a set-up, glue, recorder or Markdown cell is shown: "
            f"{cell.source.strip()[:70]!r}; tag it remove-input")


def test_the_plumbing_rule_catches_an_import_cell():
    assert _plumbing(ast.parse("import numpy as np").body[0])
    assert _plumbing(ast.parse("glue('x', 1, display=False)").body[0])
    assert not _plumbing(ast.parse("model = ridge.fit(x, y)").body[0])
    assert _glue_calls("glue('a', f(1), display=False)\nx = 2") == [
        "glue('a', f(1), display=False)"]
