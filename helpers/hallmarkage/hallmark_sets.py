"""HallmarkAge's seven hallmark gene-set frameworks (Table S1): six transcribed from the paper's
Appendix L (data/hallmarks/frameworks.v1.yml) and Open Genes mechanisms built from the
registry's real Open Genes table; loading as ``{framework: {hallmark: genes}}`` and the
per-dataset detection report (hallmarks with fewer than 3 detected genes are dropped).

Run ``python -m helpers.hallmarkage.hallmark_sets`` to rewrite
data/hallmarks/opengenes_mechanisms.v1.csv.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from helpers.data import formats, loaders
from helpers.paths import DATA

HALLMARK_DIR = DATA / "hallmarks"
FRAMEWORKS_FILE = HALLMARK_DIR / "frameworks.v1.yml"
OPENGENES_FILE = HALLMARK_DIR / "opengenes_mechanisms.v1.csv"
OPENGENES = "OpenGenesFullTSV"
MIN_DETECTED = 3  # the paper's rule: a hallmark needs at least 3 detected genes
FRAMEWORK_ORDER = ("HoA2013", "HoA2023", "StemCellAging2025", OPENGENES, "OpenGenesSummary",
                   "LLMUnified", "Overlap")


def read_spec(path: Path | str = FRAMEWORKS_FILE) -> dict:
    """The transcribed frameworks file, checked for the fields the book relies on."""
    path = Path(path)
    spec = formats.read_yaml(path)
    for field in ("corrections", "aliases", "frameworks"):
        if field not in spec:
            raise formats.DataFormatError(f"{path}: lacks field {field!r}")
    for name, framework in spec["frameworks"].items():
        for key, hallmark in framework.get("hallmarks", {}).items():
            missing = [f for f in ("label", "paper_text", "genes") if f not in hallmark]
            if missing:
                raise formats.DataFormatError(
                    f"{path}: hallmark {name}/{key} lacks field(s) {missing}")
    return spec


def expand_shorthand(token: str) -> list[str]:
    """Expand the papers' family shorthand: CHEK1/2 -> CHEK1, CHEK2; DNMT1/3A/3B -> DNMT1,
    DNMT3A, DNMT3B; CDKN1A/B -> CDKN1A, CDKN1B. Each alternative replaces the base symbol's
    trailing part of the same shape (digits, letters, or digits then letters)."""
    base, *alternatives = token.split("/")
    genes = [base]
    for alternative in alternatives:
        if re.fullmatch(r"\d+", alternative):
            pattern = r"\d+$"
        elif re.fullmatch(r"[A-Z]+", alternative):
            pattern = r"[A-Z]+$"
        elif re.fullmatch(r"\d+[A-Z]+", alternative):
            pattern = r"\d+[A-Z]*$"
        else:
            raise ValueError(f"cannot expand shorthand {token!r} at {alternative!r}")
        if not re.search(pattern, base):
            raise ValueError(f"cannot expand shorthand {token!r}: {base!r} has no such suffix")
        genes.append(re.sub(pattern, alternative, base))
    return genes


def genes_from_paper_text(text: str, corrections: dict[str, str]) -> list[str]:
    """The gene list a paper cell stands for: split on commas and semicolons, correct misread
    symbols (also the base of a shorthand), then expand shorthand; order kept, duplicates
    dropped."""
    genes: list[str] = []
    for token in re.split(r"[,;]", text):
        token = token.strip()
        if not token:
            continue
        base, sep, rest = token.partition("/")
        token = corrections.get(base, base) + sep + rest
        for gene in expand_shorthand(token):
            gene = corrections.get(gene, gene)
            if gene not in genes:
                genes.append(gene)
    return genes


def opengenes_mechanisms(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Open Genes mechanisms as a long gene table (mechanism, hallmark key, gene), built from
    the registry's real Open Genes file (hash verified by the loader)."""
    table = loaders.load_opengenes_hallmarks() if table is None else table
    rows = [{"mechanism": term, "hallmark": hallmark_key(term), "gene": gene}
            for gene, terms in zip(table["gene"], table["terms"], strict=True) for term in terms]
    frame = pd.DataFrame(rows, columns=["mechanism", "hallmark", "gene"])
    return frame.sort_values(["hallmark", "gene"]).reset_index(drop=True)


def hallmark_key(label: str) -> str:
    """A column-safe hallmark key from a mechanism label: 'Stem cell exhaustion' ->
    'stem_cell_exhaustion'."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def write_opengenes_file(path: Path | str = OPENGENES_FILE) -> Path:
    """Write the Open Genes framework file the book versions in data/hallmarks/."""
    frame = opengenes_mechanisms()
    entry = loaders.load_registry()["opengenes_hallmarks"]
    header = (f"# Open Genes mechanisms (HallmarkAge framework {OPENGENES}), built by "
              f"helpers.hallmarkage.hallmark_sets from registry key opengenes_hallmarks, sha256 "
              f"{entry.sha256}. Version 1.\n")
    path = Path(path)
    path.write_text(header + frame.to_csv(index=False))
    return path


def read_opengenes_file(path: Path | str = OPENGENES_FILE) -> pd.DataFrame:
    """The versioned Open Genes framework file (comment header, then mechanism, hallmark,
    gene)."""
    frame = pd.read_csv(path, comment="#")
    missing = [c for c in ("mechanism", "hallmark", "gene") if c not in frame.columns]
    if missing:
        raise formats.DataFormatError(f"{path}: lacks field(s) {missing}")
    return frame


def load_frameworks(spec: dict | None = None, opengenes: pd.DataFrame | None = None
                    ) -> dict[str, dict[str, list[str]]]:
    """All seven frameworks as ``{framework: {hallmark: genes}}`` in the paper's order."""
    spec = read_spec() if spec is None else spec
    opengenes = read_opengenes_file() if opengenes is None else opengenes
    frameworks = {name: {key: list(h["genes"]) for key, h in fw["hallmarks"].items()}
                  for name, fw in spec["frameworks"].items()}
    frameworks[OPENGENES] = {key: list(group["gene"])
                             for key, group in opengenes.groupby("hallmark", sort=True)}
    return {name: frameworks[name] for name in FRAMEWORK_ORDER if name in frameworks}


def resolve_aliases(genes: list[str], var_names, aliases: dict[str, str]) -> list[str]:
    """Map a current HGNC symbol to the older one a dataset uses (ATP5F1A -> ATP5A1 in GENCODE
    v26 data) when only the older one is present."""
    present = set(var_names)
    return [aliases[g] if g not in present and aliases.get(g) in present else g for g in genes]


def detection_report(frameworks: dict[str, dict[str, list[str]]], var_names,
                     aliases: dict[str, str] | None = None,
                     min_detected: int = MIN_DETECTED) -> pd.DataFrame:
    """Per hallmark: genes listed (each once), genes detected in the dataset (after aliases),
    the missing genes, whether it is kept (at least ``min_detected`` detected) and the genes
    the set lists more than once (``listed_twice``; counted once)."""
    aliases = read_spec()["aliases"] if aliases is None else aliases
    present = set(var_names)
    rows = []
    for framework, hallmarks in frameworks.items():
        for hallmark, listed in hallmarks.items():
            genes = list(dict.fromkeys(listed))  # a gene listed twice counts once
            repeated = tuple(sorted(g for g, n in Counter(listed).items() if n > 1))
            resolved = list(dict.fromkeys(resolve_aliases(genes, present, aliases)))
            detected = [g for g in resolved if g in present]
            rows.append({"framework": framework, "hallmark": hallmark,
                         "n_genes": len(genes), "n_detected": len(detected),
                         "kept": len(detected) >= min_detected,
                         "detected": tuple(detected),
                         "missing": tuple(g for g in resolved if g not in present),
                         "listed_twice": repeated})
    return pd.DataFrame(rows)


def kept_gene_sets(report: pd.DataFrame) -> dict[str, list[str]]:
    """The kept hallmarks as ``{score column suffix '<framework>__<hallmark>': detected genes}``."""
    kept = report[report["kept"]]
    return {f"{f}__{h}": list(genes)
            for f, h, genes in zip(kept["framework"], kept["hallmark"], kept["detected"],
                                   strict=True)}


def readable_names(keys) -> pd.DataFrame:
    """The framework and the readable hallmark name ('stem cell exhaustion') of
    ``'<framework>__<hallmark>'`` keys (:func:`kept_gene_sets`), indexed by the keys."""
    keys = pd.Index(keys)
    parts = keys.str.split("__", n=1)
    return pd.DataFrame({"framework": parts.str[0],
                         "hallmark": parts.str[1].str.replace("_", " ")}, index=keys)


# the frameworks as a figure or table names them (the keys are file and column names)
FRAMEWORK_NAMES = {"HoA2013": "Hallmarks 2013", "HoA2023": "Hallmarks 2023",
                   "StemCellAging2025": "Stem-cell aging 2025", OPENGENES: "Open Genes",
                   "OpenGenesSummary": "Open Genes summary", "LLMUnified": "LLM-unified",
                   "Overlap": "Overlap"}


def display_name(key: str) -> str:
    """A hallmark as a reader names it: ``'HoA2013__loss_of_proteostasis'`` -> 'loss of
    proteostasis (Hallmarks 2013)'; a ``score_`` prefix is dropped."""
    framework, _, hallmark = key.removeprefix("score_").partition("__")
    if not hallmark:
        return key.replace("_", " ")
    return f"{hallmark.replace('_', ' ')} ({FRAMEWORK_NAMES.get(framework, framework)})"


def identical_sets(gene_sets: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Pairs of gene sets with exactly the same genes (after detection two hallmarks can
    become one feature twice)."""
    names = list(gene_sets)
    members = [frozenset(gene_sets[n]) for n in names]
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))
            if members[i] == members[j]]


def framework_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Per framework: hallmarks, kept hallmarks, gene-list sizes (Table S1's counts)."""
    grouped = report.groupby("framework", sort=False)
    return pd.DataFrame({
        "hallmarks": grouped.size(),
        "kept (>= 3 detected)": grouped["kept"].sum(),
        "genes per hallmark (min-max)": grouped["n_genes"].agg(
            lambda s: f"{s.min()}-{s.max()}"),
        "median genes": grouped["n_genes"].median(),
        "distinct genes": grouped["detected"].agg(lambda s: len(set().union(*map(set, s)))),
    })



def corrected_tokens(spec: dict | None = None) -> dict[str, str]:
    """The misread symbols that occur in the transcribed paper text, with their correction."""
    spec = read_spec() if spec is None else spec
    tokens = {part.strip() for fw in spec["frameworks"].values() for h in fw["hallmarks"].values()
              for token in re.split(r"[,;]", h["paper_text"]) for part in token.split("/")}
    return {t: spec["corrections"][t] for t in sorted(tokens) if t in spec["corrections"]}


if __name__ == "__main__":
    print(write_opengenes_file(Path(sys.argv[1]) if len(sys.argv) > 1 else OPENGENES_FILE))
