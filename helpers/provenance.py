"""Tables about the data itself: what each registry file is, where it comes from, and whether
its hash was verified; one-line summaries of each real dataset; the published values file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.registry import fetch, load_registry, mirror_dir

PUBLISHED_VALUES = Path(__file__).resolve().parent.parent / "data" / "published" / "values.csv"
_RAW = re.compile(r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)")


def source_label(url: str) -> str:
    """``owner/repo @ commit7 : path`` for a raw GitHub URL, else the URL itself."""
    match = _RAW.fullmatch(url)
    if not match:
        return url
    repo, commit, path = match.groups()
    return f"{repo} @ {commit[:7]} : {path}"


def registry_table(verify: bool = True) -> pd.DataFrame:
    """One row per registry file: what, source, licence, size, hash, verified and from where."""
    mirror = mirror_dir()
    rows = []
    for entry in load_registry().values():
        row = {"key": entry.key, "what": entry.description, "source": source_label(entry.url),
               "license": entry.license, "size_kB": round(entry.size / 1024, 1),
               "sha256": entry.sha256[:12] + "...", "data": "real"}
        if verify:
            path = fetch(entry.key)  # raises if missing or if the hash differs
            row["hash_verified"] = True
            row["read_from"] = "offline mirror" if mirror and mirror in path.parents else "cache"
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")


def published_values(paper: str | None = None) -> pd.DataFrame:
    """The papers' published numbers (comparison column only), optionally for one paper."""
    table = pd.read_csv(PUBLISHED_VALUES, comment="#")
    return table if paper is None else table[table["paper"] == paper].reset_index(drop=True)


def describe_methylation(adata) -> dict:
    """Samples, CpGs, age groups and beta range of a methylation AnnData."""
    ages = adata.obs["age"]
    return {"samples": adata.n_obs, "features": f"{adata.n_vars:,} CpGs",
            "ages": f"{int((ages == 0).sum())} newborns (age 0); {int((ages > 0).sum())} aged "
                    f"{ages[ages > 0].min():.0f}-{ages.max():.0f}",
            "values": f"beta {adata.X.min():.3f}-{adata.X.max():.3f}, no missing values"}


def describe_expression(adata) -> dict:
    """Samples, genes, sex and age brackets of an expression AnnData."""
    brackets = adata.obs["age_bracket"].value_counts().sort_index()
    sexes = adata.obs["sex"].value_counts()
    return {"samples": adata.n_obs, "features": f"{adata.n_vars:,} genes (Ensembl ids)",
            "ages": "brackets " + ", ".join(f"{b}: {n}" for b, n in brackets.items()),
            "values": f"read counts, median library size "
                      f"{float(np.median(adata.X.sum(axis=1))) / 1e6:.1f} M reads; "
                      + ", ".join(f"{s}: {n}" for s, n in sexes.items())}
