"""Promoter regions of the 450k array: the TSS200 / TSS1500 probe-to-gene map and gene-level
methylation (Precious1GPT's methylation features are TSS200 beta values averaged per gene).

Distances are counted upstream on the gene's strand: for a ``+`` gene a probe at ``p`` is
``tss - p`` bases upstream, for a ``-`` gene ``p - tss``. TSS200 is 0-200 bp upstream
(``0 <= d <= 200``), TSS1500 is 200-1500 bp (``200 < d <= 1500``), following Illumina's manifest.
A probe near several TSSs of one gene takes the region of the closest one, so a probe is never
both TSS200 and TSS1500 of the same gene; it may belong to several genes (bidirectional
promoters), and then counts for each of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

REGIONS = {"TSS200": (0, 200), "TSS1500": (201, 1500)}  # inclusive bounds on integer bp
MAX_UPSTREAM = 1500


def upstream_distance(probe_pos, tss_pos, strand) -> np.ndarray:
    """Bases from each probe up to its TSS on the gene's strand (negative: downstream)."""
    probe_pos, tss_pos = np.asarray(probe_pos, np.int64), np.asarray(tss_pos, np.int64)
    return np.where(np.asarray(strand) == "+", tss_pos - probe_pos, probe_pos - tss_pos)


def region_of(distance) -> np.ndarray:
    """``"TSS200"``, ``"TSS1500"`` or ``""`` for each upstream distance."""
    distance = np.asarray(distance)
    out = np.full(distance.shape, "", dtype=object)
    for name, (low, high) in REGIONS.items():
        out[(distance >= low) & (distance <= high)] = name
    return out


def _pairs_on_chromosome(probes: pd.DataFrame, tss: pd.DataFrame) -> pd.DataFrame:
    """All (probe, TSS) pairs of one chromosome with the probe 0-1500 bp upstream."""
    order = np.argsort(probes["pos"].to_numpy(), kind="stable")
    pos = probes["pos"].to_numpy()[order]
    tss_pos = tss["tss"].to_numpy()
    plus = tss["strand"].to_numpy() == "+"
    low = np.where(plus, tss_pos - MAX_UPSTREAM, tss_pos)
    high = np.where(plus, tss_pos, tss_pos + MAX_UPSTREAM)
    start, stop = np.searchsorted(pos, low, "left"), np.searchsorted(pos, high, "right")
    counts = stop - start
    tss_index = np.repeat(np.arange(len(tss)), counts)
    probe_index = order[np.concatenate([np.arange(a, b) for a, b in zip(start, stop, strict=True)])
                        if len(tss) else np.empty(0, int)]
    return pd.DataFrame({
        "probe": probes.index.to_numpy()[probe_index],
        "gene": tss["gene"].to_numpy()[tss_index],
        "distance": upstream_distance(probes["pos"].to_numpy()[probe_index],
                                      tss_pos[tss_index], tss["strand"].to_numpy()[tss_index]),
    })


def probe_gene_map(probes: pd.DataFrame, tss: pd.DataFrame) -> pd.DataFrame:
    """Every probe 0-1500 bp upstream of a gene's TSS: columns probe, gene, distance, region.

    ``probes``: index probe id, columns ``chr``, ``pos`` (1-based); ``tss``: columns ``chr``,
    ``end`` (the 1-based TSS of a one-base BED interval), ``gene``, ``strand``.
    """
    for frame, name, cols in ((probes, "probes", ("chr", "pos")),
                              (tss, "tss", ("chr", "end", "gene", "strand"))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} table lacks field(s) {missing}")
    tss = tss.assign(tss=tss["end"].astype(np.int64))
    parts = [_pairs_on_chromosome(p, tss[tss["chr"] == chrom])
             for chrom, p in probes.groupby("chr", sort=True) if (tss["chr"] == chrom).any()]
    pairs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["probe", "gene", "distance"])
    closest = (pairs.sort_values(["probe", "gene", "distance"])
               .drop_duplicates(["probe", "gene"], keep="first"))
    closest["region"] = region_of(closest["distance"].to_numpy())
    return closest[closest["region"] != ""].reset_index(drop=True)


def map_summary(probe_map: pd.DataFrame) -> pd.DataFrame:
    """Probes, genes, pairs and probes per gene for each promoter region of a map."""
    rows = {}
    for region, part in probe_map.groupby("region"):
        per_gene = part.groupby("gene").size()
        rows[region] = {"probes": part["probe"].nunique(), "genes": part["gene"].nunique(),
                        "probe-gene pairs": len(part),
                        "median probes per gene": float(per_gene.median()),
                        "probes in more than one gene": int(
                            (part.groupby("probe").size() > 1).sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def _membership(probes: pd.Index, probe_map: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.Index]:
    """Sparse probes x genes 0/1 matrix of a map restricted to the given probes."""
    part = probe_map[probe_map["probe"].isin(probes)]
    genes = pd.Index(sorted(part["gene"].unique()), name="gene")
    rows = probes.get_indexer(part["probe"])
    cols = genes.get_indexer(part["gene"])
    matrix = sparse.csr_matrix((np.ones(len(part)), (rows, cols)),
                               shape=(len(probes), len(genes)))
    return matrix, genes


def gene_level_methylation(betas: pd.DataFrame, probe_map: pd.DataFrame,
                           region: str = "TSS200") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average each gene's ``region`` probes per sample (samples x probes in, samples x genes
    out) and say per gene how many probes it used; genes with no measured probe are listed with
    ``n_probes_measured = 0`` and left out of the matrix, never imputed. A sample whose probes of
    a gene are all missing gets NaN for that gene."""
    if region not in REGIONS:
        raise ValueError(f"unknown promoter region {region!r}; choose from {list(REGIONS)}")
    region_map = probe_map[probe_map["region"] == region]
    probes = pd.Index(betas.columns.astype(str))
    membership, genes = _membership(probes, region_map)
    values = betas.to_numpy(dtype=np.float64)
    measured = ~np.isnan(values)
    sums = (membership.T @ np.where(measured, values, 0.0).T).T
    counts = (membership.T @ measured.astype(np.float64).T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    matrix = pd.DataFrame(means.astype(np.float32), index=betas.index, columns=genes)
    in_map = region_map.groupby("gene")["probe"].nunique()
    used = pd.Series(np.asarray(membership.sum(axis=0)).ravel().astype(int), index=genes)
    coverage = pd.DataFrame({"n_probes_in_map": in_map,
                             "n_probes_measured": used.reindex(in_map.index, fill_value=0)})
    coverage["n_probes_measured"] = coverage["n_probes_measured"].astype(int)
    coverage.index.name = "gene"
    return matrix, coverage
