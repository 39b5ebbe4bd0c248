"""Expression processing for Precious1GPT: Ensembl ids to gene symbols, library-size
normalisation (CPM or TPM), log transform, ComBat batch correction (scanpy) and quantile
normalisation (the ``qnorm`` package the paper used). Matrices are samples x genes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def cpm(counts: pd.DataFrame) -> pd.DataFrame:
    """Counts per million mapped reads of each sample (rows)."""
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


def log_expression(values: pd.DataFrame, pseudocount: float = 1.0) -> pd.DataFrame:
    """``log2(x + pseudocount)``: the scale on which batches and ages act additively."""
    if (values < 0).to_numpy().any():
        raise ValueError("negative expression values cannot be log-transformed")
    return np.log2(values + pseudocount)


def quantile_normalise(values: pd.DataFrame) -> pd.DataFrame:
    """Give every sample (row) the same distribution of values (``qnorm``, ties averaged)."""
    import qnorm

    return qnorm.quantile_normalize(values.T, axis=1).T


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
