"""Reading the hallmark clocks (HallmarkAge Appendix J, D.9, Table 2): gene weights through
the PCA loadings, near-zero hallmark coefficients at fractions of the largest, residuals
carried from metacells to cells, residual-stratified hallmark clusters and the genes that
track the residual (candidate missing programs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from helpers.hallmarkage import pseudobulk
from helpers.hallmarkage.hallmark_clocks import Clock


def gene_weights(clock: Clock) -> pd.Series:
    """Weight of every HVG (per SD of its scaled expression) in a baseline or hybrid clock:
    the ridge's PC coefficients pulled back through the PCA loadings (Figure S10)."""
    if clock.pca is None:
        raise ValueError(f"the {clock.kind} clock has no gene features")
    weights = clock.pca.components_.T @ clock.ridge.coef_[:clock.n_pcs]
    return pd.Series(weights, index=clock.hvgs, name="weight")


def hallmark_coefficients(clock: Clock, names) -> pd.Series:
    """Coefficient of every hallmark feature (per SD of its metacell mean score)."""
    if clock.hallmark_scaler is None:
        raise ValueError(f"the {clock.kind} clock has no hallmark features")
    return pd.Series(clock.ridge.coef_[clock.n_pcs:], index=list(names), name="coefficient")


def top_bottom(weights: pd.Series, n: int = 10) -> pd.DataFrame:
    """The ``n`` most positive and ``n`` most negative weights, largest first."""
    ordered = weights.sort_values(ascending=False)
    return pd.concat([ordered.head(n), ordered.tail(n)]).rename("weight").to_frame()


def near_zero(coefficients: pd.Series, fraction: float) -> pd.Series:
    """Hallmarks whose absolute coefficient is at most ``fraction`` of the largest (Figures
    S11-S13)."""
    limit = fraction * coefficients.abs().max()
    return coefficients[coefficients.abs() <= limit].sort_values()


def null_diagnostic(coefficients: pd.Series, status: pd.Series,
                    fractions=(0.01, 0.05, 0.10)) -> pd.DataFrame:
    """Planted truth against the near-zero diagnostic: per threshold, how many hallmarks fall
    below it, how many of them are designed nulls, and how many nulls there are; plus the
    AUROC of a small absolute coefficient for telling nulls from age-driven hallmarks."""
    status = status.reindex(coefficients.index)
    is_null = status == "null"
    rows = []
    for f in fractions:
        below = near_zero(coefficients, f).index
        rows.append({"threshold (share of max |coef|)": f"{f:.0%}", "near-zero": len(below),
                     "of which planted null": int(is_null[below].sum()),
                     "planted nulls": int(is_null.sum()),
                     "of which planted age-driven": int(status[below].isin(["up", "down"]).sum())})
    driven = status.isin(["up", "down"])
    scored = is_null | driven
    auroc = (roc_auc_score(is_null[scored], -coefficients.abs()[scored])
             if is_null.any() and driven.any() else np.nan)
    return pd.DataFrame(rows).assign(**{"AUROC (null vs driven, small |coef|)": auroc})


def cell_residuals(plan: sp.csr_matrix, residual: np.ndarray) -> np.ndarray:
    """Each cell's residual: the draw-weighted mean residual of the metacells it went into
    (NaN for a cell that no metacell drew)."""
    drawn = np.asarray(plan.sum(axis=0)).ravel()
    total = plan.T @ np.asarray(residual, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(drawn > 0, total / drawn, np.nan)


def residual_class(mean_residual: float) -> str:
    """Table 2's reading: a positive residual (predicted younger than one is) is protective."""
    return "Protective (anti-aging)" if mean_residual > 0 else "Actionable (pro-aging)"


def residual_clusters(obs: pd.DataFrame, residual: np.ndarray, summary: pd.DataFrame,
                      key: str = "hallmark_cluster") -> pd.DataFrame:
    """Table 2: per hallmark-space cluster its mean cell residual, residual class and donors,
    beside the cluster summary (main cell type, top hallmarks, markers); the mechanism label
    joins the main cell type and the top hallmark, read from the data, not written by hand."""
    frame = pd.DataFrame({key: obs[key].astype(str).to_numpy(), "residual": residual,
                          "donor": obs["donor"].astype(str).to_numpy()}).dropna()
    grouped = frame.groupby(key)
    table = pd.DataFrame({"mean residual": grouped["residual"].mean(),
                          "donors": grouped["donor"].nunique()})
    table["residual class"] = table["mean residual"].map(residual_class)
    summary = summary.set_axis(summary.index.astype(str))
    table["mechanism label"] = (summary["main cell type"].astype(str) + " / "
                                + summary["top hallmarks"].str.split(", ").str[0])
    return table.join(summary[["cells", "main cell type", "its share", "top hallmarks",
                               "marker genes"]])


def residual_genes(metacells: pseudobulk.Metacells, residual: np.ndarray,
                   hallmark_genes: set[str], min_mean_count: float = 1.0,
                   within: tuple[str, ...] = ("dataset", "batch")) -> pd.DataFrame:
    """Every gene's Pearson r with the metacell residual (log-normalised over all genes), both
    centred within each dataset and batch so that cell-type composition does not pass for a
    program, and whether any hallmark set lists the gene; genes outside the sets that track
    the residual are the candidate missing programs (D.9). Genes averaging fewer than
    ``min_mean_count`` counts per metacell are skipped."""
    keep = metacells.counts.mean(axis=0) >= min_mean_count
    genes = metacells.genes[keep]
    x = pd.DataFrame(pseudobulk.log_normalise(metacells.counts)[:, keep].astype(float))
    r = pd.Series(np.asarray(residual, float))
    strata = [metacells.obs[c].astype(str).to_numpy() for c in within]
    xc = (x - x.groupby(strata).transform("mean")).to_numpy()
    rc = (r - r.groupby(strata).transform("mean")).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (xc.T @ rc) / np.sqrt((xc ** 2).sum(axis=0) * (rc ** 2).sum())
    table = pd.DataFrame({"gene": genes, "r with residual": corr,
                          "in a hallmark set": genes.isin(list(hallmark_genes))})
    table = table.dropna().sort_values("r with residual", key=np.abs, ascending=False)
    return table.reset_index(drop=True)


def nomination_recovery(table: pd.DataFrame, planted: set[str], top: int = 25) -> dict:
    """How well genes outside the hallmark sets, ranked by absolute r with the residual, recover a
    planted missing program: its genes in the top ``top``, precision and AUROC."""
    outside = table[~table["in a hallmark set"]]
    hit = outside["gene"].isin(list(planted))
    head = hit.head(top)
    return {"candidates ranked": len(outside), "planted genes ranked": int(hit.sum()),
            f"planted in top {top}": int(head.sum()), f"precision at {top}": head.mean(),
            "AUROC": roc_auc_score(hit, outside["r with residual"].abs())
            if 0 < hit.sum() < len(hit) else np.nan}


def residual_gene_association(values: pd.DataFrame, residual: pd.Series,
                              age: pd.Series | None = None) -> pd.DataFrame:
    """Spearman's rho of every gene (columns of ``values``, samples as rows) with the held-out
    residual (chronological minus predicted age), its p and BH FDR. With ``age``, both the
    gene and the residual are first freed of their linear trend with age, so that a gene is not
    nominated merely for tracking age, which every residual of a shrunken clock does."""
    from scipy import stats

    residual = residual.reindex(values.index).astype(float)
    if residual.isna().any():
        raise ValueError(f"{int(residual.isna().sum())} samples have no residual")
    ranks = values.rank().to_numpy(float)
    target = residual.rank().to_numpy(float)
    if age is not None:
        a = np.column_stack([np.ones(len(values)), age.reindex(values.index).rank().to_numpy()])
        project = a @ np.linalg.pinv(a)
        ranks, target = ranks - project @ ranks, target - project @ target
    ranks, target = ranks - ranks.mean(0), target - target.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ranks.T @ target) / np.sqrt((ranks ** 2).sum(0) * (target ** 2).sum())
    n = len(values) - (1 if age is not None else 0)
    t = rho * np.sqrt((n - 2) / np.clip(1 - rho ** 2, 1e-12, None))
    p = 2 * stats.t.sf(np.abs(t), n - 2)
    p = np.where(np.isfinite(p), p, 1.0)
    return pd.DataFrame({"rho": rho, "p": p,
                         "fdr": stats.false_discovery_control(p, method="bh")},
                        index=values.columns).sort_values("p")
