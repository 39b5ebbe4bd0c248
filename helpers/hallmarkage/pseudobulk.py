"""Pseudobulk metacells (HallmarkAge Appendix F): each metacell sums the raw counts of k cells
drawn from one donor's cells of one dataset and batch, takes their mean age, and is then
library-size normalised and logged on highly variable genes chosen from training donors only.

Bulk samples, or pseudobulk profiles already summed per donor (one sample per donor, say), need
no metacells: :class:`Profiles` holds them on their log scale, and the ridge clocks of
:mod:`helpers.hallmarkage.hallmark_clocks` read either through the same ``expression`` and
``hallmarks`` members."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from helpers.common.expression import require_counts, require_log_scale
from helpers.hallmarkage import hallmark_scoring

# A metacell never mixes donors, datasets or acquisition batches (LOBO and LODO need the last two)
UNIT = ("donor", "dataset", "batch")


@dataclass
class Metacells:
    """Metacells of an atlas: which cells each one sums, its labels, counts and hallmark means."""

    plan: sp.csr_matrix  # metacells x cells: how many times each cell was drawn
    obs: pd.DataFrame  # donor, dataset, batch, age (mean of its cells), age_group, replaced
    counts: np.ndarray  # metacells x genes: summed raw counts (every gene of the atlas)
    genes: pd.Index
    hallmarks: pd.DataFrame  # metacells x hallmarks: mean of its cells' hallmark scores

    def expression(self, genes: pd.Index, rows=None) -> np.ndarray:
        """Log-normalised expression of some metacells on ``genes`` (:func:`expression`)."""
        return expression(self, genes, rows)


@dataclass
class Profiles:
    """Bulk or pseudobulk samples on a log scale (e.g. log1p-normalised pseudobulks, one per
    donor, or log2 CPM): the sample table (``donor``, ``age``; ``dataset`` and ``batch`` when
    known), the values (samples x genes) and their hallmark scores (samples x hallmarks, see
    :meth:`with_scores`)."""

    obs: pd.DataFrame
    values: pd.DataFrame
    hallmarks: pd.DataFrame

    def __post_init__(self):
        missing = [c for c in ("donor", "age") if c not in self.obs.columns]
        if missing:
            raise ValueError(f"the sample table lacks field(s) {missing} that clocks need")
        if not self.obs.index.equals(self.values.index):
            raise ValueError("the sample table and the values list different samples")
        if self.obs["age"].isna().any():
            raise ValueError(f"{int(self.obs['age'].isna().sum())} samples have no age")
        require_log_scale(self.values, "Profiles values")

    @property
    def genes(self) -> pd.Index:
        return self.values.columns

    def expression(self, genes: pd.Index, rows=None) -> np.ndarray:
        """The log-scale values of some samples on ``genes`` (no further normalisation)."""
        rows = slice(None) if rows is None else np.asarray(rows)
        return self.values.to_numpy(np.float64)[rows][:, self.values.columns.get_indexer(genes)]

    def with_scores(self, gene_sets: dict[str, list[str]], train_rows=None, ctrl_size: int = 50,
                    n_bins: int = 25, seed: int = 0) -> Profiles:
        """A copy whose hallmark scores use expression bins and control genes drawn from the
        ``train_rows`` samples only (all samples when None: then equal to scanpy's
        ``score_genes`` on the same matrix); every sample is then scored with them."""
        train = np.ones(len(self.obs), bool) if train_rows is None else np.asarray(train_rows)
        fitted = ad.AnnData(self.values.to_numpy(np.float64)[train],
                            var=pd.DataFrame(index=self.values.columns))
        weights = hallmark_scoring.score_weights(fitted, gene_sets, ctrl_size, n_bins, seed)
        scores = pd.DataFrame(self.values.to_numpy(np.float64) @ weights.toarray(),
                              index=self.obs.index, columns=list(gene_sets))
        return Profiles(self.obs, self.values, scores)


def select_hvgs_log(profiles: Profiles, rows, n_top: int) -> pd.Index:
    """Highly variable genes of the given (training) samples of log-scale profiles: scanpy's
    Seurat flavour (dispersion on log data; Seurat v3 needs counts, which profiles are not)."""
    rows = np.asarray(rows, bool)
    subset = ad.AnnData(profiles.values.to_numpy(np.float64)[rows],
                        var=pd.DataFrame(index=profiles.values.columns))
    n_top = min(n_top, subset.n_vars)
    table = sc.pp.highly_variable_genes(subset, flavor="seurat", n_top_genes=n_top,
                                        inplace=False)
    return profiles.values.columns[table["highly_variable"].to_numpy()]


def metacell_plan(obs: pd.DataFrame, k: int, per_unit: int, seed: int = 0,
                  unit: tuple[str, ...] = UNIT) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Draw ``per_unit`` metacells of ``k`` cells for every donor x dataset x batch unit:
    without replacement inside a metacell, with replacement when the unit has fewer than k
    cells. Returns the (metacells x cells) draw-count matrix and the metacells' labels."""
    if k < 1 or per_unit < 1:
        raise ValueError(f"k={k} and per_unit={per_unit} must both be at least 1")
    missing = [c for c in (*unit, "age") if c not in obs.columns]
    if missing:
        raise ValueError(f"cell table lacks the field(s) {missing} that metacells need")
    rng = np.random.default_rng(seed)
    groups = obs.groupby(list(unit), observed=True, sort=True).indices
    columns, labels = [], []
    for key, members in groups.items():
        replace = len(members) < k
        for _ in range(per_unit):
            columns.append(rng.choice(members, k, replace=replace))
            labels.append((*key, len(members), replace))
    n = len(labels)
    plan = sp.csr_matrix((np.ones(n * k, np.float32), (np.repeat(np.arange(n), k),
                                                       np.concatenate(columns))),
                         shape=(n, len(obs)))  # duplicate draws add up
    table = pd.DataFrame(labels, columns=[*unit, "unit_cells", "replaced"])
    table["age"] = plan @ obs["age"].to_numpy(float) / k
    if "age_group" in obs.columns:
        table["age_group"] = table["donor"].map(
            obs.drop_duplicates("donor").set_index("donor")["age_group"])
    table.index = pd.Index([f"mc{i}" for i in range(n)], name="metacell")
    return plan, table


def sum_counts(plan: sp.csr_matrix, counts) -> np.ndarray:
    """Summed raw counts of every metacell (dense float32: metacells are not sparse)."""
    summed = plan @ counts
    return np.asarray(summed.toarray() if sp.issparse(summed) else summed, dtype=np.float32)


def sum_counts_blocked(plan: sp.csr_matrix, counts) -> np.ndarray:
    """Summed counts of every metacell from a dask array of row blocks (for instance a layer
    read lazily from an h5ad with ``anndata.experimental.read_elem_lazy``): each block's
    cells are summed into the metacells and the partial sums added, so only blocks are ever
    loaded. Gives the same result as :func:`sum_counts`."""
    import dask

    if len(counts.chunks[1]) != 1:
        raise ValueError("counts must be chunked by rows only (one block spans every gene)")
    bounds = np.cumsum((0, *counts.chunks[0]))
    parts = [dask.delayed(sum_counts)(plan[:, start:stop], block)
             for start, stop, block in zip(bounds[:-1], bounds[1:],
                                           counts.to_delayed()[:, 0], strict=True)]
    return dask.delayed(sum)(parts).compute()


def mean_over_cells(plan: sp.csr_matrix, values: pd.DataFrame) -> pd.DataFrame:
    """Each metacell's mean of a per-cell table (e.g. hallmark scores), draws counted."""
    weights = sp.diags(1.0 / np.asarray(plan.sum(axis=1)).ravel()) @ plan
    return pd.DataFrame(weights @ values.to_numpy(float), columns=values.columns)


def build(adata: ad.AnnData, scores: pd.DataFrame, k: int, per_unit: int, seed: int = 0,
          layer: str = "counts") -> Metacells:
    """Metacells of an atlas with its per-cell hallmark scores; the ``layer`` must hold raw
    counts (metacells sum them), which is checked."""
    require_counts(adata.layers[layer], f"metacells: layer {layer!r}")
    plan, table = metacell_plan(adata.obs, k, per_unit, seed)
    hallmarks = mean_over_cells(plan, scores).set_axis(table.index)
    return Metacells(plan, table, sum_counts(plan, adata.layers[layer]), adata.var_names,
                     hallmarks)


def select_hvgs(adata: ad.AnnData, cells, n_top: int, batch_key: str = "dataset",
                layer: str = "counts", span: float = 0.3) -> pd.Index:
    """Highly variable genes of the given (training) cells only: scanpy's Seurat v3 model on
    raw counts, fitted within each dataset and merged across datasets (Appendix F). ``span``
    is the loess window of the mean-variance trend (scanpy's default 0.3)."""
    cells = np.asarray(cells, bool)
    subset = ad.AnnData(X=adata.layers[layer][cells], obs=adata.obs.loc[cells, [batch_key]],
                        var=pd.DataFrame(index=adata.var_names))
    try:
        table = sc.pp.highly_variable_genes(subset, flavor="seurat_v3", n_top_genes=n_top,
                                            batch_key=batch_key, inplace=False, span=span)
    except ValueError as error:  # loess on a dataset of a few hundred cells can be singular
        raise ValueError(f"the Seurat v3 trend (loess, span={span}) failed on one of the "
                         f"{subset.obs[batch_key].nunique()} datasets ({error}); smaller "
                         f"datasets need a wider span") from error
    return adata.var_names[table["highly_variable"].to_numpy()]


def log_normalise(counts: np.ndarray, target_sum: float = 1e4) -> np.ndarray:
    """Library-size normalisation to ``target_sum`` and log1p (scanpy's recipe) of summed
    counts; a metacell with no counts is an error."""
    totals = counts.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError(f"{int((totals <= 0).sum())} metacell(s) have no counts on these genes")
    return np.log1p(counts / totals * target_sum).astype(np.float32)


def expression(metacells: Metacells, genes: pd.Index, rows=None) -> np.ndarray:
    """Log-normalised expression of the given metacells on ``genes`` (normalised over them)."""
    rows = slice(None) if rows is None else np.asarray(rows)
    return log_normalise(metacells.counts[rows][:, metacells.genes.get_indexer(genes)])


def summary(metacells: Metacells) -> pd.DataFrame:
    """Metacells, units and units drawn with replacement per dataset and batch."""
    obs = metacells.obs
    units = obs.drop_duplicates(["donor", "dataset", "batch"])
    return pd.DataFrame({
        "metacells": obs.groupby(["dataset", "batch"], observed=True).size(),
        "donors": units.groupby(["dataset", "batch"], observed=True)["donor"].nunique(),
        "units with < k cells (with replacement)": units.groupby(
            ["dataset", "batch"], observed=True)["replaced"].sum(),
        "mean age": obs.groupby(["dataset", "batch"], observed=True)["age"].mean().round(1),
    })
