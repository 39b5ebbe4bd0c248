"""Expression processing: Ensembl ids to gene symbols, library-size normalisation (CPM or
TPM), log transform, ComBat batch correction (scanpy) and quantile normalisation (the ``qnorm``
package Precious1GPT used), onto the data's own mean distribution or onto a reference one (to
put a new platform on a training set's scale). Matrices are samples x genes.

Units are checked where a step needs them: :func:`log_expression` refuses values that already
look logged, :func:`cpm` refuses values that are not counts; the checks themselves
(:func:`~helpers.data.formats.require_counts`, :func:`~helpers.data.formats.require_log_scale`,
:func:`~helpers.data.formats.looks_logged`) live with the readers in
:mod:`helpers.data.formats` and are importable from here too; each step's check can be
overridden when the data are known to be right (``check_units=False``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.data.formats import (  # noqa: F401  (unit checks, used here and re-exported)
    LOG_SCALE_MAX,
    looks_logged,
    require_counts,
    require_log_scale,
)

PROTEIN_CODING = "protein coding"


def to_gene_symbols(counts: pd.DataFrame, genes: pd.DataFrame,
                    gene_type: str | None = PROTEIN_CODING) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rename Ensembl-id columns to gene symbols, keeping one id per symbol.

    ``genes``: indexed by the same versioned Ensembl ids, with ``geneSymbol`` and ``geneType``.
    Only ``gene_type`` genes are kept (all when None). When several ids share a symbol the id
    with the highest mean count is kept (it carries the symbol's signal; the others are mostly
    PAR_Y copies and readthrough loci). Returns the renamed matrix and a report with one row per
    input id: symbol, kept, and why not.
    """
    missing = [c for c in ("geneSymbol", "geneType") if c not in genes.columns]
    if missing:
        raise ValueError(f"gene table lacks field(s) {missing}")
    ids = pd.Index(counts.columns.astype(str))
    report = pd.DataFrame({"symbol": genes["geneSymbol"].reindex(ids).to_numpy(),
                           "gene_type": genes["geneType"].reindex(ids).to_numpy(),
                           "mean_count": counts.mean(axis=0).to_numpy()}, index=ids)
    report["reason"] = ""
    report.loc[report["symbol"].isna(), "reason"] = "id not in the gene table"
    if gene_type is not None:
        report.loc[(report["reason"] == "") & (report["gene_type"] != gene_type),
                   "reason"] = f"not {gene_type}"
    candidates = report[report["reason"] == ""].sort_values(
        ["symbol", "mean_count"], ascending=[True, False], kind="stable")
    duplicated = candidates.index[candidates["symbol"].duplicated(keep="first")]
    report.loc[duplicated, "reason"] = "duplicated symbol, lower mean count"
    report["kept"] = report["reason"] == ""
    kept = report.index[report["kept"]]
    renamed = counts.loc[:, kept].set_axis(report.loc[kept, "symbol"].to_numpy(), axis=1)
    renamed.columns.name = "gene"
    return renamed.sort_index(axis=1), report


def cpm(counts: pd.DataFrame, check_units: bool = True) -> pd.DataFrame:
    """Counts per million mapped reads of each sample (rows); refuses input that is not counts
    unless ``check_units`` is False."""
    if check_units:
        require_counts(counts, "cpm")
    library = counts.sum(axis=1)
    if (library <= 0).any():
        raise ValueError(f"samples with no reads: {list(library.index[library <= 0])}")
    return counts.div(library, axis=0) * 1e6


def tpm(counts: pd.DataFrame, lengths: pd.Series) -> pd.DataFrame:
    """Transcripts per million: counts divided by gene length (bp), rescaled to 1e6 per sample."""
    lengths = lengths.reindex(counts.columns)
    if lengths.isna().any() or (lengths <= 0).any():
        bad = list(lengths.index[lengths.isna() | (lengths <= 0)][:5])
        raise ValueError(f"no positive length for gene(s) {bad}")
    rate = counts / lengths.to_numpy()
    return rate.div(rate.sum(axis=1), axis=0) * 1e6


def log_expression(values: pd.DataFrame, pseudocount: float = 1.0,
                   check_units: bool = True) -> pd.DataFrame:
    """``log2(x + pseudocount)``: the scale on which batches and ages act additively. Values
    that already look logged (:func:`~helpers.data.formats.looks_logged`) are refused unless
    ``check_units`` is False, since logging twice silently compresses every difference."""
    if (values < 0).to_numpy().any():
        raise ValueError("negative expression values cannot be log-transformed")
    if check_units and looks_logged(values):
        raise ValueError(f"log_expression: the values look logged already (max "
                         f"{np.nanmax(values.to_numpy(float)):.3g} <= {LOG_SCALE_MAX:g}); "
                         "expected counts or linear units (CPM, TPM, FPKM). Pass "
                         "check_units=False if they really are linear")
    return np.log2(values + pseudocount)


def quantile_reference(values: pd.DataFrame) -> np.ndarray:
    """The distribution quantile normalisation gives every sample: the mean over samples of
    each rank's value (sorted ascending), as ``qnorm`` computes it. Keep the training set's to
    put new samples on its scale with :func:`quantile_normalise` (``target``)."""
    array = values.to_numpy(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("quantile_reference: the values hold missing or infinite entries")
    return np.sort(array, axis=1).mean(axis=0)


def quantile_normalise(values: pd.DataFrame, target=None) -> pd.DataFrame:
    """Give every sample (row) the same distribution of values (``qnorm``, ties averaged): the
    data's own mean distribution, or ``target`` (e.g. :func:`quantile_reference` of training
    data: each sample's values are replaced, rank for rank, by the target's). A target of
    another length (another gene set) is interpolated at the samples' quantiles."""
    import qnorm

    if target is None:
        return qnorm.quantile_normalize(values.T, axis=1).T
    target = np.sort(np.asarray(target, dtype=np.float64))
    if target.ndim != 1 or not np.isfinite(target).all() or len(target) < 2:
        raise ValueError("target must be a finite 1-d distribution of at least two values")
    n = values.shape[1]
    if len(target) != n:
        target = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(target)), target)
    return qnorm.quantile_normalize(values.T, axis=1, target=target).T


def combat(values: pd.DataFrame, batch: pd.Series, covariates: pd.DataFrame | None = None
           ) -> pd.DataFrame:
    """ComBat (scanpy's implementation) on a samples x genes matrix; ``covariates`` (e.g. tissue,
    age) are protected from the correction. Genes constant within a batch are left unchanged.

    Categorical covariates are passed to scanpy as reference-coded numeric columns: scanpy codes
    them with every level beside every batch level, a collinear design whose solution splits the
    batch effect between the two (measured on simulated cohorts of 500 samples in 27 tissues:
    4-10% of each gene's variance was left to batch, against under 1% with reference coding;
    tests/test_simulator.py keeps that case)."""
    import anndata as ad
    import scanpy as sc

    batch = pd.Series(batch, index=values.index).astype(str)
    if batch.nunique() < 2:
        return values.copy()
    obs = pd.DataFrame({"batch": batch.to_numpy()}, index=values.index.astype(str))
    keys = []
    if covariates is not None:
        coded = pd.get_dummies(covariates.set_axis(obs.index), drop_first=True, dtype=float,
                               prefix_sep="=")
        for i, name in enumerate(coded.columns):
            obs[f"cov{i}"] = coded[name].to_numpy()
            keys.append(f"cov{i}")
    constant = (values.groupby(batch, observed=True).std(ddof=0) == 0).any(axis=0)
    adata = ad.AnnData(values.loc[:, ~constant].to_numpy(np.float64), obs=obs,
                       var=pd.DataFrame(index=[str(i) for i in range((~constant).sum())]))
    corrected = sc.pp.combat(adata, key="batch", covariates=keys or None, inplace=False)
    out = values.astype(np.float64)
    out.loc[:, ~constant] = corrected
    return out


def batch_map(raw: pd.DataFrame, corrected: pd.DataFrame, batch: pd.Series) -> pd.DataFrame:
    """What a batch correction did to the training samples, per batch and gene, as the
    straight line corrected = slope x raw + intercept (least squares over the batch's training
    samples; ComBat is exactly such a line per batch and gene when no covariate is protected,
    nearly so with tissue protected). Rows: (batch, "slope" | "intercept"); columns: genes."""
    batch = pd.Series(batch, index=raw.index).astype(str)
    rows = {}
    for level, ids in batch.groupby(batch, observed=True).groups.items():
        x, y = raw.loc[ids].to_numpy(np.float64), corrected.loc[ids].to_numpy(np.float64)
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        var = (xc ** 2).sum(axis=0)
        slope = np.where(var > 0, (xc * yc).sum(axis=0) / np.where(var > 0, var, 1.0), 1.0)
        rows[(level, "slope")] = slope
        rows[(level, "intercept")] = y.mean(axis=0) - slope * x.mean(axis=0)
    return pd.DataFrame(rows, index=raw.columns).T


def apply_batch_map(mapping: pd.DataFrame, raw: pd.DataFrame, batch: pd.Series) -> pd.DataFrame:
    """Correct new samples with a :func:`batch_map` fitted on training samples (held-out samples
    then change nothing that was fitted); a batch without training samples is an error."""
    batch = pd.Series(batch, index=raw.index).astype(str)
    known = set(mapping.index.get_level_values(0))
    unseen = sorted(set(batch) - known)
    if unseen:
        raise ValueError(f"batch(es) {unseen} have no training samples: their correction "
                         f"cannot be estimated (training batches: {sorted(known)})")
    out = raw.astype(np.float64).copy()
    for level, ids in batch.groupby(batch, observed=True).groups.items():
        slope = mapping.loc[(level, "slope"), raw.columns].to_numpy()
        intercept = mapping.loc[(level, "intercept"), raw.columns].to_numpy()
        out.loc[ids] = raw.loc[ids].to_numpy(np.float64) * slope + intercept
    return out


def variance_explained(values: pd.DataFrame, labels: pd.Series) -> pd.Series:
    """Per gene, the share of variance explained by a grouping (one-way ANOVA R^2)."""
    labels = pd.Series(labels, index=values.index)
    centred = values - values.mean(axis=0)
    total = (centred ** 2).sum(axis=0)
    group_means = centred.groupby(labels, observed=True).transform("mean")
    between = (group_means ** 2).sum(axis=0)
    return (between / total.where(total > 0)).rename("variance_explained")


def real_muscle_log_cpm() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Real GTEx muscle: protein-coding symbols, log2(CPM + 1); the symbol report; the traits."""
    from helpers.data import loaders

    adata = loaders.load_gtex_muscle()
    counts = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    symbols, report = to_gene_symbols(counts, loaders.load_gencode_v26())
    return log_expression(cpm(symbols)), report, adata.obs
