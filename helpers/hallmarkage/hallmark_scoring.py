"""Hallmark scoring (HallmarkAge Appendix D.3): scanpy's ``score_genes`` per hallmark, and a
one-pass scorer that gives the same scores for many gene sets while computing the gene means
and expression bins once and all scores with one sparse matrix product.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp


def score_with_scanpy(adata: ad.AnnData, gene_sets: dict[str, list[str]], prefix: str = "score",
                      ctrl_size: int = 50, n_bins: int = 25, random_state: int = 0
                      ) -> pd.DataFrame:
    """The reference: ``sc.tl.score_genes`` once per gene set (columns ``<prefix>_<name>``)."""
    out = {}
    for name, genes in gene_sets.items():
        column = f"{prefix}_{name}"
        sc.tl.score_genes(adata, genes, ctrl_size=ctrl_size, n_bins=n_bins,
                          random_state=random_state, score_name=column, use_raw=False)
        out[column] = adata.obs.pop(column).to_numpy()
    return pd.DataFrame(out, index=adata.obs_names)


def gene_means(X) -> np.ndarray:
    """Mean expression of each gene over cells, in float64 (as scanpy computes it)."""
    if sp.issparse(X):
        if np.isnan(X.data).any():
            raise ValueError("expression matrix holds NaN; score_gene_sets does not skip them")
        return np.asarray(X.sum(axis=0, dtype=np.float64)).ravel() / X.shape[0]
    if np.isnan(X).any():
        raise ValueError("expression matrix holds NaN; score_gene_sets does not skip them")
    return X.mean(axis=0, dtype=np.float64)


def expression_bins(means: pd.Series, n_bins: int) -> pd.Series:
    """scanpy's expression bins: rank (method 'min') integer-divided by round(n / (n_bins-1))."""
    means = means[np.isfinite(means)]
    n_items = int(np.round(len(means) / (n_bins - 1)))
    return means.rank(method="min") // n_items


def control_genes(genes: pd.Index, bins: pd.Series, ctrl_size: int, random_state: int
                  ) -> pd.Index:
    """The control genes ``score_genes`` draws for one gene set: per bin of the set's genes,
    ``ctrl_size`` genes of that bin sampled with the legacy NumPy state of ``random_state``
    (reseeded per set, as scanpy does), minus the set's own genes."""
    rng = np.random.RandomState(random_state)
    chosen = pd.Index([], dtype="string")
    for cut in np.unique(bins.loc[genes]):
        candidates = bins.index[bins.to_numpy() == cut]
        if ctrl_size < len(candidates):
            candidates = candidates[rng.choice(len(candidates), size=ctrl_size, replace=False)]
        chosen = chosen.union(candidates.difference(genes))
    return chosen


def weight_matrix(gene_sets: dict[str, list[str]], var_names: pd.Index, bins: pd.Series,
                  ctrl_size: int, random_state: int) -> sp.csc_matrix:
    """genes x sets weights: +1/n over a set's genes, -1/m over its m control genes; X @ W is
    every score at once."""
    rows, cols, values = [], [], []
    for j, genes in enumerate(gene_sets.values()):
        genes = pd.Index(genes).intersection(var_names)
        if len(genes) == 0:
            raise ValueError(f"gene set {list(gene_sets)[j]!r} has no gene in the data")
        controls = control_genes(genes, bins, ctrl_size, random_state)
        if len(controls) == 0:
            raise ValueError(f"gene set {list(gene_sets)[j]!r}: no control genes found")
        for members, weight in ((genes, 1.0 / len(genes)), (controls, -1.0 / len(controls))):
            rows.extend(var_names.get_indexer(members))
            cols.extend([j] * len(members))
            values.extend([weight] * len(members))
    return sp.csc_matrix((values, (rows, cols)), shape=(len(var_names), len(gene_sets)))


def score_weights(adata: ad.AnnData, gene_sets: dict[str, list[str]], ctrl_size: int = 50,
                  n_bins: int = 25, random_state: int = 0) -> sp.csc_matrix:
    """The genes x sets weights of :func:`score_gene_sets`: gene means and bins computed once
    over ``adata.X``, control genes drawn as scanpy draws them."""
    var_names = pd.Index(adata.var_names.astype(str))
    bins = expression_bins(pd.Series(gene_means(adata.X), index=var_names), n_bins)
    return weight_matrix(gene_sets, var_names, bins, ctrl_size, random_state)


def score_gene_sets(adata: ad.AnnData, gene_sets: dict[str, list[str]], prefix: str = "score",
                    ctrl_size: int = 50, n_bins: int = 25, random_state: int = 0
                    ) -> pd.DataFrame:
    """Scores equal to :func:`score_with_scanpy` (same control genes, same random state) for
    all gene sets in one pass: gene means and bins once, then one sparse product X @ W."""
    weights = score_weights(adata, gene_sets, ctrl_size, n_bins, random_state)
    scores = adata.X @ weights
    scores = scores.toarray() if sp.issparse(scores) else np.asarray(scores)
    frame = pd.DataFrame(scores, index=adata.obs_names,
                         columns=[f"{prefix}_{name}" for name in gene_sets])
    frame.attrs["absent_genes"] = absent_genes(gene_sets, adata.var_names)
    if frame.attrs["absent_genes"]:
        report = ", ".join(f"{name}: {len(genes)} ({', '.join(genes[:3])})"
                           for name, genes in frame.attrs["absent_genes"].items())
        warnings.warn(f"genes absent from the data were left out of their scores (scanpy "
                      f"does the same): {report}; see .attrs['absent_genes']", stacklevel=2)
    return frame


def absent_genes(gene_sets: dict[str, list[str]], var_names) -> dict[str, list[str]]:
    """Per gene set, its genes the data does not measure (only sets that have some)."""
    measured = set(map(str, var_names))
    found = {name: [g for g in dict.fromkeys(genes) if g not in measured]
             for name, genes in gene_sets.items()}
    return {name: genes for name, genes in found.items() if genes}


def add_scores(adata: ad.AnnData, scores: pd.DataFrame) -> list[str]:
    """Write columns (scores, labels, probabilities) into ``adata.obs`` in one step, replacing
    older ones of the same name; returns their names."""
    kept = adata.obs.drop(columns=[c for c in scores.columns if c in adata.obs])
    adata.obs = pd.concat([kept, scores.set_axis(adata.obs_names)], axis=1)
    return list(scores.columns)


def age_association(scores: pd.DataFrame, age: pd.Series, within: pd.Series | None = None
                    ) -> pd.DataFrame:
    """Per score column: Spearman's rho and p with age and the Benjamini-Hochberg FDR over the
    columns; with ``within`` (e.g. tissue), each group's mean score is removed first, so that
    differences between groups do not pass for an age effect."""
    from scipy import stats

    if within is not None:
        scores = scores - scores.groupby(pd.Series(within, index=scores.index)).transform("mean")
    tests = [stats.spearmanr(scores[c], age) for c in scores.columns]
    p = np.array([test[1] for test in tests])
    return pd.DataFrame({"rho": [test[0] for test in tests], "p": p,
                         "fdr": stats.false_discovery_control(p, method="bh")},
                        index=scores.columns)


def age_direction(association: pd.DataFrame, fdr: float = 0.05) -> pd.Series:
    """'rises', 'falls' or 'no trend' per row of :func:`age_association` at an FDR level."""
    return pd.Series(np.where(association["fdr"] >= fdr, "no trend",
                              np.where(association["rho"] > 0, "rises", "falls")),
                     index=association.index, name="direction")


def random_gene_sets(genes, sizes, n_draws: int, seed: int = 0) -> dict[str, list[str]]:
    """``n_draws`` gene sets of every size in ``sizes``, drawn without replacement from
    ``genes`` (the measured panel): the null a hallmark's score is compared with when the panel
    itself was selected (named ``random<size>_<draw>``)."""
    genes = np.asarray(pd.Index(genes).unique().astype(str))
    rng = np.random.default_rng(seed)
    sets = {}
    for size in sorted({int(s) for s in sizes}):
        if not 1 <= size <= len(genes):
            raise ValueError(f"a random set of {size} genes needs 1..{len(genes)} (the panel)")
        for draw in range(n_draws):
            sets[f"random{size}_{draw}"] = sorted(rng.choice(genes, size, replace=False))
    return sets


def null_percentile(observed: pd.Series, null: pd.Series, sizes: pd.Series) -> pd.DataFrame:
    """Each hallmark's statistic (e.g. absolute rho with age) against random sets of its size:
    the null's median, the hallmark's percentile among the draws and the one-sided empirical
    p-value (1 + draws at least as large) / (1 + draws). ``null`` is indexed by the names
    :func:`random_gene_sets` gives."""
    null_size = pd.Series(null.index.str.extract(r"^random(\d+)_", expand=False).astype(int),
                          index=null.index)
    rows = {}
    for name, value in observed.items():
        draws = null[null_size == int(sizes[name])].to_numpy(float)
        if draws.size == 0:
            raise ValueError(f"no random sets of size {int(sizes[name])} for {name!r}")
        rows[name] = {"genes": int(sizes[name]), "null median": float(np.median(draws)),
                      "percentile": float((draws < value).mean() * 100),
                      "empirical p": float((1 + (draws >= value).sum()) / (1 + draws.size))}
    return pd.DataFrame.from_dict(rows, orient="index")
