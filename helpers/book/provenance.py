"""Tables about the data itself: what each registry file is, where it comes from, and whether
its hash was verified; one-line summaries of each real dataset; the published values file.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from helpers.data import loaders
from helpers.data.registry import fetch, load_registry, mirror_dir, package_file
from helpers.paths import DATA

PUBLISHED_VALUES = DATA / "published" / "values.csv"
_RAW = re.compile(r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)")


def source_label(url: str) -> str:
    """``owner/repo @ commit7`` for a raw GitHub URL, else the URL itself."""
    match = _RAW.fullmatch(url)
    if not match:
        return url
    repo, commit, _ = match.groups()
    return f"{repo} @ {commit[:7]}"


def registry_table(verify: bool = True) -> pd.DataFrame:
    """One row per registry file: what, source, licence, size, hash, verified and from where."""
    mirror = mirror_dir()
    rows = []
    for entry in load_registry().values():
        row = {"key": entry.key, "what": entry.title, "source": source_label(entry.url),
               "license": entry.license,
               "size_kB": round(entry.size / 1024, 1) if entry.size else None,
               "sha256": entry.sha256[:12] + "…" if entry.sha256 else "not pinned yet",
               "data": "real"}
        if verify and entry.sha256 is None:  # the papers' own sources: no offline copy
            row["hash_verified"], row["read_from"] = False, "not available offline"
        elif verify:
            path = fetch(entry.key)  # raises if missing or if the hash differs
            row["hash_verified"] = entry.sha256 is not None
            row["read_from"] = ("installed package" if path == package_file(entry)
                                else "offline mirror" if mirror and mirror in path.parents
                                else "cache")
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")


def published_values(paper: str | None = None) -> pd.DataFrame:
    """The papers' published numbers (comparison column only), optionally for one paper."""
    table = pd.read_csv(PUBLISHED_VALUES, comment="#")
    return table if paper is None else table[table["paper"] == paper].reset_index(drop=True)


def _row(features: str, values: str, samples="", ages="") -> dict:
    return {"samples": samples, "features": features, "ages": ages, "values": values}


def describe_methylation(adata) -> dict:
    """Samples, CpGs, age groups and beta range of a methylation AnnData."""
    ages = adata.obs["age"]
    return _row(f"{adata.n_vars:,} CpGs",
                f"beta {adata.X.min():.3f}-{adata.X.max():.3f}, no missing values",
                samples=adata.n_obs,
                ages=f"{int((ages == 0).sum())} newborns (age 0); {int((ages > 0).sum())} aged "
                     f"{ages[ages > 0].min():.0f}-{ages.max():.0f}")


def describe_expression(adata) -> dict:
    """Samples, genes, sex and age brackets of an expression AnnData."""
    brackets = adata.obs["age_bracket"].value_counts().sort_index()
    sexes = adata.obs["sex"].value_counts()
    library = float(np.median(adata.X.sum(axis=1))) / 1e6
    return _row(f"{adata.n_vars:,} genes (Ensembl ids)",
                f"read counts, median library size {library:.1f} M reads; "
                + ", ".join(f"{s}: {n}" for s, n in sexes.items()),
                samples=adata.n_obs,
                ages="brackets " + ", ".join(f"{b}: {n}" for b, n in brackets.items()))


def _counts(series: pd.Series) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in series.value_counts().items())


def _with_terms(table: pd.DataFrame) -> int:
    return int((table["terms"].str.len() > 0).sum())


def dataset_overview(methylation, expression) -> pd.DataFrame:
    """One row per real dataset of the registry: the two given cohorts, then the annotation and
    gene-set files (loaded here): samples, features, ages and values."""
    locations, islands = loaders.load_hm450_locations(), loaders.load_hm450_islands()
    tss, gencode = loaders.load_refseq_tss(), loaders.load_gencode_v26()
    reactome = loaders.load_reactome_pathways()
    mechanisms, diseases = loaders.load_opengenes_hallmarks(), loaders.load_opengenes_diseases()
    rows = {
        "GSE30870 blood methylomes": describe_methylation(methylation),
        "GTEx v8 skeletal muscle": describe_expression(expression),
        "450k probe locations (hg19)": _row(
            f"{len(locations):,} probes",
            f"{locations['chr'].nunique()} chromosomes; strand {_counts(locations['strand'])}"),
        "450k CpG-island relation": _row(f"{len(islands):,} probes",
                                         _counts(islands["Relation_to_Island"])),
        "RefSeq TSS (hg19)": _row(f"{len(tss):,} TSSs of {tss['gene'].nunique():,} genes",
                                  f"strand {_counts(tss['strand'])}"),
        "GENCODE v26 genes": _row(
            f"{len(gencode):,} genes",
            f"{(gencode['geneType'] == 'protein coding').sum():,} protein coding"),
        "Reactome pathways": _row(f"{len(reactome):,} pathways",
                                  f"median {reactome['n_genes'].median():.0f} genes per pathway"),
        "Open Genes mechanisms": _row(
            f"{len(mechanisms):,} genes",
            f"{_with_terms(mechanisms):,} genes with at least one of "
            f"{mechanisms['terms'].explode().nunique()} mechanisms"),
        "Open Genes diseases": _row(f"{len(diseases):,} genes",
                                    f"{_with_terms(diseases):,} genes with a disease"),
    }
    overview = pd.DataFrame.from_dict(rows, orient="index")
    overview.insert(0, "data", "real")
    return overview


def published_table(name: str) -> pd.DataFrame:
    """A published table of the papers (``data/published/<name>.csv``), comparison only."""
    path = PUBLISHED_VALUES.parent / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in PUBLISHED_VALUES.parent.glob("*.csv"))
        raise FileNotFoundError(f"no published table {name!r} ({path}); known: {known}")
    return pd.read_csv(path, comment="#")


def with_differences(table: pd.DataFrame, metrics: list[str], lead: list[str]
                     ) -> pd.DataFrame:
    """Add ``<metric> difference`` (ours - paper) after each ``<metric> (ours)`` / ``(paper)``
    pair; columns in order: ``lead``, the pairs, the others, ``data``."""
    table = table.copy()
    for metric in metrics:
        table[f"{metric} difference"] = table[f"{metric} (ours)"] - table[f"{metric} (paper)"]
    paired = [f"{m} {s}" for m in metrics for s in ("(ours)", "(paper)", "difference")]
    rest = [c for c in table.columns if c not in (*lead, *paired, "data")]
    return table[[*lead, *paired, *rest, *(["data"] if "data" in table.columns else [])]]


def beside_published(ours: pd.DataFrame, published: pd.DataFrame, keys: list[str],
                     metrics: list[str]) -> pd.DataFrame:
    """Our table with the paper's value of each metric and the difference beside ours, matched
    on ``keys``; our other columns (intervals, counts, ``data``) are kept."""
    merged = ours.merge(published[[*keys, *metrics]], on=keys, how="left",
                        suffixes=(" (ours)", " (paper)"))
    return with_differences(merged, metrics, keys)


def published_metrics(table: str) -> pd.DataFrame:
    """Precious1GPT's Table 1 or Supplementary Table 1 as metric x modality (``value`` or
    ``value +/- sd`` text for the cross-validation)."""
    rows = published_table("precious1gpt_table1")
    rows = rows[rows["table"] == table]
    if rows.empty:
        raise ValueError(f"no published rows for {table!r}")
    text = rows.apply(lambda r: f"{r['value']:g}" if pd.isna(r["sd"])
                      else f"{r['value']:.3f} ± {r['sd']:.3f}", axis=1)
    return (rows.assign(text=text).pivot(index="metric", columns="modality", values="text")
            .reindex(index=rows["metric"].unique(), columns=rows["modality"].unique()))
